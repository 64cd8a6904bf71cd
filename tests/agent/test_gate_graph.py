"""The approval gate adds no node to the agent's graph (agent.gate.PerCallHITL): per call,
`HumanInTheLoopMiddleware` asks in `wrap_tool_call`, and its `after_model` hook, which
`create_agent` would give a node and a checkpoint after every model turn, does nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langchain.agents.middleware import HumanInTheLoopMiddleware
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.memory import InMemorySaver

from agent.builder import build_agent
from agent.demo_tools import DemoInventory, build_demo_tools
from agent.gate import Recorded
from agent.journal import JournalEntry
from agent.offline_model import OfflineChatModel
from agent.policy import Policy

POLICY = "tools:\n  scale_down: {approval: required, decisions: [approve, edit, reject]}\n"


def test_per_call_hitl_does_nothing_after_the_model() -> None:
    """If a LangChain release gives `after_model` work to do in per-call mode, this fails:
    `PerCallHITL` drops that hook."""
    hitl = HumanInTheLoopMiddleware(interrupt_on={"scale_down": True}, interrupt_mode="per_call")
    asked = AIMessage(
        content="",
        tool_calls=[{"name": "scale_down", "args": {"cluster_id": "cl-001"}, "id": "call_0"}],
    )
    state: Any = {"messages": [HumanMessage(content="scale down cl-001"), asked]}
    assert hitl.after_model(state, runtime=None) is None  # type: ignore[arg-type]


class Unused:
    """The journal and the approval records of a graph that is only built, never run."""

    async def begin(self, *_: Any) -> JournalEntry | None:
        return None

    async def finish(self, *_: Any) -> None:
        return None

    async def approval_for(self, call_key: str) -> Recorded | None:
        return None


def test_the_agents_graph_has_no_node_after_the_model(tmp_path: Path) -> None:
    tools = build_demo_tools(DemoInventory(tmp_path / "inventory.sqlite"))
    graph = build_agent(
        OfflineChatModel(), tools, Policy.parse(POLICY), InMemorySaver(), Unused(), Unused()
    )
    assert not [name for name in graph.nodes if name.endswith("after_model")], list(graph.nodes)
    assert {"model", "tools"} <= set(graph.nodes)
