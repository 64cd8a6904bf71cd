"""The narrow seam the bot drives the agent through: start a turn, resume, read what is pending.

Everything here is keyed by the LangGraph thread id. Runs use `durability="sync"`
so a paused or finished step is on disk before the bot acts on it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command

from agent.gate import CALL_KEY


@dataclass(frozen=True)
class PendingCall:
    """One gated tool call waiting for a decision (one LangGraph interrupt)."""

    interrupt_id: str
    tool_call_id: str
    name: str
    args: dict[str, Any]
    description: str


@dataclass(frozen=True)
class ToolOutcome:
    """What came back for a tool call: its result, or the notice that it did not run."""

    tool_call_id: str
    name: str
    content: str
    status: Literal["success", "error"]
    ran: bool
    """False when the approval gate answered instead of the tool (reject), or the journal
    refused to run it again with its outcome unknown. A result the journal replays (the call
    finished before a restart) did run."""
    call_key: str | None = None
    """The gated call's key (its approval's interrupt id); None for an ungated call."""


@dataclass(frozen=True)
class Reply:
    text: str


Event = ToolOutcome | Reply
OnEvent = Callable[[Event], Awaitable[None]]
Decision = Mapping[str, Any]


class AgentSession:
    def __init__(self, graph: CompiledStateGraph[Any, Any, Any, Any]) -> None:
        self._graph = graph

    @staticmethod
    def _config(thread_id: str) -> RunnableConfig:
        return {"configurable": {"thread_id": thread_id}}

    async def pending(self, thread_id: str) -> list[PendingCall]:
        state = await self._graph.aget_state(self._config(thread_id))
        calls = []
        for item in state.interrupts:
            value = item.value
            if isinstance(value, Mapping) and value.get("type") == "tool_approval":
                calls.append(
                    PendingCall(
                        interrupt_id=item.id,
                        tool_call_id=str(value["tool_call_id"]),
                        name=str(value["name"]),
                        args=dict(value["args"]),
                        description=str(value.get("description", "")),
                    )
                )
        return calls

    async def start_turn(self, thread_id: str, text: str, on_event: OnEvent) -> list[PendingCall]:
        """Feed a person's message. The caller must first check nothing is pending: new input
        on a paused thread would drop the interrupt and leave a dangling tool call."""
        return await self._drive(thread_id, {"messages": [HumanMessage(content=text)]}, on_event)

    async def resume(
        self, thread_id: str, decisions: Mapping[str, Decision], on_event: OnEvent
    ) -> list[PendingCall]:
        """Answer pending interrupts by id; an un-keyed resume would answer whatever is
        pending now, which is never what a click on an older card meant."""
        if not decisions:
            raise ValueError("resume needs at least one decision keyed by interrupt id")
        command: Command[Any] = Command(
            resume={key: dict(value) for key, value in decisions.items()}
        )
        return await self._drive(thread_id, command, on_event)

    async def stopped_part_way(self, thread_id: str) -> bool:
        """True when a run stopped between two steps (its process was killed): LangGraph has
        steps left to run and no question waiting for an answer."""
        state = await self._graph.aget_state(self._config(thread_id))
        return bool(state.next) and not state.interrupts

    async def carry_on(self, thread_id: str, on_event: OnEvent) -> list[PendingCall]:
        """Run what is left of a run that stopped part-way, from its last checkpoint."""
        return await self._drive(thread_id, None, on_event)

    async def _drive(self, thread_id: str, payload: Any, on_event: OnEvent) -> list[PendingCall]:
        async for chunk in self._graph.astream(
            payload, self._config(thread_id), stream_mode="updates", durability="sync"
        ):
            # Resuming one of several sibling calls re-emits the siblings' finished results.
            if chunk.get("__metadata__", {}).get("cached"):
                continue
            for node, update in chunk.items():
                if node.startswith("__") or not isinstance(update, Mapping):
                    continue
                for message in update.get("messages", ()):
                    event = _event_of(message)
                    if event is not None:
                        await on_event(event)
        return await self.pending(thread_id)


def _event_of(message: object) -> Event | None:
    if isinstance(message, ToolMessage):
        answered_by_gate = message.additional_kwargs.get("lc_source") == "hitl_interrupt_decision"
        return ToolOutcome(
            tool_call_id=message.tool_call_id,
            name=message.name or "",
            content=_text(message.content),
            status="error" if message.status == "error" else "success",
            ran=not answered_by_gate
            and message.additional_kwargs.get("journal") != "outcome_unknown",
            call_key=message.additional_kwargs.get(CALL_KEY),
        )
    if isinstance(message, AIMessage):
        text = _text(message.content).strip()
        return Reply(text) if text else None
    return None


def _text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part if isinstance(part, str) else str(part.get("text", ""))
            for part in content
            if isinstance(part, str | dict)
        )
    return str(content)
