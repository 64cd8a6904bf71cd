"""A team's own graph (`APPROVALS_GRAPH`), loaded to run in this process.

Three sources stand behind one `agent.session.Session`: the built-in agent and a team's
compiled graph, both in this process (`agent.session.AgentSession`), and an agent on
LangGraph Server (`LANGGRAPH_URL`, `agent.server_session.ServerSession`).
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.pregel import Pregel

from agent.journal import JOURNAL_MARK
from agent.specs import import_attribute

log = logging.getLogger(__name__)


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
