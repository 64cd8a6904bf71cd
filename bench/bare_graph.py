"""The LangGraph baseline: the agent graph alone, resumed with a bare `Command(resume=…)`.

The same `create_agent` graph as the bot's (offline model, `bench.tools`, the bench policy's
`HumanInTheLoopMiddleware(interrupt_mode="per_call")`) on the same checkpointer
(`agent.checkpointer.open_checkpointer`, so AsyncSqliteSaver on a temporary file), with no
Slack, no store, no journal in between. It runs with `durability="sync"` like the bot's runs,
so the difference is the bot's own work, not a durability setting.

It runs in a process of its own, as the bot does: `bench.botproc` with kind `graph`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from langchain.agents import create_agent
from langchain.agents.middleware import HumanInTheLoopMiddleware
from langchain_core.messages import HumanMessage
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command

from agent.checkpointer import open_checkpointer
from agent.offline_model import OfflineChatModel
from agent.policy import Policy
from bench import tools

Graph = CompiledStateGraph[Any, Any, Any, Any]


@asynccontextmanager
async def bare_graph(database_url: str) -> AsyncIterator[tuple[Graph, str]]:
    """The graph and the name of its checkpointer class."""
    async with open_checkpointer(database_url) as saver:
        graph = create_agent(
            model=OfflineChatModel(),
            tools=tools.TOOLS,
            middleware=[approval_middleware()],
            checkpointer=saver,
        )
        yield graph, type(saver).__name__


def approval_middleware() -> HumanInTheLoopMiddleware:
    """LangChain's human-in-the-loop middleware, asking per call for the bench policy's
    gated tools."""
    names = [t.name for t in tools.TOOLS]
    gated = Policy.parse(tools.POLICY).gated(names)
    interrupt_on: dict[str, Any] = {
        name: {"allowed_decisions": ["approve", "reject"]} for name in gated
    }
    return HumanInTheLoopMiddleware(interrupt_on=interrupt_on, interrupt_mode="per_call")


def _config(thread_id: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread_id}}


async def pause(graph: Graph, thread_id: str, cluster: str) -> str:
    """Run a turn up to its interrupt; returns the interrupt's id."""
    config = _config(thread_id)
    message = HumanMessage(content=f"scale down {cluster} to 2")
    await graph.ainvoke({"messages": [message]}, config, durability="sync")  # type: ignore[arg-type]
    [pending] = (await graph.aget_state(config)).interrupts  # type: ignore[arg-type]
    return pending.id


async def resume(graph: Graph, thread_id: str, interrupt_id: str) -> None:
    command = Command(resume={interrupt_id: {"type": "approve"}})
    await graph.ainvoke(command, _config(thread_id), durability="sync")  # type: ignore[arg-type]


async def paused_threads(graph: Graph, n: int) -> list[tuple[str, str, str]]:
    """(thread id, cluster, interrupt id) for n threads paused on their approval."""
    tag = uuid.uuid4().hex[:6]
    threads = []
    for i in range(n):
        thread_id, cluster = f"bare:{tag}:{i}", f"g{tag}-{i:05d}"
        threads.append((thread_id, cluster, await pause(graph, thread_id, cluster)))
    return threads


async def latencies(graph: Graph, n: int) -> list[float]:
    """Resume → tool start, one resume at a time, in seconds."""
    samples = []
    for thread_id, cluster, interrupt_id in await paused_threads(graph, n):
        tools.take_starts()
        started = time.monotonic()
        await resume(graph, thread_id, interrupt_id)
        [(ran, at)] = tools.take_starts()
        if ran != cluster:
            raise RuntimeError(f"resuming {thread_id} ran {ran}")
        samples.append(at - started)
    return samples


async def throughput(graph: Graph, n: int, concurrency: int) -> float:
    """n resumes, at most `concurrency` at once: seconds from the first to the last tool start."""
    started, last = await resume_all(graph, await paused_threads(graph, n), concurrency)
    return last - started


async def resume_all(
    graph: Graph, threads: list[tuple[str, str, str]], concurrency: int
) -> tuple[float, float]:
    """Resume these paused threads, at most `concurrency` at once: when the first resume
    started and when the last tool started (`time.monotonic()`, one clock for every process,
    so windows of several processes can be joined)."""
    tools.take_starts()
    gate = asyncio.Semaphore(concurrency)

    async def one(thread_id: str, interrupt_id: str) -> None:
        async with gate:
            await resume(graph, thread_id, interrupt_id)

    started = time.monotonic()
    await asyncio.gather(*(one(t, i) for t, _, i in threads))
    starts = tools.take_starts()
    if sorted(c for c, _ in starts) != sorted(c for _, c, _ in threads):
        raise RuntimeError("the bare graph did not run each approved call exactly once")
    return started, max(at for _, at in starts)
