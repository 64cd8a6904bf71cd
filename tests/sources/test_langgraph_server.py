"""An agent on LangGraph Server behind the approvals: a real `langgraph dev` on loopback runs
the team's graph; the real bot drives it through `langgraph-sdk`."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from bot.service import RunningBot
from tests.conftest import Harness
from tests.fakes.openai_server import reply_text, reply_tool_calls
from tests.support.langgraph_server import LangGraphServer, langgraph_server

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
async def server(harness: Harness) -> AsyncIterator[LangGraphServer]:
    async with langgraph_server(harness.tmp / "server", harness.model.base_url) as running:
        yield running


@asynccontextmanager
async def bot_on(
    harness: Harness, server: LangGraphServer, graph: str = "agent", **overrides: Any
) -> AsyncIterator[RunningBot]:
    async with harness.bot(
        approvals_tools=None, langgraph_url=server.url, langgraph_assistant=graph, **overrides
    ) as bot:
        yield bot


def tool_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in body["messages"] if m.get("role") == "tool"]


async def test_approve_runs_the_call_on_the_server_and_streams_back(
    harness: Harness, server: LangGraphServer
) -> None:
    harness.model.script(
        reply_tool_calls(("scale_down", {"cluster_id": "cl-001", "replicas": 2})),
        reply_text("cl-001 now runs 2 replicas."),
    )
    async with bot_on(harness, server) as bot:
        thread = await harness.ask("scale down cl-001 to 2")
        [card] = await harness.wait_cards("C0OPS", thread)
        assert server.executions("scale_down") == []
        # The graph allows approve, edit and reject for scale_down: the card offers all three.
        actions = {b.action_id for b in card.buttons()}
        assert actions == {"approval_approve", "approval_deny", "approval_edit"}
        [row] = await bot.store.db.fetchall("SELECT * FROM server_threads")
        assert row["conversation"].endswith(thread)

        await harness.slack.click("U0BOB", "C0OPS", card.ts, "approval_approve")
        await harness.wait_text("C0OPS", thread, "cl-001 now runs 2 replicas.")
        await harness.idle()
        assert server.executions("scale_down") == [{"cluster_id": "cl-001", "replicas": 2}]
        assert any("scaled down to 2" in t and "ran" in t for t in harness.texts("C0OPS", thread))
        assert "Approved by <@U0BOB>" in json.dumps(harness.slack.message("C0OPS", card.ts).blocks)
        assert "scaled down to 2" in tool_messages(harness.model.requests[-1])[-1]["content"]
