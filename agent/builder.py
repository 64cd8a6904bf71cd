"""Assembling the agent graph: model, tools, approval gate, journal, checkpointer.

The middleware order is the order of the checks around each tool call: the gate decides
whether the call waits for a person (`agent.gate`), the human-in-the-loop middleware asks,
the journal records an approved call around the tool, and innermost a tool's exception
becomes an error result the model reads instead of ending the run.
"""

from __future__ import annotations

from typing import Any

from langchain.agents import create_agent
from langchain.agents.middleware import ToolErrorMiddleware
from langchain.agents.middleware.types import ToolCallRequest
from langchain_core.language_models import BaseChatModel
from langchain_core.tools import BaseTool
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph.state import CompiledStateGraph

from agent.gate import ApprovalGate, ApprovalRecords, gated_hitl
from agent.journal import ExecutionJournalMiddleware, Journal
from agent.policy import Policy
from agent.toolnames import ModelToolNames

SYSTEM_PROMPT = """You are an operations agent working for a platform/SRE team in Slack.
Use the tools to answer questions and carry out requests about the infrastructure.
Some tools need a human's approval before they run; the system asks for it, so just call
the tool — never claim that something was approved, and never ask the user to approve in text.
If a call is rejected, denied, withdrawn or expires, it did not run: say so plainly and do not
retry it unless asked. Keep answers short; Slack mrkdwn formatting is fine."""


def build_agent(
    model: BaseChatModel,
    tools: list[BaseTool],
    policy: Policy,
    checkpointer: BaseCheckpointSaver[Any],
    journal: Journal,
    records: ApprovalRecords,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    names = [t.name for t in tools]
    policy.check_tools(names)
    descriptions = {t.name: (t.description or t.name).strip().splitlines()[0] for t in tools}
    return create_agent(
        model=model,
        tools=tools,
        system_prompt=SYSTEM_PROMPT,
        middleware=[
            ModelToolNames(tools),
            ApprovalGate(records, gated_now=policy.gated(names)),
            gated_hitl(names, descriptions),
            ExecutionJournalMiddleware(journal),
            ToolErrorMiddleware(aon_error=tool_error),
        ],
        checkpointer=checkpointer,
    )


async def tool_error(exc: Exception, request: ToolCallRequest) -> str:
    """What the model (and the thread) is told when a tool raises."""
    return f"{type(exc).__name__}: {exc}"[:2000]
