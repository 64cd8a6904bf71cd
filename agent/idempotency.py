"""The idempotency key of an approved call: its approval id.

A gated call runs at most once as far as the bot can tell, but a downstream API cannot see
the bot's journal: a tool that times out after the API acted, or a person who re-runs a
call by hand, looks like a new request to it. Every approved gated call therefore carries
a stable key, the approval id (`ap_…`, the id the audit trail records), which a tool passes
on to the API it calls (an `Idempotency-Key` header, say) so the API can drop a repeat.

A Python tool reads it while it runs::

    from agent.idempotency import current_approval_id

    @tool
    async def restart_service(service: str) -> str:
        \"\"\"Restart a service.\"\"\"
        key = current_approval_id()  # "ap_…" for an approved call, None for an ungated one
        await api.post("/restart", json={"service": service}, headers={"Idempotency-Key": key})

MCP tools send it in the request's `_meta` as `idempotencyKey` (see `agent.mcp`).

The key lives in a context variable, set around the approved call only: asyncio tasks and
the worker thread LangChain runs a sync tool in both copy the caller's context, so the tool
sees it, and nothing outside the call does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from contextvars import ContextVar
from typing import Any, Protocol

from langchain.agents.middleware import AgentMiddleware
from langchain.agents.middleware.types import ToolCallRequest
from langchain_core.messages import ToolMessage
from langgraph.types import Command

approval_id_var: ContextVar[str | None] = ContextVar("approval_id", default=None)


def current_approval_id() -> str | None:
    """The approval id of the gated call running now; None outside an approved call."""
    return approval_id_var.get()


class ApprovalIds(Protocol):
    """Where the approval of a call is on record (the bot's database)."""

    async def approved(self, thread_id: str, tool_call_id: str) -> str | None:
        """The id of the approval that let this call run, if there is one."""
        ...


class ApprovalKeyMiddleware(AgentMiddleware):
    """Sets `approval_id_var` around each gated call; place it after the approval gate, so
    only approved calls reach it."""

    def __init__(self, approvals: ApprovalIds, gated: Collection[str]) -> None:
        super().__init__()
        self._approvals = approvals
        self._gated = frozenset(gated)

    async def awrap_tool_call(
        self,
        request: ToolCallRequest,
        handler: Callable[[ToolCallRequest], Awaitable[ToolMessage | Command[Any]]],
    ) -> ToolMessage | Command[Any]:
        call = request.tool_call
        if call["name"] not in self._gated:
            return await handler(request)
        thread_id = str(request.runtime.config["configurable"]["thread_id"])
        key = await self._approvals.approved(thread_id, str(call["id"]))
        token = approval_id_var.set(key)
        try:
            return await handler(request)
        finally:
            approval_id_var.reset(token)
