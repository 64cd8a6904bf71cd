"""AgentSession.resume leans on LangGraph's strict resume instead of reading the state first."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain.agents.middleware import HumanInTheLoopMiddleware
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.errors import UnknownInterruptError
from langgraph.types import Command

from agent.demo_tools import DemoInventory, build_demo_tools
from agent.offline_model import OfflineChatModel
from agent.session import STOPPED, STRICT_RESUME, AgentSession, Event

NOT_PENDING = "0" * 32  # shaped like an interrupt id, but no interrupt has it


def paused_graph(tmp_path: Path) -> Any:
    return create_agent(
        model=OfflineChatModel(),
        tools=build_demo_tools(DemoInventory(tmp_path / "inventory.sqlite")),
        checkpointer=InMemorySaver(),
        middleware=[
            HumanInTheLoopMiddleware(interrupt_on={"scale_down": True}, interrupt_mode="per_call")
        ],
    )


async def ask(session: AgentSession, events: list[Event]) -> str:
    async def on_event(event: Event) -> None:
        events.append(event)

    [pending] = await session.start_turn("t", "scale down cl-001 to 2", on_event)
    return pending.interrupt_id


async def test_langgraph_still_refuses_a_strict_resume_of_an_interrupt_not_pending(
    tmp_path: Path,
) -> None:
    """If a LangGraph release drops the configurable key, this fails: the session would
    then carry on a stopped run when asked to answer an interrupt already answered."""
    graph = paused_graph(tmp_path)
    live = await ask(AgentSession(graph), [])
    config: Any = {"configurable": {"thread_id": "t", STRICT_RESUME: True}}
    with pytest.raises(UnknownInterruptError) as refused:
        await graph.ainvoke(Command(resume={NOT_PENDING: {"type": "approve"}}), config)
    assert refused.value.reason == "not_pending"
    assert list(refused.value.interrupt_ids) == [NOT_PENDING]
    assert list(refused.value.pending_ids) == [live]


async def test_a_decision_for_a_call_no_longer_pending_is_refused_before_anything_runs(
    tmp_path: Path,
) -> None:
    session = AgentSession(paused_graph(tmp_path))
    events: list[Event] = []
    live = await ask(session, events)

    async def on_event(event: Event) -> None:
        events.append(event)

    # With a live answer beside it: refused as a whole, so the caller can drop the stale one.
    with pytest.raises(UnknownInterruptError) as refused:
        await session.resume(
            "t", {NOT_PENDING: {"type": "approve"}, live: {"type": "approve"}}, on_event
        )
    assert list(refused.value.interrupt_ids) == [NOT_PENDING]
    assert [p.interrupt_id for p in await session.pending("t")] == [live]
    assert [e for e in events if getattr(e, "ran", False)] == []
    # The live one alone runs, once.
    assert await session.resume("t", {live: {"type": "approve"}}, on_event) == []
    ran = [e for e in events if getattr(e, "ran", False)]
    assert [(e.name, e.status) for e in ran] == [("scale_down", "success")]


async def test_every_stop_on_a_question_is_streamed_so_pending_is_read_only_then(
    tmp_path: Path,
) -> None:
    """`AgentSession` reads the thread after a run only if the run streamed a stop
    (`STOPPED`, LangGraph's own update): if a release stopped streaming it, a sibling call
    still waiting would be taken for nothing pending."""
    graph = create_agent(
        model=OfflineChatModel(),
        tools=build_demo_tools(DemoInventory(tmp_path / "inventory.sqlite")),
        checkpointer=InMemorySaver(),
        middleware=[
            HumanInTheLoopMiddleware(
                interrupt_on={"scale_down": True, "delete_cluster": True},
                interrupt_mode="per_call",
            )
        ],
    )
    config: Any = {"configurable": {"thread_id": "t"}}

    async def stops(payload: Any) -> int:
        chunks = graph.astream(payload, config, stream_mode="updates")
        return len([chunk async for chunk in chunks if STOPPED in chunk])

    assert await stops({"messages": [("user", "scale down cl-001 to 2 and delete cluster cl-003")]})
    first, second = (await graph.aget_state(config)).interrupts
    session, events = AgentSession(graph), list[Event]()

    async def on_event(event: Event) -> None:
        events.append(event)

    # One of two sibling calls answered: the other one's stop is streamed again.
    [waiting] = await session.resume("t", {first.id: {"type": "approve"}}, on_event)
    assert waiting.interrupt_id == second.id
    assert await session.resume("t", {second.id: {"type": "approve"}}, on_event) == []
    assert (await graph.aget_state(config)).interrupts == ()
    ran = [e.name for e in events if getattr(e, "ran", False)]
    assert ran == ["scale_down", "delete_cluster"]
