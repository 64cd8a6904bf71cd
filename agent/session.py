"""The narrow seam the bot drives the agent through: start a turn, resume, read what is pending.

Everything here is keyed by the LangGraph thread id. Runs use `durability="sync"`
so a paused or finished step is on disk before the bot acts on it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.pregel import Pregel
from langgraph.types import Command

from agent.gate import CALL_KEY, GateContext, Recorded
from agent.hitl import CallKeys, PendingCall, call_keys, pending_calls, resume_payload
from agent.journal import CALL_KEYS_CONFIG_KEY, JOURNAL_CONFIG_KEY, Journal

# LangGraph's "strict resume": a resume naming an interrupt that is not pending raises
# `UnknownInterruptError` before anything is saved, checked against the state LangGraph loads
# for the run anyway. Only a configurable key turns it on; tests/agent/test_session.py fails if
# a LangGraph release drops it. Without it a stale answer would still never reach another call
# (answers are keyed by interrupt id), but a resume could carry on a run that stopped part-way.
STRICT_RESUME = "__pregel_strict_resume"

__all__ = ["AgentSession", "Event", "OnEvent", "PendingCall", "Reply", "ToolOutcome"]


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
    """The agent as a graph in this process: the built-in one, or a team's (`APPROVALS_GRAPH`).

    `graph_decides`: the graph's `allowed_decisions` set a card's buttons (False for the
    built-in agent, whose allowed decisions are the policy's plus the bot's own reject)."""

    def __init__(
        self,
        graph: Pregel[Any, Any, Any, Any],
        *,
        graph_decides: bool = False,
        journal: Journal | None = None,
        call_keys: CallKeys | None = None,
    ) -> None:
        self._graph = graph
        self._graph_decides = graph_decides
        self._journal = journal
        self._call_keys = call_keys

    def _config(self, thread_id: str, *, strict: bool = False) -> RunnableConfig:
        # What a team's `ExecutionJournalMiddleware()` needs rides in the config.
        configurable: dict[str, Any] = {
            "thread_id": thread_id,
            JOURNAL_CONFIG_KEY: self._journal,
            CALL_KEYS_CONFIG_KEY: self._call_keys,
        }
        if strict:
            configurable[STRICT_RESUME] = True
        return {"configurable": configurable}

    async def pending(self, thread_id: str) -> list[PendingCall]:
        state = await self._graph.aget_state(self._config(thread_id))
        values = state.values if isinstance(state.values, Mapping) else {}
        return pending_calls(
            state.interrupts, values.get("messages", ()), graph_decides=self._graph_decides
        )

    async def start_turn(self, thread_id: str, text: str, on_event: OnEvent) -> list[PendingCall]:
        """Feed a person's message. The caller must first check nothing is pending: new input
        on a paused thread would drop the interrupt and leave a dangling tool call."""
        return await self._drive(thread_id, {"messages": [HumanMessage(content=text)]}, on_event)

    async def resume(
        self,
        thread_id: str,
        decisions: Mapping[str, Decision],
        on_event: OnEvent,
        records: Mapping[str, Recorded] | None = None,
    ) -> list[PendingCall]:
        """Answer pending calls by their key (`PendingCall.interrupt_id`); an un-keyed resume
        would answer whatever is pending now, which is never what a click on an older card
        meant. A batched request waits until all its calls are decided. `records`: the
        approval records of the calls answered, if the caller has them at hand (see
        `GateContext`)."""
        if self._call_keys is None:
            if not decisions:
                raise ValueError("resume needs at least one decision keyed by interrupt id")
            # The built-in agent asks per call, keyed by interrupt id, and its gate puts each
            # call's key on its result, so its state need not be read first: LangGraph checks
            # the answers as it loads the thread (strict resume).
            answers: dict[str, Any] = {key: dict(value) for key, value in decisions.items()}
            keys = None
            context = GateContext(records or {})
        else:
            pending, answers = await pending_and_answers(self.pending, thread_id, decisions)
            if not answers:
                return pending
            keys = call_keys(pending)
            context = None
        command: Command[Any] = Command(resume=answers)
        return await self._drive(
            thread_id, command, on_event, keys, strict=context is not None, context=context
        )

    async def stopped_part_way(self, thread_id: str) -> bool:
        """True when a run stopped between two steps (its process was killed): LangGraph has
        steps left to run and no question waiting for an answer."""
        state = await self._graph.aget_state(self._config(thread_id))
        return bool(state.next) and not state.interrupts

    async def carry_on(self, thread_id: str, on_event: OnEvent) -> list[PendingCall]:
        """Run what is left of a run that stopped part-way, from its last checkpoint."""
        return await self._drive(thread_id, None, on_event)

    async def _drive(
        self,
        thread_id: str,
        payload: Any,
        on_event: OnEvent,
        keys: Mapping[str, str] | None = None,
        *,
        strict: bool = False,
        context: GateContext | None = None,
    ) -> list[PendingCall]:
        """`keys`: the call key of each tool call id being answered, for a team's graph, whose
        results do not carry the key the bot's own approval gate puts on them."""
        async for chunk in self._graph.astream(
            payload,
            self._config(thread_id, strict=strict),
            context=context,
            stream_mode="updates",
            durability="sync",
        ):
            # Resuming one of several sibling calls re-emits the siblings' finished results.
            if chunk.get("__metadata__", {}).get("cached"):
                continue
            for node, update in chunk.items():
                if node.startswith("__") or not isinstance(update, Mapping):
                    continue
                for message in update.get("messages", ()):
                    event = with_call_key(_event_of(message), keys or {})
                    if event is not None:
                        await on_event(event)
        return await self.pending(thread_id)


def with_call_key(event: Event | None, keys: Mapping[str, str]) -> Event | None:
    """The outcome with its call key from `keys` (see `agent.hitl.call_keys`) if it has none."""
    if isinstance(event, ToolOutcome) and event.call_key is None and event.tool_call_id in keys:
        return replace(event, call_key=keys[event.tool_call_id])
    return event


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


async def pending_and_answers(
    pending: Callable[[str], Awaitable[list[PendingCall]]],
    thread_id: str,
    decisions: Mapping[str, Decision],
) -> tuple[list[PendingCall], dict[str, Any]]:
    """What is pending on the thread, and the resume answers `decisions` give it (empty
    while a batched request still waits for some of its calls)."""
    if not decisions:
        raise ValueError("resume needs at least one decision keyed by interrupt id")
    calls = await pending(thread_id)
    return calls, resume_payload(decisions, calls)
