from __future__ import annotations

from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool, StructuredTool
from pydantic import ValidationError

from agent.demo_tools import DEMO_SAFE_TOOLS, DemoInventory, build_demo_tools


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "inventory.sqlite"


@pytest.fixture
def tools(db_path: Path) -> dict[str, BaseTool]:
    return {t.name: t for t in build_demo_tools(DemoInventory(db_path))}


async def call(tool: BaseTool, **args: Any) -> ToolMessage:
    """Invoke a tool the way an agent does, so a handled error comes back as a ToolMessage."""
    message = await tool.ainvoke(
        {"type": "tool_call", "id": "call_1", "name": tool.name, "args": args}
    )
    assert isinstance(message, ToolMessage)
    return message


async def fetch(db_path: Path, query: str, *params: Any) -> list[tuple[Any, ...]]:
    """Read the file with a connection of our own, as another process would."""
    async with aiosqlite.connect(db_path) as db:
        cursor = await db.execute(query, params)
        return [tuple(row) for row in await cursor.fetchall()]


def test_tool_set() -> None:
    tools = build_demo_tools(DemoInventory("unused.sqlite"))
    names = [t.name for t in tools]
    assert names == [
        "list_clusters",
        "describe_cluster",
        "scale_down",
        "delete_cluster",
        "terminate_instance",
        "drop_table",
    ]
    assert set(DEMO_SAFE_TOOLS) <= set(names)
    for tool in tools:
        assert tool.description
        assert isinstance(tool, StructuredTool)
        assert tool.coroutine is not None
        assert tool.handle_tool_error is True


async def test_seeded_on_first_use(tools: dict[str, BaseTool], db_path: Path) -> None:
    result = await call(tools["list_clusters"])
    assert result.status == "success"
    for cluster_id in ("cl-001", "cl-002", "cl-003", "cl-004"):
        assert cluster_id in result.text
    assert "cl-001 (payments-api, us-east-1): running, 5 replicas" in result.text
    assert await fetch(db_path, "SELECT id, cluster_id, state FROM instances ORDER BY id") == [
        ("i-0123", "cl-002", "running"),
        ("i-0abc", "cl-001", "running"),
        ("i-0def", "cl-001", "running"),
    ]
    assert [r[0] for r in await fetch(db_path, "SELECT name FROM db_tables ORDER BY name")] == [
        "audit_2019",
        "audit_2020",
        "users",
    ]


async def test_seed_is_not_repeated(tools: dict[str, BaseTool], db_path: Path) -> None:
    await call(tools["delete_cluster"], cluster_id="cl-003")
    # A new inventory on the same file (a restart) must not bring the deleted cluster back.
    reopened = DemoInventory(db_path)
    await reopened.setup()
    assert (await reopened.get_cluster("cl-003")).status == "deleted"
    assert len(await reopened.list_clusters()) == 4


async def test_describe_cluster(tools: dict[str, BaseTool]) -> None:
    result = await call(tools["describe_cluster"], cluster_id="cl-001")
    assert result.status == "success"
    assert result.text == (
        "cl-001 (payments-api, us-east-1): running, 5 replicas; "
        "instances: i-0abc (running), i-0def (running)"
    )


async def test_scale_down_changes_the_inventory(tools: dict[str, BaseTool], db_path: Path) -> None:
    result = await call(tools["scale_down"], cluster_id="cl-001", replicas=2)
    assert result.status == "success"
    assert result.text == "Scaled cl-001 down from 5 to 2 replicas."
    assert await fetch(db_path, "SELECT replicas FROM clusters WHERE id = 'cl-001'") == [(2,)]
    described = await call(tools["describe_cluster"], cluster_id="cl-001")
    assert "running, 2 replicas" in described.text


@pytest.mark.parametrize("replicas", [5, 9])
async def test_scale_down_must_lower_the_count(
    tools: dict[str, BaseTool], db_path: Path, replicas: int
) -> None:
    result = await call(tools["scale_down"], cluster_id="cl-001", replicas=replicas)
    assert result.status == "error"
    assert "it runs 5" in result.text
    assert "between 0 and 4" in result.text
    assert await fetch(db_path, "SELECT replicas FROM clusters WHERE id = 'cl-001'") == [(5,)]


async def test_scale_down_rejects_negative_replicas(tools: dict[str, BaseTool]) -> None:
    # The schema says so (the model sees "minimum": 0), and the tool enforces it.
    assert tools["scale_down"].args["replicas"]["minimum"] == 0
    with pytest.raises(ValidationError, match="greater than or equal to 0"):
        await tools["scale_down"].ainvoke({"cluster_id": "cl-001", "replicas": -1})


async def test_scale_down_coerces_a_numeric_string(tools: dict[str, BaseTool]) -> None:
    result = await call(tools["scale_down"], cluster_id="cl-002", replicas="1")
    assert result.text == "Scaled cl-002 down from 3 to 1 replica."


async def test_delete_cluster(tools: dict[str, BaseTool], db_path: Path) -> None:
    result = await call(tools["delete_cluster"], cluster_id="cl-001")
    assert result.status == "success"
    assert result.text == (
        "Deleted cluster cl-001 (payments-api) and terminated its instances i-0abc, i-0def."
    )
    assert await fetch(db_path, "SELECT status, replicas FROM clusters WHERE id = 'cl-001'") == [
        ("deleted", 0)
    ]
    assert await fetch(
        db_path, "SELECT DISTINCT state FROM instances WHERE cluster_id = 'cl-001'"
    ) == [("terminated",)]
    described = await call(tools["describe_cluster"], cluster_id="cl-001")
    assert "deleted, 0 replicas" in described.text

    again = await call(tools["delete_cluster"], cluster_id="cl-001")
    assert again.status == "error"
    assert again.text == "Cluster cl-001 is deleted; nothing was changed."
    scaled = await call(tools["scale_down"], cluster_id="cl-001", replicas=0)
    assert scaled.status == "error"
    assert "is deleted" in scaled.text


async def test_terminate_instance(tools: dict[str, BaseTool], db_path: Path) -> None:
    result = await call(tools["terminate_instance"], instance_id="i-0123")
    assert result.status == "success"
    assert result.text == "Terminated instance i-0123 (cluster cl-002)."
    assert await fetch(db_path, "SELECT state FROM instances WHERE id = 'i-0123'") == [
        ("terminated",)
    ]
    again = await call(tools["terminate_instance"], instance_id="i-0123")
    assert again.status == "error"
    assert again.text == "Instance i-0123 is already terminated."


async def test_drop_table(tools: dict[str, BaseTool], db_path: Path) -> None:
    result = await call(tools["drop_table"], table="audit_2019")
    assert result.status == "success"
    assert result.text == "Dropped table audit_2019 (1,204,332 rows)."
    assert await fetch(
        db_path, "SELECT state, row_count FROM db_tables WHERE name = 'audit_2019'"
    ) == [("dropped", 0)]
    again = await call(tools["drop_table"], table="audit_2019")
    assert again.status == "error"
    assert again.text == "Table audit_2019 was already dropped."


@pytest.mark.parametrize(
    ("tool", "args", "message"),
    [
        (
            "describe_cluster",
            {"cluster_id": "cl-999"},
            "Unknown cluster 'cl-999'. Known clusters: ",
        ),
        ("scale_down", {"cluster_id": "cl-999", "replicas": 1}, "Unknown cluster 'cl-999'."),
        ("delete_cluster", {"cluster_id": "nope"}, "Unknown cluster 'nope'."),
        ("terminate_instance", {"instance_id": "i-9"}, "Unknown instance 'i-9'. Known instances: "),
        ("drop_table", {"table": "orders"}, "Unknown table 'orders'. Known tables: "),
    ],
)
async def test_unknown_ids_give_clear_errors(
    tools: dict[str, BaseTool], db_path: Path, tool: str, args: dict[str, Any], message: str
) -> None:
    await DemoInventory(db_path).setup()
    everything = "SELECT * FROM clusters, instances, db_tables"
    before = await fetch(db_path, everything)
    result = await call(tools[tool], **args)
    assert result.status == "error"
    assert result.text.startswith(message)
    assert await fetch(db_path, everything) == before


async def test_error_lists_known_ids(tools: dict[str, BaseTool]) -> None:
    result = await call(tools["drop_table"], table="orders")
    assert result.text == "Unknown table 'orders'. Known tables: audit_2019, audit_2020, users."


async def test_inventory_readers(db_path: Path) -> None:
    inventory = DemoInventory(db_path)
    await inventory.terminate_instance("i-0abc")
    assert (await inventory.get_instance("i-0abc")).state == "terminated"
    assert [i.id for i in await inventory.list_instances("cl-001")] == ["i-0abc", "i-0def"]
    assert (await inventory.get_table("users")).row_count == 48_210
