"""An agent on LangGraph Server behind the approvals: a real `langgraph dev` on loopback runs
the team's graph; the real bot drives it through `langgraph-sdk`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from langgraph_sdk.errors import ConflictError

from agent.server_session import ServerUnusable
from agent.session import Event, Reply
from bot.conversation import Conversation
from bot.sandbox.records import Message
from bot.service import RunningBot
from tests.conftest import Harness
from tests.fakes.openai_server import Reply as ModelReply
from tests.fakes.openai_server import reply_text
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


# Alice asks to scale cl-001 down to 2; the graph gates scale_down.
SCALE_DOWN = ("scale down cl-001 to 2", "scale_down", {"cluster_id": "cl-001", "replicas": 2})


def tool_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in body["messages"] if m.get("role") == "tool"]


async def edit_as_json(harness: Harness, card: Message, arguments: dict[str, object]) -> str:
    """Bob submits `arguments` in the card's Edit form (one JSON field, as for a tool that
    lives on the server); the JSON the form opened with."""
    await harness.slack.click("U0BOB", "C0OPS", card.ts, "approval_edit")
    view = await harness.slack.wait_for(lambda: harness.slack.views and harness.slack.views[-1])
    [block] = view.view["blocks"]
    value = {"type": "plain_text_input", "value": json.dumps(arguments)}
    await harness.slack.submit_view("U0BOB", view.id, {block["block_id"]: {"value": value}})
    return str(block["element"]["initial_value"])


async def test_approve_runs_the_call_on_the_server_and_streams_back(
    harness: Harness, server: LangGraphServer
) -> None:
    async with bot_on(harness, server) as bot:
        thread, card = await harness.ask_call(*SCALE_DOWN, "cl-001 now runs 2 replicas.")
        assert server.executions("scale_down") == []
        # The graph allows approve, edit and reject for scale_down: the card offers all three.
        actions = {b.action_id for b in card.buttons()}
        assert actions == {"approval_approve", "approval_deny", "approval_edit"}
        [row] = await bot.store.db.fetchall("SELECT * FROM server_threads")
        assert row["conversation"].endswith(thread)

        await harness.approve_and_wait(thread, card, "cl-001 now runs 2 replicas.")
        assert server.executions("scale_down") == [{"cluster_id": "cl-001", "replicas": 2}]
        assert any("scaled down to 2" in t and "ran" in t for t in harness.texts("C0OPS", thread))
        assert "Approved by <@U0BOB>" in json.dumps(harness.slack.message("C0OPS", card.ts).blocks)
        assert "scaled down to 2" in tool_messages(harness.model.requests[-1])[-1]["content"]


async def test_deny_with_a_reason_reaches_the_model_and_nothing_runs(
    harness: Harness, server: LangGraphServer
) -> None:
    async with bot_on(harness, server):
        thread, card = await harness.ask_call(
            "delete cluster cl-003",
            "delete_cluster",
            {"cluster_id": "cl-003"},
            "Understood, I left cl-003 alone.",
        )
        # delete_cluster allows approve and reject only: no Edit button.
        assert {b.action_id for b in card.buttons()} == {"approval_approve", "approval_deny"}
        await harness.deny("U0BOB", "C0OPS", card.ts, "not during the freeze")
        await harness.wait_text("C0OPS", thread, "I left cl-003 alone")
        await harness.idle()
        assert server.executions("delete_cluster") == []
        assert any("was not run" in t and "Denied" in t for t in harness.texts("C0OPS", thread))
        told = tool_messages(harness.model.requests[-1])[-1]["content"]
        assert "not during the freeze" in told and "bob" in told


async def test_edit_runs_the_edited_call_on_the_server(
    harness: Harness, server: LangGraphServer
) -> None:
    async with bot_on(harness, server):
        thread, card = await harness.ask_call(*SCALE_DOWN, "All done here.")
        shown = await edit_as_json(harness, card, {"cluster_id": "cl-001", "replicas": 3})
        # The tool lives on the server, so the form is the call's arguments as JSON.
        assert json.loads(shown) == {"cluster_id": "cl-001", "replicas": 2}
        await harness.wait_text("C0OPS", thread, "All done here.")
        await harness.idle()
        assert server.executions("scale_down") == [{"cluster_id": "cl-001", "replicas": 3}]


async def test_expiry_answers_the_server_with_a_reject(
    harness: Harness, server: LangGraphServer
) -> None:
    harness.policy_file.write_text("defaults: {expires_after: 1s}\n")
    async with bot_on(harness, server):
        thread, card = await harness.ask_call(*SCALE_DOWN, "All done here.")
        await harness.wait_text("C0OPS", thread, "All done here.")
        await harness.idle()
        assert "Expired" in json.dumps(harness.slack.message("C0OPS", card.ts).blocks)
        told = tool_messages(harness.model.requests[-1])[-1]["content"]
        assert "EXPIRED" in told
    assert server.executions("scale_down") == []


async def test_sibling_calls_are_decided_one_by_one(
    harness: Harness, server: LangGraphServer
) -> None:
    async with bot_on(harness, server):
        thread, cards = await harness.ask_two_calls("Scaled cl-001; cl-002 stays.")
        by_tool = {("scale_down" if "scale_down" in c.text else "delete_cluster"): c for c in cards}
        await harness.slack.click("U0BOB", "C0OPS", by_tool["scale_down"].ts, "approval_approve")
        await harness.wait_text("C0OPS", thread, "scaled down to 1")
        await harness.idle()
        assert len(harness.model.requests) == 1  # the sibling still waits
        await harness.deny("U0BOB", "C0OPS", by_tool["delete_cluster"].ts)
        await harness.wait_text("C0OPS", thread, "Scaled cl-001; cl-002 stays.")
        await harness.idle()
        texts = harness.texts("C0OPS", thread)
        # Posted once, though the server re-emits the finished sibling on the second resume.
        assert sum("scaled down to 1" in t for t in texts) == 1
    assert server.executions("delete_cluster") == []
    assert server.executions("scale_down") == [{"cluster_id": "cl-001", "replicas": 1}]


async def test_a_batched_request_is_answered_once_every_call_is_decided(
    harness: Harness, server: LangGraphServer
) -> None:
    async with bot_on(harness, server, graph="batched") as bot:
        thread, cards = await harness.ask_two_calls("Scaled cl-001; cl-002 stays.")
        by_tool = {("scale_down" if "scale_down" in c.text else "delete_cluster"): c for c in cards}
        keys = sorted(
            r["interrupt_id"]
            for r in await bot.store.db.fetchall("SELECT interrupt_id FROM approvals")
        )
        assert [k.rsplit(":", 1)[1] for k in keys] == ["0", "1"]
        assert len({k.rsplit(":", 1)[0] for k in keys}) == 1  # one interrupt, two calls
        await harness.approve("U0BOB", "C0OPS", by_tool["scale_down"].ts)
        # Half a batch is not an answer: nothing ran, the model was not asked again.
        assert server.executions("scale_down") == []
        assert len(harness.model.requests) == 1
        await harness.deny("U0BOB", "C0OPS", by_tool["delete_cluster"].ts, "keep it")
        await harness.wait_text("C0OPS", thread, "Scaled cl-001; cl-002 stays.")
        await harness.idle()
        told = sorted(m["content"] for m in tool_messages(harness.model.requests[-1]))
        assert told[0].startswith("User rejected") and "keep it" in told[0]
        assert told[1].startswith("cl-001 scaled")
    assert server.executions("scale_down") == [{"cluster_id": "cl-001", "replicas": 1}]
    assert server.executions("delete_cluster") == []


async def test_a_restart_of_the_bot_or_the_server_loses_no_pending_approval(
    harness: Harness, server: LangGraphServer
) -> None:
    async with bot_on(harness, server):
        thread, card = await harness.ask_call(*SCALE_DOWN, "cl-001 now runs 2 replicas.")
    await server.restart()
    async with bot_on(harness, server) as bot:
        # Read back from the server's thread state, not from the bot's memory.
        conv = Conversation(bot.team_id, "C0OPS", thread)
        [call] = await bot.runner.session.pending(conv.key)
        assert call.name == "scale_down"
        await harness.approve_and_wait(thread, card, "cl-001 now runs 2 replicas.")
    assert server.executions("scale_down") == [{"cluster_id": "cl-001", "replicas": 2}]


async def test_a_second_run_on_a_busy_thread_is_refused_by_the_server(
    harness: Harness, server: LangGraphServer
) -> None:
    harness.model.script(
        ModelReply(content="Slow answer.", delay_s=3.0), reply_text("Never asked.")
    )
    async with bot_on(harness, server) as bot:
        session = bot.runner.session
        conv = Conversation(bot.team_id, "C0OPS", "1700000000.000100")
        told: list[Event] = []

        async def on_event(event: Event) -> None:
            told.append(event)

        first = asyncio.create_task(session.start_turn(conv.key, "take your time", on_event))
        await harness.slack.wait_for(lambda: len(harness.model.requests) == 1)
        with pytest.raises(ConflictError):
            await session.start_turn(conv.key, "me too", on_event)
        assert await first == [] and told == [Reply("Slow answer.")]
        assert len(harness.model.requests) == 1


async def test_the_api_key_is_sent_when_set(harness: Harness) -> None:
    harness.model.script(reply_text("Hello from the server."))
    workdir = harness.tmp / "keyed"
    async with langgraph_server(workdir, harness.model.base_url, api_key="s3cret") as keyed:
        with pytest.raises(ServerUnusable, match="LANGGRAPH_API_KEY"):
            async with bot_on(harness, keyed):
                pass
        async with bot_on(harness, keyed, langgraph_api_key="s3cret"):
            thread = await harness.ask("say hello")
            await harness.wait_text("C0OPS", thread, "Hello from the server.")


async def test_an_edit_the_servers_schema_refuses_becomes_a_denial(
    harness: Harness, server: LangGraphServer
) -> None:
    async with bot_on(harness, server):
        thread, card = await harness.ask_call(*SCALE_DOWN, "All done here.")
        await edit_as_json(harness, card, {"cluster_id": "cl-001", "replicas": "three"})
        # The thread is not left waiting: the refused edit is told, and the call is not run.
        await harness.wait_text("C0OPS", thread, "edited arguments do not fit")
        await harness.wait_text("C0OPS", thread, "All done here.")
        await harness.idle()
    assert server.executions("scale_down") == []
