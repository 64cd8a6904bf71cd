"""The narrow seam the bot drives the agent through (`Session`): start a turn, resume, read
what is pending; and the agent as a graph in this process (`AgentSession`).

Everything here is keyed by the LangGraph thread id. Runs use `durability="sync"`
so a paused or finished step is on disk before the bot acts on it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage, convert_to_messages
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
# The key of the update a run streams when it stops on a question (LangGraph's documented
# `updates` stream; `tests/agent/test_session.py` fails if a release stops sending it).
STOPPED = "__interrupt__"

__all__ = ["AgentSession", "Event", "OnEvent", "PendingCall", "Reply", "Session", "ToolOutcome"]


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


@dataclass(frozen=True)
class Answers:
    """A resume as a session sends it to the graph."""

    by_interrupt: dict[str, Any]
    call_keys: Mapping[str, str] = field(default_factory=dict)
    """The call key of each tool call answered, for a graph whose results do not carry it."""
    gate: GateContext | None = None
    """For the bot's own gate: the records of the calls answered; the resume is strict."""


class Session(ABC):
    """An agent the bot drives, one thread per Slack conversation (keyed by its key): a graph
    in this process (`AgentSession`: the built-in agent, or a team's `APPROVALS_GRAPH`), or
    one on LangGraph Server (`LANGGRAPH_URL`, `agent.server_session.ServerSession`)."""

    own_gate = False
    """True when the graph's approval gate is the bot's own, in this process: it asks per
    call, keyed by interrupt id, and reads the records a resume brings (`GateContext`)."""

    @abstractmethod
    async def pending(self, thread_id: str) -> list[PendingCall]:
        """The calls waiting for a decision, read from the agent's own state."""

    @abstractmethod
    async def start_turn(self, thread_id: str, text: str, on_event: OnEvent) -> list[PendingCall]:
        """Feed a person's message; return what is pending after. The caller must first check
        nothing is pending: new input on a paused thread would drop the interrupt and leave a
        dangling tool call."""

    async def resume(
        self,
        thread_id: str,
        decisions: Mapping[str, Decision],
        on_event: OnEvent,
        records: Mapping[str, Recorded] | None = None,
    ) -> list[PendingCall]:
        """Answer pending calls by their key (`PendingCall.interrupt_id`); return what is
        pending after. An un-keyed resume would answer whatever is pending now, which is never
        what a click on an older card meant. A batched request waits until all its calls are
        decided. Raises `UnknownInterruptError` (reason `not_pending`) before answering
        anything if a decision's call is no longer pending. `records`: the approval records
        of the calls answered, if the caller has them at hand, for a gate in this process."""
        if not decisions:
            raise ValueError("resume needs at least one decision keyed by interrupt id")
        if self.own_gate:
            # The bot's own gate puts each call's key on its result, so the state need not be
            # read first: LangGraph checks the answers as it loads the thread (strict resume).
            answers = {key: dict(value) for key, value in decisions.items()}
            return await self._answer(
                thread_id, Answers(answers, gate=GateContext(records or {})), on_event
            )
        pending = await self.pending(thread_id)
        answers = resume_payload(decisions, pending)
        if not answers:
            return pending
        return await self._answer(thread_id, Answers(answers, call_keys(pending)), on_event)

    @abstractmethod
    async def _answer(
        self, thread_id: str, answers: Answers, on_event: OnEvent
    ) -> list[PendingCall]:
        """Send `answers` and run the graph on; return what is pending after."""

    @abstractmethod
    async def stopped_part_way(self, thread_id: str) -> bool:
        """True when a run stopped with steps left and no question waiting (its process was
        killed), or did work the thread has not been told of (a server's run the bot stopped
        watching)."""

    @abstractmethod
    async def carry_on(self, thread_id: str, on_event: OnEvent) -> list[PendingCall]:
        """See a run that stopped part-way to its end, from its last checkpoint."""


class AgentSession(Session):
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
        self.own_gate = call_keys is None

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
        return await self._drive(thread_id, {"messages": [HumanMessage(content=text)]}, on_event)

    async def _answer(
        self, thread_id: str, answers: Answers, on_event: OnEvent
    ) -> list[PendingCall]:
        command: Command[Any] = Command(resume=answers.by_interrupt)
        return await self._drive(thread_id, command, on_event, answers.call_keys, answers.gate)

    async def stopped_part_way(self, thread_id: str) -> bool:
        state = await self._graph.aget_state(self._config(thread_id))
        return bool(state.next) and not state.interrupts

    async def carry_on(self, thread_id: str, on_event: OnEvent) -> list[PendingCall]:
        return await self._drive(thread_id, None, on_event)

    async def _drive(
        self,
        thread_id: str,
        payload: Any,
        on_event: OnEvent,
        keys: Mapping[str, str] | None = None,
        gate: GateContext | None = None,
    ) -> list[PendingCall]:
        """`keys`: see `Answers.call_keys`; `gate`: see `Answers.gate`."""
        interrupted = False
        async for chunk in self._graph.astream(
            payload,
            self._config(thread_id, strict=gate is not None),
            context=gate,
            stream_mode="updates",
            durability="sync",
        ):
            interrupted = interrupted or STOPPED in chunk
            # Resuming one of several sibling calls re-emits the siblings' finished results.
            if chunk.get("__metadata__", {}).get("cached"):
                continue
            for event in events_of(chunk):
                await on_event(with_call_key(event, keys or {}))
        # A run that ends without stopping on a question has nothing pending: LangGraph streams
        # every stop as an `__interrupt__` update, so the thread is read again only after one.
        return await self.pending(thread_id) if interrupted else []


def with_call_key(event: Event, keys: Mapping[str, str]) -> Event:
    """The outcome with its call key from `keys` (see `agent.hitl.call_keys`) if it has none."""
    if isinstance(event, ToolOutcome) and event.call_key is None and event.tool_call_id in keys:
        return replace(event, call_key=keys[event.tool_call_id])
    return event


def events_of(chunk: Mapping[str, Any]) -> Iterator[Event]:
    """What one `updates` chunk of a run's stream tells: each tool's outcome, the model's
    answers."""
    for node, update in chunk.items():
        if node.startswith("__") or not isinstance(update, Mapping):
            continue
        for message in update.get("messages", ()):
            event = event_of(message)
            if event is not None:
                yield event


def event_of(message: object) -> Event | None:
    """The event a message tells, if any: as LangGraph gives it in this process, or as a
    LangGraph server sends it (LangChain's JSON form)."""
    if isinstance(message, Mapping) and message.get("type") in ("ai", "tool"):
        [message] = convert_to_messages([dict(message)])
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
