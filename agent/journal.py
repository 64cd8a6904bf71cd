"""The execution journal: the record that makes a gated call run at most once.

LangGraph saves an interrupt's answer only when the tool's task ends, so after a
crash inside a tool the same approved call would run again on recovery. The
journal, written just around the tool (inside the approval middleware, so only
approved calls reach it), turns that second run into an honest "outcome unknown".

Entries are keyed by the call's key (`agent.gate.call_key`, the interrupt id of the
tool's task), never by the model's tool-call id, which a model may repeat.

It is public: a team running its own agent (`APPROVALS_GRAPH`) adds
`ExecutionJournalMiddleware()` to its `create_agent` middleware, after
`HumanInTheLoopMiddleware`; the bot hands it the journal with every run it drives.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Annotated, Any, Literal, NotRequired, Protocol

from langchain.agents.middleware import AgentMiddleware
from langchain.agents.middleware.types import AgentState, PrivateStateAttr, ToolCallRequest
from langchain_core.messages import ToolMessage

from agent.gate import CALL_KEY, ToolHandler, ToolResult, call_key, current_call
from agent.idempotency import approval_id_var, with_approval_id

OUTCOME_UNKNOWN = (
    "Outcome unknown — this call was started before the bot stopped and did not report "
    "back, so it was NOT run again. Check by hand whether it took effect."
)


@dataclass(frozen=True)
class JournalEntry:
    status: Literal["started", "finished"]
    result: str | None
    result_status: str | None


class Journal(Protocol):
    """Where the journal is kept (the bot's database)."""

    async def begin(
        self, key: str, thread_id: str, tool_call_id: str, name: str, args: dict[str, Any]
    ) -> JournalEntry | None:
        """Record that the call starts; return the earlier entry instead if there is one."""
        ...

    async def finish(self, key: str, result: str, status: str) -> None: ...


# The run config key under which the bot hands its journal to a team's middleware.
JOURNAL_CONFIG_KEY = "approvals_journal"
# ...and where it finds the approval key of a call (`agent.hitl.CallKeys`).
CALL_KEYS_CONFIG_KEY = "approvals_call_keys"
# A state key only this middleware adds: how the bot tells, at startup, that a graph has it.
JOURNAL_MARK = "approvals_journaled"


class _JournalState(AgentState[Any]):
    approvals_journaled: NotRequired[Annotated[bool, PrivateStateAttr]]


class ExecutionJournalMiddleware(AgentMiddleware[Any, Any, Any]):
    """Journals approved calls so each runs at most once; place it after the
    human-in-the-loop middleware, so it sees only calls that were approved.

    `journal`: where entries go. The built-in agent passes the bot's; a team's graph leaves
    it out, and gets the bot's with each run the bot drives (a run the bot does not drive is
    not journaled). With the bot's `ApprovalGate` in front it journals every call the gate
    let through; `gated` names more tools to journal. Given no journal, it journals every
    call that reaches it, or only the `gated` tools when some are named.
    """

    state_schema = _JournalState

    def __init__(self, journal: Journal | None = None, gated: Collection[str] = ()) -> None:
        super().__init__()
        self._journal = journal
        self._gated = frozenset(gated)

    async def awrap_tool_call(self, request: ToolCallRequest, handler: ToolHandler) -> ToolResult:
        call = request.tool_call
        gated = current_call()
        journal = self._journal
        configurable = request.runtime.config.get("configurable", {})
        thread_id = str(configurable["thread_id"])
        call_id = str(call["id"])
        approval_key = None
        keys = None
        if journal is not None:
            if gated is None and call["name"] not in self._gated:
                return await handler(request)
        else:
            journal = configurable.get(JOURNAL_CONFIG_KEY)
            if journal is None or (self._gated and call["name"] not in self._gated):
                return await handler(request)
            # A team's graph: the entry is kept under the call's approval key, and the result
            # carries it, so the bot tells each outcome on its own card.
            keys = configurable.get(CALL_KEYS_CONFIG_KEY)
            approval_key = await keys.call_key_for(thread_id, call_id) if keys else None
        key = gated.key if gated is not None else approval_key or call_key()
        if approval_key is not None and keys is not None:
            # The idempotency key, as the bot's own gate sets it for the built-in agent.
            approval_id = await keys.approval_id_for(approval_key)
            token = approval_id_var.set(approval_id)
            keyed = with_approval_id(request, approval_id)
            try:
                result = await self._journaled(journal, key, thread_id, keyed, handler)
            finally:
                approval_id_var.reset(token)
        else:
            result = await self._journaled(journal, key, thread_id, request, handler)
        if approval_key is not None and isinstance(result, ToolMessage):
            result.additional_kwargs[CALL_KEY] = approval_key
        return result

    async def _journaled(
        self,
        journal: Journal,
        key: str,
        thread_id: str,
        request: ToolCallRequest,
        handler: ToolHandler,
    ) -> ToolResult:
        call = request.tool_call
        call_id = str(call["id"])
        earlier = await journal.begin(key, thread_id, call_id, call["name"], call["args"])
        if earlier is not None:
            finished = earlier.status == "finished" and earlier.result is not None
            return ToolMessage(
                content=earlier.result if finished else OUTCOME_UNKNOWN,
                name=call["name"],
                tool_call_id=call_id,
                status="success" if finished and earlier.result_status == "success" else "error",
                additional_kwargs={"journal": "replayed" if finished else "outcome_unknown"},
            )
        try:
            result = await handler(request)
        except Exception as exc:  # a cancelled call stays "started": its outcome is unknown
            await journal.finish(key, f"{type(exc).__name__}: {exc}", "error")
            raise
        message = result if isinstance(result, ToolMessage) else None
        await journal.finish(
            key,
            # The text, not the repr of content blocks (MCP tools return a list of them).
            message.text if message else "(returned a state update)",
            message.status if message else "success",
        )
        return result
