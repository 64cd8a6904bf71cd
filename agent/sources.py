"""Where the agent runs: the seam the bot drives (`Session`), and a team's own graph.

Three sources stand behind one `Session`: the built-in agent and a team's compiled graph
(`APPROVALS_GRAPH`), both in this process (`agent.session.AgentSession`), and an agent on
LangGraph Server (`LANGGRAPH_URL`, `agent.server_session.ServerSession`).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping
from typing import Any, Protocol

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.pregel import Pregel

from agent.gate import Recorded
from agent.journal import JOURNAL_MARK
from agent.session import Decision, OnEvent, PendingCall
from agent.specs import import_attribute

log = logging.getLogger(__name__)


class Session(Protocol):
    """An agent the bot drives, one thread per Slack conversation (keyed by its key)."""

    async def pending(self, thread_id: str) -> list[PendingCall]:
        """The calls waiting for a decision, read from the agent's own state."""
        ...

    async def start_turn(self, thread_id: str, text: str, on_event: OnEvent) -> list[PendingCall]:
        """Feed a person's message (nothing may be pending); return what is pending after."""
        ...

    async def resume(
        self,
        thread_id: str,
        decisions: Mapping[str, Decision],
        on_event: OnEvent,
        records: Mapping[str, Recorded] | None = None,
    ) -> list[PendingCall]:
        """Answer pending calls by `PendingCall.interrupt_id`; return what is pending after.
        Raises `UnknownInterruptError` (reason `not_pending`) before answering anything if a
        decision's call is no longer pending. `records`: the approval records of the calls
        answered, for a gate in this process (`agent.gate.GateContext`)."""
        ...

    async def stopped_part_way(self, thread_id: str) -> bool:
        """True when a run stopped with steps left and no question waiting, or did work that
        the thread has not been told of (a server's run the bot stopped watching)."""
        ...

    async def carry_on(self, thread_id: str, on_event: OnEvent) -> list[PendingCall]:
        """See a run that stopped part-way to its end."""
        ...


class GraphLoadError(ValueError):
    """`APPROVALS_GRAPH` does not name a usable graph; the message says why."""


async def load_graph(spec: str, checkpointer: BaseCheckpointSaver[Any]) -> Pregel[Any, Any]:
    """Resolve `package.module:attr` to a compiled graph: the attribute itself, or what it
    returns (sync or async) when called with the bot's checkpointer. A graph compiled without
    a checkpointer gets the bot's: approvals wait in it across restarts."""
    target = import_attribute("APPROVALS_GRAPH", spec, GraphLoadError)
    if not isinstance(target, Pregel) and callable(target):
        target = target(checkpointer)
        if inspect.isawaitable(target):
            target = await target
    graph: Pregel[Any, Any, Any, Any] | None = target if isinstance(target, Pregel) else None
    if graph is None:
        raise GraphLoadError(
            f"APPROVALS_GRAPH={spec!r} must be a compiled LangGraph graph (or a callable taking "
            f"the checkpointer and returning one), got {type(target).__name__}"
        )
    if graph.checkpointer is None:
        graph = graph.copy(update={"checkpointer": checkpointer})
    elif graph.checkpointer is not checkpointer:
        log.warning(
            "APPROVALS_GRAPH=%s keeps its own checkpointer: pending approvals live there, so "
            "every replica of the bot must reach the same one",
            spec,
        )
    if not has_journal(graph):
        log.warning(
            "APPROVALS_GRAPH=%s has no ExecutionJournalMiddleware: if the bot stops while an "
            "approved tool runs, a crash inside the tool cannot be told from a call that never "
            "ran, and recovery may run it a second time. Add ExecutionJournalMiddleware() after "
            "HumanInTheLoopMiddleware in create_agent (see the README).",
            spec,
        )
    return graph


def has_journal(graph: Pregel[Any, Any]) -> bool:
    """True when the graph, or a graph inside it, has the execution journal middleware."""
    graphs = [graph, *(g for _, g in graph.get_subgraphs(recurse=True))]
    return any(isinstance(g, Pregel) and JOURNAL_MARK in g.channels for g in graphs)
