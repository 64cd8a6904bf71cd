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

from contextvars import ContextVar
from dataclasses import replace

from langchain.agents.middleware.types import ToolCallRequest
from langchain.tools import ToolRuntime

APPROVAL_ID_KEY = "approval_id"
"""Where the key is in the runtime config of a tool that takes `runtime: ToolRuntime`:
`runtime.config["configurable"]["approval_id"]`."""

approval_id_var: ContextVar[str | None] = ContextVar("approval_id", default=None)
"""Set by the approval gate (`agent.gate.ApprovalGate`) around each approved gated call."""


def current_approval_id() -> str | None:
    """The approval id of the gated call running now; None outside an approved call."""
    return approval_id_var.get()


def with_approval_id(request: ToolCallRequest, approval_id: str | None) -> ToolCallRequest:
    """The request with the key in the runtime config its tool is given."""
    if approval_id is None or not isinstance(request.runtime, ToolRuntime):
        return request
    config = request.runtime.config
    configurable = {**config.get("configurable", {}), APPROVAL_ID_KEY: approval_id}
    runtime = replace(request.runtime, config={**config, "configurable": configurable})
    return replace(request, runtime=runtime)
