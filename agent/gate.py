"""The approval gate: which tool calls wait for a person, decided once per call.

`HumanInTheLoopMiddleware` reads its `interrupt_on` when the graph is built, so a policy edit
applied by a restart would change the fate of a call already waiting: a call denied under the
old policy would simply run under a new `approval: never`, and an Edit the old policy offered
would no longer be accepted. The gate keeps the decision with the call instead: a call is
gated if the policy gates its tool now, *or* if the bot holds an approval record for it. The
record is looked up by the call's own key, the id LangGraph gives the interrupt of the tool
task (see `call_key`), which the bot controls and the model cannot repeat; model tool-call ids
can (`call_0` in every answer, as some OpenAI-compatible servers number them).

Order in `create_agent(middleware=[...])`: `ApprovalGate`, then `gated_hitl(...)`, then
`ExecutionJournalMiddleware`, then `ToolErrorMiddleware` (see `agent.builder`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol

from langchain.agents.middleware import AgentMiddleware, HumanInTheLoopMiddleware
from langchain.agents.middleware.human_in_the_loop import DecisionType, InterruptOnConfig
from langchain.agents.middleware.types import ToolCallRequest
from langchain_core.messages import ToolMessage
from langgraph.config import get_config
from langgraph.types import Command, Interrupt

from agent.idempotency import approval_id_var

# Every decision the bot can record. Which of them a person is offered is the policy's
# business (as it stood when the call was requested); the graph must accept each.
ALL_DECISIONS: tuple[DecisionType, ...] = ("approve", "edit", "reject")
# Where a gated call's key travels on its ToolMessage (never sent to the model).
CALL_KEY = "approval_call_key"


@dataclass(frozen=True)
class GatedCall:
    """The call the gate is letting through, as the inner middleware and the tool see it."""

    key: str
    approval_id: str | None
    """The bot's approval id once the call has been decided: the call's idempotency key."""


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


class ApprovalRecords(Protocol):
    async def approval_for(self, call_key: str) -> str | None:
        """The id of the approval recorded for this call, if there is one."""
        ...


class ApprovalGate(AgentMiddleware):
    """Decides, per call, whether `gated_hitl` interrupts it (see the module docstring)."""

    def __init__(self, records: ApprovalRecords, gated_now: Collection[str]) -> None:
        super().__init__()
        self._records = records
        self._gated_now = frozenset(gated_now)

    async def awrap_tool_call(
        self,
        request: ToolCallRequest,
        handler: Callable[[ToolCallRequest], Awaitable[ToolMessage | Command[Any]]],
    ) -> ToolMessage | Command[Any]:
        key = call_key()
        # Read-only before `handler`: on resume this runs again up to the pause.
        approval_id = await self._records.approval_for(key)
        if approval_id is None and request.tool_call["name"] not in self._gated_now:
            return await handler(request)
        token = _current.set(GatedCall(key, approval_id))
        # The tool's idempotency key; only an approved call gets past the interrupt to read it.
        key_token = approval_id_var.set(approval_id)
        try:
            result = await handler(request)
        finally:
            approval_id_var.reset(key_token)
            _current.reset(token)
        if isinstance(result, ToolMessage):
            result.additional_kwargs[CALL_KEY] = key
        return result


def gated_hitl(
    tool_names: Collection[str], descriptions: dict[str, str]
) -> HumanInTheLoopMiddleware:
    """`HumanInTheLoopMiddleware` that interrupts exactly the calls `ApprovalGate` gates."""

    def when(_request: ToolCallRequest) -> bool:
        return _current.get() is not None

    interrupt_on: dict[str, bool | InterruptOnConfig] = {
        name: InterruptOnConfig(
            allowed_decisions=list(ALL_DECISIONS),
            description=descriptions.get(name, name),
            when=when,
        )
        for name in tool_names
    }
    return HumanInTheLoopMiddleware(interrupt_on=interrupt_on, interrupt_mode="per_call")

