"""Assembling the agent graph: model, tools, approval gate, journal, checkpointer."""

from __future__ import annotations

from typing import Any

from langchain.agents import create_agent
from langchain.agents.middleware import HumanInTheLoopMiddleware
from langchain_core.language_models import BaseChatModel
from langchain_core.tools import BaseTool
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph.state import CompiledStateGraph

from agent.idempotency import ApprovalIds, ApprovalKeyMiddleware
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
    approvals: ApprovalIds,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    names = [t.name for t in tools]
    policy.check_tools(names)
    interrupt_on = policy.interrupt_on(names)
    descriptions = {t.name: (t.description or t.name).strip().splitlines()[0] for t in tools}
    for name, config in interrupt_on.items():
        config["description"] = descriptions[name]
    return create_agent(
        model=model,
        tools=tools,
        system_prompt=SYSTEM_PROMPT,
        middleware=[
            ModelToolNames(tools),
            HumanInTheLoopMiddleware(interrupt_on=interrupt_on, interrupt_mode="per_call"),
            # Inside the approval gate: they see only calls that were approved.
            ApprovalKeyMiddleware(approvals, gated=interrupt_on.keys()),
            ExecutionJournalMiddleware(journal, gated=interrupt_on.keys()),
        ],
        checkpointer=checkpointer,
    )
