"""The execution journal: the record that makes a gated call run at most once.

LangGraph saves an interrupt's answer only when the tool's task ends, so after a
crash inside a tool the same approved call would run again on recovery. The
journal, written just around the tool (inside the approval middleware, so only
approved calls reach it), turns that second run into an honest "outcome unknown".

It is public: a team running its own agent (`APPROVALS_GRAPH`) adds
`ExecutionJournalMiddleware()` to its `create_agent` middleware, after
`HumanInTheLoopMiddleware`; the bot hands it the journal with every run it drives.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Annotated, Any, Literal, NotRequired, Protocol

from langchain.agents.middleware import AgentMiddleware
from langchain.agents.middleware.types import AgentState, PrivateStateAttr, ToolCallRequest
from langchain_core.messages import ToolMessage
from langgraph.types import Command

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
        self, thread_id: str, tool_call_id: str, name: str, args: dict[str, Any]
    ) -> JournalEntry | None:
        """Record that the call starts; return the earlier entry instead if there is one."""
        ...

    async def finish(self, thread_id: str, tool_call_id: str, result: str, status: str) -> None: ...


# The run config key under which the bot hands its journal to the middleware.
JOURNAL_CONFIG_KEY = "approvals_journal"
# A state key only this middleware adds: how the bot tells, at startup, that a graph has it.
JOURNAL_MARK = "approvals_journaled"


class _JournalState(AgentState[Any]):
    approvals_journaled: NotRequired[Annotated[bool, PrivateStateAttr]]


class ExecutionJournalMiddleware(AgentMiddleware[Any, Any, Any]):
    """Journals tool calls so an approved call runs at most once; place it after
    `HumanInTheLoopMiddleware`, so it sees only calls that were approved.

    `journal`: where entries go; by default the one the bot passes with each run (a run the
    bot does not drive is not journaled). `gated`: the tools to journal; by default every
    call that reaches it."""

    state_schema = _JournalState  # type: ignore[assignment]

    def __init__(
        self, journal: Journal | None = None, gated: Collection[str] | None = None
    ) -> None:
        super().__init__()
        self._journal = journal
        self._gated = frozenset(gated) if gated is not None else None

    async def awrap_tool_call(
        self,
        request: ToolCallRequest,
        handler: Callable[[ToolCallRequest], Awaitable[ToolMessage | Command[Any]]],
    ) -> ToolMessage | Command[Any]:
        call = request.tool_call
        configurable = request.runtime.config.get("configurable", {})
        journal = self._journal or configurable.get(JOURNAL_CONFIG_KEY)
        if journal is None or (self._gated is not None and call["name"] not in self._gated):
            return await handler(request)
        thread_id = str(configurable["thread_id"])
        call_id = str(call["id"])
        earlier = await journal.begin(thread_id, call_id, call["name"], call["args"])
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
            await journal.finish(thread_id, call_id, f"error: {exc}", "error")
            raise
        message = result if isinstance(result, ToolMessage) else None
        await journal.finish(
            thread_id,
            call_id,
            str(message.content) if message else "(returned a state update)",
            message.status if message else "success",
        )
        return result
