"""B2's floor: the bare resume plus only the steps a click must take before its tool, with no
Slack and none of the bot's code, in the baseline's own process.

Issue 17 asks for B2 at most 1.5x the bare resume "without giving up what makes a gated call safe:
exactly one durable (`FULL`) commit before any gated tool starts". Whatever the bot, a click
must then at least record its decision and make one durable commit before the tool; and to
keep its other promises it must also read the approval it checks and take the conversation's
lease. These samples time exactly that, each step as one SQLite statement (the cheapest way
it can be written, the audit record by a trigger), around the same graph as the baseline:

- `claim`: the decision with its audit record (one statement), then the resume, whose one
  middleware more than the baseline's makes the durable commit before the tool;
- `checked`: `claim` after reading the approval (one statement), with the lease taken and
  the decided-but-not-resumed approvals read (one statement).

The figures to compare the bot with are these, not only the bare resume: what is left
between the bot and `checked` is the bot's own work (Slack's delivery and ack, the policy
checks, its gate and journal middleware, the card), the rest is what the target asks for.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiosqlite
from langchain.agents import create_agent
from langchain.agents.middleware import AgentMiddleware
from langchain.agents.middleware.types import ToolCallRequest

from agent.checkpointer import open_checkpointer
from agent.gate import ToolHandler, ToolResult
from agent.offline_model import OfflineChatModel
from bench import bare_graph, tools
from bot.connections import sqlite_path
from bot.db import sqlite_connection

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS floor_approvals (id TEXT PRIMARY KEY, conversation TEXT,"
    " status TEXT, decided_by TEXT, args TEXT)",
    "CREATE TABLE IF NOT EXISTS floor_audit (seq INTEGER PRIMARY KEY, approval_id TEXT,"
    " event TEXT, actor TEXT, args TEXT)",
    "CREATE TABLE IF NOT EXISTS floor_leases (key TEXT PRIMARY KEY, holder TEXT, expires_at REAL)",
    "CREATE TABLE IF NOT EXISTS floor_journal (key TEXT PRIMARY KEY, thread_id TEXT)",
    # The audit record in the claim's own statement: SQLite has no data-modifying WITH.
    "CREATE TRIGGER IF NOT EXISTS floor_audited AFTER UPDATE OF status ON floor_approvals"
    " WHEN old.status = 'pending' BEGIN INSERT INTO floor_audit (approval_id, event, actor,"
    " args) VALUES (new.id, new.status, new.decided_by, new.args); END",
)


class DurableCommit(AgentMiddleware):
    """The one durable commit before the tool (a row committed with `synchronous=FULL`)."""

    def __init__(self, durable: aiosqlite.Connection) -> None:
        super().__init__()
        self._durable = durable

    async def awrap_tool_call(self, request: ToolCallRequest, handler: ToolHandler) -> ToolResult:
        thread_id = str(request.runtime.config.get("configurable", {}).get("thread_id"))
        await self._durable.execute_fetchall(
            "INSERT INTO floor_journal (key, thread_id) VALUES (?, ?)",
            (uuid.uuid4().hex, thread_id),
        )
        return await handler(request)


@dataclass(frozen=True)
class Floor:
    bare: bare_graph.Graph
    graph: bare_graph.Graph
    store: aiosqlite.Connection

    async def paused(self, n: int) -> list[tuple[str, str, str]]:
        """n threads paused on their approval, each with its approval row."""
        threads = await bare_graph.paused_threads(self.graph, n)
        for thread_id, cluster, interrupt_id in threads:
            await self.store.execute_fetchall(
                "INSERT INTO floor_approvals (id, conversation, status, args)"
                " VALUES (?, ?, 'pending', ?)",
                (interrupt_id, thread_id, f'{{"cluster_id": "{cluster}", "replicas": 2}}'),
            )
        return threads

    async def claim(self, interrupt_id: str) -> None:
        [_] = await self.store.execute_fetchall(
            "UPDATE floor_approvals SET status = 'approved', decided_by = 'U1'"
            " WHERE id = ? AND status = 'pending' RETURNING id",
            (interrupt_id,),
        )

    async def checked(self, thread_id: str, interrupt_id: str) -> None:
        [_] = await self.store.execute_fetchall(
            "SELECT id, conversation, status, args FROM floor_approvals WHERE id = ?",
            (interrupt_id,),
        )
        await self.claim(interrupt_id)
        now = time.time()
        [_] = await self.store.execute_fetchall(
            "INSERT INTO floor_leases (key, holder, expires_at) VALUES (?, 'me', ?)"
            " ON CONFLICT (key) DO UPDATE SET holder = excluded.holder,"
            " expires_at = excluded.expires_at WHERE floor_leases.expires_at < ?"
            " RETURNING (SELECT count(*) FROM floor_approvals WHERE conversation = ?"
            " AND status = 'approved')",
            (thread_id, now + 60, now, thread_id),
        )

    async def samples(self, n: int) -> dict[str, list[float]]:
        """Resume → tool start, one at a time, taking turns: the bare resume, `claim` and
        `checked` (module docstring), in seconds."""
        bare = await bare_graph.paused_threads(self.bare, n)
        claim, checked = await self.paused(n), await self.paused(n)
        times: dict[str, list[float]] = {"bare": [], "claim": [], "checked": []}
        for one, two, three in zip(bare, claim, checked, strict=True):
            times["bare"].append(await _to_tool(self.bare, one))
            times["claim"].append(await _to_tool(self.graph, two, self.claim(two[2])))
            times["checked"].append(
                await _to_tool(self.graph, three, self.checked(three[0], three[2]))
            )
        return times


async def _to_tool(graph: bare_graph.Graph, thread: tuple[str, str, str], *before: Any) -> float:
    thread_id, cluster, interrupt_id = thread
    tools.take_starts()
    started = time.monotonic()
    for step in before:
        await step
    await bare_graph.resume(graph, thread_id, interrupt_id)
    [(ran, at)] = tools.take_starts()
    if ran != cluster:
        raise RuntimeError(f"resuming {thread_id} ran {ran}")
    return float(at - started)


@asynccontextmanager
async def floor(database_url: str, bare: bare_graph.Graph) -> AsyncIterator[Floor]:
    """The floor's graph on SQLite at `database_url` (its own file: the checkpoints, and its
    tables beside them as the bot keeps its own), next to the baseline's `bare` graph."""
    path = sqlite_path(database_url)
    async with AsyncExitStack() as stack:
        saver = await stack.enter_async_context(
            open_checkpointer(database_url, fsync_each_commit=False)
        )
        store = await sqlite_connection(path, synchronous="NORMAL")
        stack.push_async_callback(store.close)
        for statement in SCHEMA:
            await store.execute(statement)
        durable = await sqlite_connection(path, synchronous="FULL")
        stack.push_async_callback(durable.close)
        graph = create_agent(
            model=OfflineChatModel(),
            tools=tools.TOOLS,
            middleware=[bare_graph.approval_middleware(), DurableCommit(durable)],
            checkpointer=saver,
        )
        yield Floor(bare, graph, store)
