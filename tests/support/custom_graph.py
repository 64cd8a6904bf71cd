"""Teams' own graphs, as `APPROVALS_GRAPH` loads them.

- `batched_agent`: a callable taking the bot's checkpointer, returning a `create_agent` graph
  that reviews each model turn as one batched request and carries the execution journal.
- `per_call_agent`: a graph compiled without a checkpointer (the bot lends its own) and
  without the journal (the bot warns at startup).
- `hand_raised`: a plain `StateGraph` that raises the batched request by hand with
  `interrupt()`.
- `durable_agent`: `batched_agent` over `tests.support.durable_tools`, for bot processes.

The model is `ChatOpenAI` as configured by `OPENAI_BASE_URL`/`OPENAI_API_KEY`.
"""

from __future__ import annotations

from typing import Any

import httpx
from langchain.agents import create_agent
from langchain.agents.middleware import HumanInTheLoopMiddleware
from langchain.agents.middleware.human_in_the_loop import HITLRequest, HITLResponse
from langchain_core.messages import AIMessage
from langchain_core.tools import BaseTool
from langchain_openai import ChatOpenAI
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.types import interrupt

from agent.journal import ExecutionJournalMiddleware
from tests.support import durable_tools, keyed_tools, tools

REVIEW = {
    "scale_down": {"allowed_decisions": ["approve", "edit", "reject"]},
    "delete_cluster": {"allowed_decisions": ["approve", "reject"]},
}


def _model() -> ChatOpenAI:
    # An httpx.Timeout keeps langchain-openai from sharing one client across event loops.
    return ChatOpenAI(model="fake-model", use_responses_api=False, timeout=httpx.Timeout(30))


def _agent(
    agent_tools: list[BaseTool], checkpointer: BaseCheckpointSaver[Any] | None, review: Any
) -> Any:
    return create_agent(
        model=_model(),
        tools=agent_tools,
        middleware=[
            HumanInTheLoopMiddleware(interrupt_on=review, interrupt_mode="batched"),
            ExecutionJournalMiddleware(),
        ],
        checkpointer=checkpointer,
    )


def batched_agent(checkpointer: BaseCheckpointSaver[Any]) -> Any:
    return _agent(tools.TOOLS, checkpointer, REVIEW)


def keyed_agent(checkpointer: BaseCheckpointSaver[Any]) -> Any:
    """Tools that record the idempotency key they read while they ran."""
    review = {t.name: {"allowed_decisions": ["approve", "reject"]} for t in keyed_tools.TOOLS}
    return _agent(keyed_tools.TOOLS, checkpointer, review)


def durable_agent(checkpointer: BaseCheckpointSaver[Any]) -> Any:
    review = {t.name: {"allowed_decisions": ["approve", "reject"]} for t in durable_tools.TOOLS}
    return _agent(durable_tools.TOOLS, checkpointer, review)


per_call_agent = create_agent(
    model=_model(),
    tools=tools.TOOLS,
    middleware=[HumanInTheLoopMiddleware(interrupt_on=REVIEW, interrupt_mode="per_call")],
)


def _review(state: MessagesState) -> dict[str, Any]:
    request: HITLRequest = {
        "action_requests": [
            {
                "name": "delete_cluster",
                "args": {"cluster_id": "cl-009"},
                "description": "Delete cl-009 for good",
            }
        ],
        "review_configs": [
            {"action_name": "delete_cluster", "allowed_decisions": ["approve", "reject"]}
        ],
    }
    response: HITLResponse = interrupt(request)
    [decision] = response["decisions"]
    if decision["type"] == "approve":
        tools.EXECUTIONS.append(("delete_cluster", {"cluster_id": "cl-009"}))
        return {"messages": [AIMessage("cl-009 is gone.")]}
    return {"messages": [AIMessage(f"I left cl-009 alone ({decision.get('message')}).")]}


_builder = StateGraph(MessagesState)
_builder.add_node("review", _review)
_builder.add_edge(START, "review")
_builder.add_edge("review", END)
hand_raised = _builder.compile()
