"""The approval gate: which tool calls wait for a person, decided once per call.

`HumanInTheLoopMiddleware` reads its `interrupt_on` when the graph is built, so a policy edit
applied by a restart would change the fate of a call already waiting: a call denied under the
old policy would simply run under a new `approval: never`, and an Edit the old policy offered
would no longer be accepted. The gate keeps the decision with the call instead: a call is
gated if the policy gates its tool now, *or* if the bot holds an approval record for it. The
record is looked up by the call's own key, the id LangGraph gives the interrupt of the tool
task (see `call_key`), which the bot controls and the model cannot repeat; model tool-call ids
can (`call_0` in every answer, as some OpenAI-compatible servers number them).

Order in `create_agent(middleware=[...])`: `ApprovalGate`, then the two of `gated_hitl(...)`,
then `ExecutionJournalMiddleware`, then `ToolErrorMiddleware` (see `agent.builder`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol, TypeAlias

from langchain.agents.middleware import AgentMiddleware, HumanInTheLoopMiddleware
from langchain.agents.middleware.human_in_the_loop import DecisionType, InterruptOnConfig
from langchain.agents.middleware.types import ToolCallRequest
from langchain_core.messages import ToolMessage
from langgraph.config import get_config
from langgraph.types import Command, Interrupt

from agent.idempotency import approval_id_var, with_approval_id
from agent.policy import PolicySnapshot

# Every decision the bot can record. Which of them a person is offered is the policy's
# business (as it stood when the call was requested); the graph must accept each it offered,
# and a rejection always (expiry and withdrawal answer with one).
ALL_DECISIONS: tuple[DecisionType, ...] = ("approve", "edit", "reject")
WITHOUT_EDIT: tuple[DecisionType, ...] = ("approve", "reject")
# Where a gated call's key travels on its ToolMessage (never sent to the model).
CALL_KEY = "approval_call_key"

# A tool-call middleware's result, and the rest of the chain it is handed (down to the tool).
ToolResult: TypeAlias = ToolMessage | Command[Any]
ToolHandler: TypeAlias = Callable[[ToolCallRequest], Awaitable[ToolResult]]


@dataclass(frozen=True)
class GatedCall:
    """The call the gate is letting through, as the inner middleware and the tool see it."""

    key: str
    approval_id: str | None
    """The bot's approval id once the call has been decided: the call's idempotency key."""
    edit: bool = False
    """Whether an edit may answer it (see `Recorded.edit`)."""


@dataclass(frozen=True)
class Recorded:
    """The bot's approval record of a call."""

    approval_id: str
    edit: bool
    """Whether the policy the call was requested under offered Edit."""

    @classmethod
    def under(cls, approval_id: str, policy: PolicySnapshot) -> Recorded:
        return cls(approval_id, edit=policy.offers("edit"))


_current: ContextVar[GatedCall | None] = ContextVar("approval_gated_call", default=None)


def current_call() -> GatedCall | None:
    """The gated call being run in this task, or None for an ungated one."""
    return _current.get()


def call_key() -> str:
    """The key of the tool call running in this task: the id LangGraph gives the first
    interrupt of the task (`Interrupt.from_ns` of its checkpoint namespace), which is what the
    bot's approval record holds. Stable across restarts; unique per call."""
    namespace = get_config()["configurable"]["checkpoint_ns"]
    return Interrupt.from_ns(None, namespace).id


@dataclass(frozen=True)
class GateContext:
    """The run context of a resume: the records of the calls it answers, which the caller
    has just read (a record never changes once made), so the gate need not read them again."""

    records: Mapping[str, Recorded]


class ApprovalRecords(Protocol):
    async def approval_for(self, call_key: str) -> Recorded | None:
        """The approval recorded for this call, if there is one."""
        ...


class ApprovalGate(AgentMiddleware):
    """Decides, per call, whether `gated_hitl` interrupts it (see the module docstring)."""

    def __init__(
        self,
        records: ApprovalRecords,
        gated_now: Collection[str],
        editable_now: Collection[str] = (),
    ) -> None:
        super().__init__()
        self._records = records
        self._gated_now = frozenset(gated_now)
        self._editable_now = frozenset(editable_now)

    async def awrap_tool_call(self, request: ToolCallRequest, handler: ToolHandler) -> ToolResult:
        key = call_key()
        # Read-only before `handler`: on resume this runs again up to the pause.
        context = request.runtime.context
        if isinstance(context, GateContext) and key in context.records:
            recorded: Recorded | None = context.records[key]
        else:
            recorded = await self._records.approval_for(key)
        name = request.tool_call["name"]
        if recorded is None and name not in self._gated_now:
            return await handler(request)
        call = (
            GatedCall(key, recorded.approval_id, recorded.edit)
            if recorded is not None
            else GatedCall(key, None, name in self._editable_now)
        )
        token = _current.set(call)
        # The tool's idempotency key; only an approved call gets past the interrupt to read it,
        # from `current_approval_id()` or, in a tool taking `runtime: ToolRuntime`, from
        # `runtime.config["configurable"]["approval_id"]`.
        key_token = approval_id_var.set(call.approval_id)
        request = with_approval_id(request, call.approval_id)
        try:
            result = await handler(request)
        finally:
            approval_id_var.reset(key_token)
            _current.reset(token)
        if isinstance(result, ToolMessage):
            result.additional_kwargs[CALL_KEY] = key
        return result


class PerCallHITL(HumanInTheLoopMiddleware):
    """`HumanInTheLoopMiddleware` asking per call, without its `after_model` hook.

    Per call it asks in `wrap_tool_call`, and its `after_model` does nothing (returns None;
    tests/agent/test_gate_graph.py fails if that changes). But `create_agent` gives every
    middleware that defines `after_model` a node of its own: a superstep after every model
    turn, with `durability="sync"` a checkpoint and its writes saved, for nothing. With
    `AgentMiddleware`'s own hooks back in place `create_agent` adds no node."""

    after_model = AgentMiddleware.after_model
    aafter_model = AgentMiddleware.aafter_model

    def __init__(self, interrupt_on: dict[str, bool | InterruptOnConfig]) -> None:
        super().__init__(interrupt_on=interrupt_on, interrupt_mode="per_call")


class EditableHITL(PerCallHITL):
    """The human-in-the-loop middleware for the gated calls an edit may answer (a class of
    its own because `create_agent` takes one middleware per name)."""


def gated_hitl(
    tool_names: Collection[str], descriptions: dict[str, str]
) -> list[HumanInTheLoopMiddleware]:
    """`HumanInTheLoopMiddleware` that interrupts exactly the calls `ApprovalGate` gates: one
    for calls no edit may answer and one for those an edit may. The middleware builds each
    interrupt's answer schema when it runs, and with Edit in it two pydantic models for the
    tool's arguments, about 1.5 ms on every gated call; calls whose policy never offered Edit
    do not pay for it."""

    def interrupt_on(
        decisions: tuple[DecisionType, ...], edit: bool
    ) -> dict[str, bool | InterruptOnConfig]:
        def when(_request: ToolCallRequest) -> bool:
            call = _current.get()
            return call is not None and call.edit == edit

        return {
            name: InterruptOnConfig(
                allowed_decisions=list(decisions),
                description=descriptions.get(name, name),
                when=when,
            )
            for name in tool_names
        }

    return [
        PerCallHITL(interrupt_on=interrupt_on(WITHOUT_EDIT, False)),
        EditableHITL(interrupt_on=interrupt_on(ALL_DECISIONS, True)),
    ]
