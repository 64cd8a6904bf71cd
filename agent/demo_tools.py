"""The built-in demo tools, acting on the demo inventory (`agent.demo_inventory`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, Field

from agent.demo_inventory import Cluster, DemoInventory, Instance, replica_count

__all__ = ["DEMO_SAFE_TOOLS", "DemoInventory", "build_demo_tools"]

DEMO_SAFE_TOOLS = ("list_clusters", "describe_cluster")
"""Demo tools that only read; every other demo tool changes the inventory."""


def _describe(cluster: Cluster, instances: list[Instance]) -> str:
    text = (
        f"{cluster.id} ({cluster.name}, {cluster.region}): {cluster.status}, "
        f"{replica_count(cluster.replicas)}"
    )
    if instances:
        text += "; instances: " + ", ".join(f"{i.id} ({i.state})" for i in instances)
    return text


class _NoArgs(BaseModel):
    pass


class _ClusterArgs(BaseModel):
    cluster_id: str = Field(description="The cluster's id, e.g. cl-001.")


class _ScaleDownArgs(BaseModel):
    cluster_id: str = Field(description="The cluster's id, e.g. cl-001.")
    replicas: int = Field(
        ge=0, description="The new replica count: at least 0 and below the current count."
    )


class _InstanceArgs(BaseModel):
    instance_id: str = Field(description="The instance's id, e.g. i-0abc.")


class _TableArgs(BaseModel):
    table: str = Field(description="The table's name, e.g. audit_2019.")


def build_demo_tools(inventory: DemoInventory) -> list[BaseTool]:
    """The demo tools, async, acting on `inventory`.

    Unknown ids and impossible requests raise `ToolException`; `handle_tool_error=True` turns
    that into the tool's result (status "error") so the model can tell the person what went wrong.
    """

    async def list_clusters() -> str:
        """List every cluster with its region, status and replica count. Read-only."""
        clusters = await inventory.list_clusters()
        return "\n".join(_describe(c, []) for c in clusters) or "There are no clusters."

    async def describe_cluster(cluster_id: str) -> str:
        """Show one cluster: name, region, status, replica count and its instances. Read-only."""
        cluster = await inventory.get_cluster(cluster_id)
        return _describe(cluster, await inventory.list_instances(cluster_id))

    async def scale_down(cluster_id: str, replicas: int) -> str:
        """Scale a running cluster down to fewer replicas. Destructive: capacity drops at once."""
        before, after = await inventory.scale_down(cluster_id, replicas)
        return (
            f"Scaled {cluster_id} down from {before.replicas} to {replica_count(after.replicas)}."
        )

    async def delete_cluster(cluster_id: str) -> str:
        """Delete a cluster and terminate all of its instances. Destructive and irreversible."""
        cluster, stopped = await inventory.delete_cluster(cluster_id)
        text = f"Deleted cluster {cluster_id} ({cluster.name})"
        if stopped:
            text += " and terminated its instances " + ", ".join(i.id for i in stopped)
        return text + "."

    async def terminate_instance(instance_id: str) -> str:
        """Terminate one running instance. Destructive and irreversible."""
        instance = await inventory.terminate_instance(instance_id)
        return f"Terminated instance {instance_id} (cluster {instance.cluster_id})."

    async def drop_table(table: str) -> str:
        """Drop a database table with all of its rows. Destructive and irreversible."""
        dropped = await inventory.drop_table(table)
        return f"Dropped table {table} ({dropped.row_count:,} rows)."

    specs: list[tuple[Callable[..., Awaitable[str]], type[BaseModel]]] = [
        (list_clusters, _NoArgs),
        (describe_cluster, _ClusterArgs),
        (scale_down, _ScaleDownArgs),
        (delete_cluster, _ClusterArgs),
        (terminate_instance, _InstanceArgs),
        (drop_table, _TableArgs),
    ]
    return [
        StructuredTool.from_function(
            coroutine=coroutine,
            args_schema=schema,
            handle_tool_error=True,
        )
        for coroutine, schema in specs
    ]
