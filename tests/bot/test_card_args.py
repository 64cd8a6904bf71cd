"""The approver sees everything that will run: the card within Slack's limits, and all of it
behind "Show all arguments"; a confirm dialog that names the target first."""

from __future__ import annotations

import json

from tests.conftest import Harness
from tests.fakes.openai_server import reply_text, reply_tool_calls

SQL = "SELECT * FROM orders WHERE note = '" + "x" * 1973 + "'; DROP TABLE customers"


async def show_all(harness: Harness, user: str, card_ts: str) -> dict:
    opened = len(harness.slack.views)
    await harness.slack.click(user, "C0OPS", card_ts, "approval_show_args")
    view = await harness.slack.wait_for(
        lambda: len(harness.slack.views) > opened and harness.slack.views[-1]
    )
    return view.view


def modal_text(view: dict) -> str:
    return "".join(
        b["text"]["text"].removeprefix("```").removesuffix("```")
        for b in view["blocks"]
        if b["type"] in ("section", "header")
    )


async def test_a_long_value_shows_its_end_and_all_of_it_on_request(harness: Harness) -> None:
    assert len(SQL) == 2031
    harness.policy_file.write_text("tools:\n  run_sql: {approval: required, confirm: true}\n")
    async with harness.bot():
        thread, card = await harness.ask_call(
            "clean up orders", "run_sql", {"statement": SQL, "database": "prod"}, "done"
        )
        shown = json.dumps(card.blocks)
        assert "DROP TABLE customers" in shown and "2,031 characters" in shown
        approve = next(b for b in card.blocks if b["type"] == "actions")["elements"][0]
        first_line = approve["confirm"]["text"]["text"].splitlines()[0]
        assert first_line.startswith("Run `run_sql` on statement `SELECT * FROM orders")
        assert "database: `prod`" in approve["confirm"]["text"]["text"]

        view = await show_all(harness, "U0CAROL", card.ts)  # anyone who sees the card
        assert SQL in modal_text(view) and "prod" in modal_text(view)

        await harness.approve_and_wait(thread, card, "done")
        # Decided, the card still lets anyone read what ran; nothing on it decides.
        decided = harness.slack.message("C0OPS", card.ts)
        assert [b.action_id for b in decided.buttons()] == ["approval_show_args"]


async def test_every_one_of_many_arguments_is_reachable(harness: Harness) -> None:
    args = {"cluster_id": "cl-001", **{f"extra_{i:02d}": f"value {i}" for i in range(1, 21)}}
    harness.model.script(reply_tool_calls(("delete_cluster", args)), reply_text("ok"))
    async with harness.bot():
        thread = await harness.ask("delete cl-001 with many options")
        [card] = await harness.wait_cards("C0OPS", thread)
        shown = json.dumps(card.blocks)
        assert "extra_18" in shown and "extra_20" not in shown
        assert "and 2 more arguments: Show all arguments" in shown
        view = await show_all(harness, "U0BOB", card.ts)
        text = modal_text(view)
        assert all(key in text and value in text for key, value in args.items())
        assert "21 arguments" in text


async def test_a_short_call_needs_no_extra_button(harness: Harness) -> None:
    async with harness.bot():
        _, card = await harness.ask_scale_down(answer="ok")
        assert "approval_show_args" not in [b.action_id for b in card.buttons()]
