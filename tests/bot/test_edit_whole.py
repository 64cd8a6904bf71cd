"""Edit never changes what the approver did not touch: values too long for a text input are
shown, not edited, and run whole; `editable` limits what may change; the tool's schema refuses
a bad value in the modal."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agent.policy import PolicyError
from tests.conftest import Harness
from tests.support.tools import executions

LONG = "UPDATE t SET v = '" + "y" * 4450 + "' WHERE id = 7"


async def open_edit(harness: Harness, user: str, card_ts: str) -> Any:
    opened = len(harness.slack.views)
    await harness.slack.click(user, "C0OPS", card_ts, "approval_edit")
    return await harness.slack.wait_for(
        lambda: len(harness.slack.views) > opened and harness.slack.views[-1]
    )


def inputs(view: Any) -> list[str]:
    return [b["block_id"] for b in view.view["blocks"] if b["type"] == "input"]


def text_input(value: str) -> dict[str, Any]:
    return {"value": {"type": "plain_text_input", "value": value}}


async def test_an_untouched_long_value_runs_whole(harness: Harness) -> None:
    assert len(LONG) > 4400
    harness.policy_file.write_text(
        "tools:\n  run_sql: {approval: required, decisions: [approve, deny, edit]}\n"
    )
    async with harness.bot():
        thread, card = await harness.ask_call(
            "update row 7", "run_sql", {"statement": LONG, "database": "prod"}, "done"
        )
        view = await open_edit(harness, "U0BOB", card.ts)
        assert inputs(view) == ["arg:database"]  # the statement is shown, not offered
        shown = "".join(
            b["text"]["text"].removeprefix("```").removesuffix("```")
            for b in view.view["blocks"]
            if b["type"] == "section"
        )
        assert LONG in shown and "too long to edit" in shown
        await harness.slack.submit_view("U0BOB", view.id, {"arg:database": text_input("stage")})
        await harness.wait_text("C0OPS", thread, "done")
        await harness.idle()
    assert executions("run_sql") == [{"statement": LONG, "database": "stage"}]


async def test_editable_limits_what_changes_and_the_schema_refuses_in_the_modal(
    harness: Harness,
) -> None:
    harness.policy_file.write_text(
        "tools:\n  scale_down: {approval: required, decisions: [approve, deny, edit],"
        " editable: [replicas]}\n"
    )
    async with harness.bot():
        thread, card = await harness.ask_scale_down(answer="done")
        view = await open_edit(harness, "U0BOB", card.ts)
        assert inputs(view) == ["arg:replicas"]
        assert "not editable (policy)" in json.dumps(view.view["blocks"])
        refused = await harness.slack.submit_view(
            "U0BOB", view.id, {"arg:replicas": text_input("two")}
        )
        assert refused.ack is not None
        answer = refused.ack.body
        assert answer["response_action"] == "errors" and "arg:replicas" in answer["errors"]
        assert executions("scale_down") == []
        await harness.slack.submit_view("U0BOB", view.id, {"arg:replicas": text_input("1")})
        await harness.wait_text("C0OPS", thread, "done")
        await harness.idle()
    assert executions("scale_down") == [{"cluster_id": "cl-001", "replicas": 1}]


async def test_editable_must_name_real_arguments(harness: Harness) -> None:
    harness.policy_file.write_text(
        "tools:\n  scale_down: {approval: required, editable: [replica]}\n"
    )
    with pytest.raises(PolicyError, match="editable names arguments scale_down does not have"):
        async with harness.bot():
            pass
