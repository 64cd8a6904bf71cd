"""`SaversByThread`: several checkpoint savers behind one, each thread always through the same
one (agent/checkpointer.py)."""

from __future__ import annotations

import asyncio
import inspect
from pathlib import Path
from typing import Any

from langchain.agents import create_agent
from langchain.agents.middleware import HumanInTheLoopMiddleware
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.types import Command

from agent.checkpointer import CHECKPOINT_SAVERS, SaversByThread, open_checkpointer
from agent.demo_tools import DemoInventory, build_demo_tools
from agent.offline_model import OfflineChatModel
from tests.support.pg import fresh_database, requires_postgres


def _overridden(cls: type) -> set[str]:
    """The public methods and properties of BaseCheckpointSaver that `cls` defines anew."""
    return {
        name
        for name, base in inspect.getmembers(BaseCheckpointSaver)
        if not name.startswith("_") and getattr(cls, name) is not base
    }


def test_every_method_langgraphs_postgres_saver_has_is_handed_on() -> None:
    """A method LangGraph's saver implements that `SaversByThread` did not would fall back to
    BaseCheckpointSaver's (which raises, or walks the generic way): this fails first, when a
    LangGraph release adds one."""
    assert _overridden(AsyncPostgresSaver) <= _overridden(SaversByThread)


def graph(tmp_path: Path, checkpointer: BaseCheckpointSaver[Any]) -> Any:
    return create_agent(
        model=OfflineChatModel(),
        tools=build_demo_tools(DemoInventory(tmp_path / "inventory.sqlite")),
        checkpointer=checkpointer,
        middleware=[
            HumanInTheLoopMiddleware(interrupt_on={"scale_down": True}, interrupt_mode="per_call")
        ],
    )


async def pause_and_resume(agent: Any, threads: list[str]) -> None:
    """Each thread asked, paused on its approval, then all resumed at once to their end."""

    async def one(thread: str) -> None:
        config: Any = {"configurable": {"thread_id": thread}}
        await agent.ainvoke({"messages": [("user", "scale down cl-001 to 2")]}, config)
        [pending] = (await agent.aget_state(config)).interrupts
        await agent.ainvoke(Command(resume={pending.id: {"type": "approve"}}), config)
        state = await agent.aget_state(config)
        assert not state.next and not state.interrupts
        assert any(m.type == "tool" for m in state.values["messages"])

    await asyncio.gather(*(one(t) for t in threads))


async def test_each_thread_sticks_to_one_saver(tmp_path: Path) -> None:
    """In-memory savers share nothing: a thread's checkpoints written through one saver and
    read through another would be lost, and its resume would fail."""
    savers: list[BaseCheckpointSaver[str]] = [InMemorySaver() for _ in range(3)]
    threads = [f"slack:T:C:{i}.0" for i in range(12)]
    await pause_and_resume(graph(tmp_path, SaversByThread(savers)), threads)
    kept = [{t for t in threads if any(s.list({"configurable": {"thread_id": t}}))} for s in savers]
    assert all(kept), "the threads spread over every saver"
    assert sorted(t for found in kept for t in found) == sorted(threads)


def test_the_allowlist_reaches_every_saver() -> None:
    """LangGraph narrows what its savers may deserialize (with strict msgpack on) through
    `with_allowlist`: each saver behind the one must get it."""

    def strict() -> JsonPlusSerializer:
        return JsonPlusSerializer(allowed_msgpack_modules=[("tests", "Known")])

    combined = SaversByThread([InMemorySaver(serde=strict()), InMemorySaver(serde=strict())])
    allowed = combined.with_allowlist([("tests", "Anything")])
    assert isinstance(allowed, SaversByThread)
    assert all(
        new.serde is not old.serde for new, old in zip(allowed.savers, combined.savers, strict=True)
    )


@requires_postgres
async def test_threads_run_through_several_postgres_savers_at_once(tmp_path: Path) -> None:
    async with fresh_database() as url, open_checkpointer(url) as checkpointer:
        assert isinstance(checkpointer, SaversByThread)
        assert len(checkpointer.savers) == CHECKPOINT_SAVERS
        threads = [f"slack:T:C:{i}.0" for i in range(8)]
        await pause_and_resume(graph(tmp_path, checkpointer), threads)
        # Any saver reads any thread: they share the tables.
        for saver in checkpointer.savers:
            listed = {
                c.config["configurable"]["thread_id"] async for c in saver.alist(None, limit=1000)
            }
            assert listed == set(threads)
        await checkpointer.adelete_thread(threads[0])
        assert await checkpointer.aget_tuple({"configurable": {"thread_id": threads[0]}}) is None


@requires_postgres
async def test_one_saver_is_langgraphs_own() -> None:
    async with fresh_database() as url, open_checkpointer(url, savers=1) as checkpointer:
        assert type(checkpointer) is AsyncPostgresSaver
