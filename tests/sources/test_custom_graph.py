"""A team's own LangGraph graph in the bot's process (`APPROVALS_GRAPH`), behind the same
cards, policy and audit, through the real bot, emulator and ChatOpenAI against the fake."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from bot.service import RunningBot
from bot.settings import SettingsError
from tests.conftest import Harness
from tests.fakes.openai_server import reply_text, reply_tool_calls
from tests.support import keyed_tools
from tests.support.tools import executions


@pytest.fixture(autouse=True)
def model_env(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    # The team's graph builds its own ChatOpenAI, configured the usual way.
    monkeypatch.setenv("OPENAI_BASE_URL", harness.model.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    # Imported afresh by the bot: its module-level graph holds the model of its first import.
    monkeypatch.delitem(sys.modules, "tests.support.custom_graph", raising=False)


@asynccontextmanager
async def bot_on(harness: Harness, graph: str, **overrides: Any) -> AsyncIterator[RunningBot]:
    spec = f"tests.support.custom_graph:{graph}"
    async with harness.bot(approvals_tools=None, approvals_graph=spec, **overrides) as bot:
        yield bot


def tool_contents(body: dict[str, Any]) -> list[str]:
    return sorted(m["content"] for m in body["messages"] if m.get("role") == "tool")


async def test_a_batched_turn_is_one_card_per_call_and_one_answer(harness: Harness) -> None:
    harness.model.script(
        reply_tool_calls(
            ("scale_down", {"cluster_id": "cl-001", "replicas": 1}),
            ("delete_cluster", {"cluster_id": "cl-002"}),
        ),
        reply_text("Scaled cl-001; cl-002 stays."),
    )
    async with bot_on(harness, "batched_agent") as bot:
        thread = await harness.ask("scale down cl-001 to 1 and delete cluster cl-002")
        cards = await harness.wait_cards("C0OPS", thread, count=2)
        by_tool = {("scale_down" if "scale_down" in c.text else "delete_cluster"): c for c in cards}
        # The graph's allowed_decisions set the buttons of each card.
        assert {b.action_id for b in by_tool["scale_down"].buttons()} == {
            "approval_approve",
            "approval_deny",
            "approval_edit",
        }
        assert {b.action_id for b in by_tool["delete_cluster"].buttons()} == {
            "approval_approve",
            "approval_deny",
        }
        await harness.approve("U0BOB", "C0OPS", by_tool["scale_down"].ts)
        assert executions("scale_down") == [] and len(harness.model.requests) == 1
        await harness.deny("U0BOB", "C0OPS", by_tool["delete_cluster"].ts, "not today")
        await harness.wait_text("C0OPS", thread, "Scaled cl-001; cl-002 stays.")
        await harness.idle()
        assert executions("scale_down") == [{"cluster_id": "cl-001", "replicas": 1}]
        assert executions("delete_cluster") == []
        texts = harness.texts("C0OPS", thread)
        assert any("scaled down to 1" in t and "ran" in t for t in texts)
        assert any("was not run" in t and "Denied" in t for t in texts)
        told = tool_contents(harness.model.requests[-1])
        assert "not today" in told[0] and told[1].startswith("cl-001 scaled")
        # The journal middleware in the team's graph wrote to the bot's journal.
        [entry] = await bot.store.db.fetchall("SELECT tool, status FROM executions")
        assert dict(entry) == {"tool": "scale_down", "status": "finished"}


async def test_edit_and_expiry_in_a_batched_graph(harness: Harness) -> None:
    async with bot_on(harness, "batched_agent"):
        thread, card = await harness.ask_scale_down()
        await harness.slack.click("U0BOB", "C0OPS", card.ts, "approval_edit")
        view = await harness.slack.wait_for(lambda: harness.slack.views and harness.slack.views[-1])
        [block] = view.view["blocks"]
        edited = json.dumps({"cluster_id": "cl-001", "replicas": 3})
        value = {"type": "plain_text_input", "value": edited}
        await harness.slack.submit_view("U0BOB", view.id, {block["block_id"]: {"value": value}})
        await harness.wait_text("C0OPS", thread, "All done here.")
        await harness.idle()
        assert executions("scale_down") == [{"cluster_id": "cl-001", "replicas": 3}]

    harness.policy_file.write_text("defaults: {expires_after: 1s}\n")
    async with bot_on(harness, "batched_agent"):
        thread, card = await harness.ask_call(
            "delete cluster cl-002",
            "delete_cluster",
            {"cluster_id": "cl-002"},
            "Nothing was deleted.",
        )
        await harness.wait_text("C0OPS", thread, "Nothing was deleted.")
        await harness.idle()
        assert "Expired" in json.dumps(harness.slack.message("C0OPS", card.ts).blocks)
        assert "EXPIRED" in tool_contents(harness.model.requests[-1])[0]
    assert executions("delete_cluster") == []


async def test_a_graph_without_the_journal_starts_with_a_warning_and_works(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    harness.model.script(
        reply_tool_calls(("delete_cluster", {"cluster_id": "cl-003"})),
        reply_text("Understood, I left cl-003 alone."),
    )
    with caplog.at_level(logging.WARNING, logger="agent.sources"):
        async with bot_on(harness, "per_call_agent"):
            warned = [r.getMessage() for r in caplog.records if r.name == "agent.sources"]
            assert any(
                "no ExecutionJournalMiddleware" in w and "cannot be told from" in w for w in warned
            )
            thread = await harness.ask("delete cluster cl-003")
            [card] = await harness.wait_cards("C0OPS", thread)
            assert {b.action_id for b in card.buttons()} == {"approval_approve", "approval_deny"}
            await harness.deny("U0BOB", "C0OPS", card.ts, "freeze")
            await harness.wait_text("C0OPS", thread, "I left cl-003 alone")
            await harness.idle()
    assert executions("delete_cluster") == []
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="agent.sources"):
        async with bot_on(harness, "batched_agent"):
            assert not [r for r in caplog.records if r.name == "agent.sources"]


async def test_an_interrupt_raised_by_hand_in_the_hitl_shape(harness: Harness) -> None:
    async with bot_on(harness, "hand_raised"):
        thread = await harness.ask("clean up cl-009")
        [card] = await harness.wait_cards("C0OPS", thread)
        assert "Delete cl-009 for good" in json.dumps(card.blocks)
        assert {b.action_id for b in card.buttons()} == {"approval_approve", "approval_deny"}
        await harness.approve_and_wait(thread, card, "cl-009 is gone.")
        assert executions("delete_cluster") == [{"cluster_id": "cl-009"}]
        assert "Approved by <@U0BOB>" in json.dumps(harness.slack.message("C0OPS", card.ts).blocks)


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        ("tests.support.custom_graph", "must look like 'package.module:attribute'"),
        ("tests.support.nothing_here:graph", "cannot import"),
        ("tests.support.custom_graph:missing", "has no 'missing'"),
        ("tests.support.custom_graph:REVIEW", "must be a compiled LangGraph graph"),
    ],
)
async def test_a_bad_graph_is_a_clear_startup_error(
    harness: Harness, spec: str, error: str
) -> None:
    with pytest.raises(ValueError, match=error):
        async with harness.bot(approvals_tools=None, approvals_graph=spec):
            pass


def test_a_graph_and_a_server_at_once_is_refused(harness: Harness) -> None:
    with pytest.raises(SettingsError, match="both set"):
        harness.settings(
            approvals_tools=None,
            approvals_graph="tests.support.custom_graph:batched_agent",
            langgraph_url="http://127.0.0.1:1",
            langgraph_assistant="agent",
        )


async def test_a_tool_in_a_teams_graph_reads_the_audited_approval_id_as_its_key(
    harness: Harness,
) -> None:
    keyed_tools.KEYS.clear()
    harness.model.script(
        reply_tool_calls(("rotate_secret", {"service": "api"})), reply_text("Rotated.")
    )
    async with bot_on(harness, "keyed_agent") as bot:
        thread = await harness.ask("rotate the api secret")
        [card] = await harness.wait_cards("C0OPS", thread)
        await harness.approve_and_wait(thread, card, "Rotated.")
        [approved] = [r for r in await bot.store.audit_log() if r.event == "approved"]
        assert [("rotate_secret", approved.approval_id)] == keyed_tools.KEYS
