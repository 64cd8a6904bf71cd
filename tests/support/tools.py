"""A team's own toolset, as `APPROVALS_TOOLS=tests.support.tools:TOOLS` loads it.

Every execution is recorded, so tests can count how often a gated call really ran.
`GATE` lets a test hold a tool mid-run (to click again, or to crash the bot there).
"""

from __future__ import annotations

import asyncio

from langchain_core.tools import ToolException, tool

EXECUTIONS: list[tuple[str, dict[str, object]]] = []
GATE: dict[str, asyncio.Event] = {}


async def _record(name: str, args: dict[str, object]) -> None:
    EXECUTIONS.append((name, args))
    if name in GATE:
        await GATE[name].wait()


@tool
async def list_clusters() -> str:
    """List the clusters and their replica counts."""
    await _record("list_clusters", {})
    return "cl-001 (3 replicas), cl-002 (5 replicas)"


@tool
async def scale_down(cluster_id: str, replicas: int) -> str:
    """Scale a cluster down to the given number of replicas."""
    await _record("scale_down", {"cluster_id": cluster_id, "replicas": replicas})
    if cluster_id == "explode":
        raise ToolException("cluster explode is on fire")
    return f"{cluster_id} scaled down to {replicas} replicas"


@tool
def delete_cluster(cluster_id: str) -> str:
    """Delete a cluster for good (a sync tool: LangChain runs it in a worker thread)."""
    EXECUTIONS.append(("delete_cluster", {"cluster_id": cluster_id}))
    if cluster_id == "explode":
        raise RuntimeError("the disk is on fire")  # an ordinary exception, as tools raise
    return f"{cluster_id} deleted"


@tool
async def describe_cluster(cluster_id: str) -> str:
    """Describe one cluster (read-only)."""
    await _record("describe_cluster", {"cluster_id": cluster_id})
    if cluster_id == "explode":
        raise ConnectionError("inventory service unreachable")
    return f"{cluster_id}: 3 replicas, healthy"


@tool
async def run_sql(statement: str, database: str = "main") -> str:
    """Run one SQL statement."""
    await _record("run_sql", {"statement": statement, "database": database})
    return f"ran {len(statement)} characters on {database}"


# Tool errors go back to the model as the result, as a team's tools usually do.
scale_down.handle_tool_error = True

TOOLS = [list_clusters, describe_cluster, scale_down, delete_cluster, run_sql]


def executions(name: str) -> list[dict[str, object]]:
    return [args for tool_name, args in EXECUTIONS if tool_name == name]
