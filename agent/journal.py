"""The execution journal: the record that makes a gated call run at most once.

LangGraph saves an interrupt's answer only when the tool's task ends, so after a
crash inside a tool the same approved call would run again on recovery. The
journal, written just around the tool (inside the approval middleware, so only
approved calls reach it), turns that second run into an honest "outcome unknown".

Entries are keyed by the call's key (`agent.gate.call_key`, the interrupt id of the
tool's task), never by the model's tool-call id, which a model may repeat.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from langchain.agents.middleware import AgentMiddleware
from langchain.agents.middleware.types import ToolCallRequest
from langchain_core.messages import ToolMessage
from langgraph.types import Command

from agent.gate import call_key, current_call

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


class ExecutionJournalMiddleware(AgentMiddleware):
    """Journals approved calls; place it after the human-in-the-loop middleware.

    With the bot's `ApprovalGate` in front it journals every call the gate let through;
    `gated` names more tools to journal (for a graph with its own HITL middleware).
    """

    def __init__(self, journal: Journal, gated: Collection[str] = ()) -> None:
        super().__init__()
        self._journal = journal
        self._gated = frozenset(gated)

    async def awrap_tool_call(
        self,
        request: ToolCallRequest,
        handler: Callable[[ToolCallRequest], Awaitable[ToolMessage | Command[Any]]],
    ) -> ToolMessage | Command[Any]:
        call = request.tool_call
        gated = current_call()
        if gated is None and call["name"] not in self._gated:
            return await handler(request)
        key = gated.key if gated is not None else call_key()
        thread_id = str(request.runtime.config["configurable"]["thread_id"])
        call_id = str(call["id"])
        earlier = await self._journal.begin(key, thread_id, call_id, call["name"], call["args"])
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
            await self._journal.finish(key, f"{type(exc).__name__}: {exc}", "error")
            raise
        message = result if isinstance(result, ToolMessage) else None
        await self._journal.finish(
            key,
            # The text, not the repr of content blocks (MCP tools return a list of them).
            message.text if message else "(returned a state update)",
            message.status if message else "success",
        )
        return result
