"""A team's Python tools beside MCP tools (`APPROVALS_TOOLS=tests.support.keyed_tools:TOOLS`):
each records the idempotency key it read while it ran."""

from __future__ import annotations

from langchain.tools import ToolRuntime
from langchain_core.tools import tool

from agent.idempotency import APPROVAL_ID_KEY, current_approval_id

KEYS: list[tuple[str, str | None]] = []


@tool
async def rotate_secret(service: str, runtime: ToolRuntime) -> str:
    """Rotate a service's secret."""
    key = current_approval_id()
    # The same key in the tool's runtime config, for tools that read it there.
    configured = runtime.config.get("configurable", {}).get(APPROVAL_ID_KEY)
    KEYS.append(("rotate_secret", key if configured == key else f"runtime config: {configured}"))
    return f"{service} secret rotated"


@tool
def purge_cache(service: str) -> str:
    """Purge a service's cache (a sync tool: LangChain runs it in a worker thread)."""
    KEYS.append(("purge_cache", current_approval_id()))
    return f"{service} cache purged"


TOOLS = [rotate_secret, purge_cache]
