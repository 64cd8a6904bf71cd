"""The built-in demo infrastructure: a few clusters, instances and tables kept in SQLite.

The sandbox and the tests need tools that really change something, so that an approval visibly
has an effect (and a denial visibly has none), without touching any real system.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiosqlite
from langchain_core.tools import ToolException

_SCHEMA = """
CREATE TABLE IF NOT EXISTS demo_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS clusters (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    region TEXT NOT NULL,
    replicas INTEGER NOT NULL,
    status TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS instances (
    id TEXT PRIMARY KEY,
    cluster_id TEXT NOT NULL,
    state TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS db_tables (
    name TEXT PRIMARY KEY,
    row_count INTEGER NOT NULL,
    state TEXT NOT NULL
);
"""

_SEED_CLUSTERS = (
    ("cl-001", "payments-api", "us-east-1", 5, "running"),
    ("cl-002", "search-indexer", "eu-west-1", 3, "running"),
    ("cl-003", "legacy-batch", "us-west-2", 2, "running"),
    ("cl-004", "analytics-staging", "eu-central-1", 4, "running"),
)
_SEED_INSTANCES = (
    ("i-0abc", "cl-001", "running"),
    ("i-0def", "cl-001", "running"),
    ("i-0123", "cl-002", "running"),
)
_SEED_TABLES = (
    ("audit_2019", 1_204_332, "present"),
    ("audit_2020", 2_310_977, "present"),
    ("users", 48_210, "present"),
)


@dataclass(frozen=True, slots=True)
class Cluster:
    id: str
    name: str
    region: str
    replicas: int
    status: str


@dataclass(frozen=True, slots=True)
class Instance:
    id: str
    cluster_id: str
    state: str


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    row_count: int
    state: str


class DemoInventory:
    """The demo inventory in the SQLite file at `path`, created and seeded on first use.

    Every operation opens its own connection, so nothing stays open between calls and other
    processes (or tests) can read the file at any time. Unknown or already-removed ids raise
    `ToolException`, whose message is meant for the model and the person reading the thread.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._ready = False
        self._ready_lock = asyncio.Lock()

    async def setup(self) -> None:
        """Create and seed the inventory unless that was done already, by anyone."""
        async with self._ready_lock:
            if self._ready:
                return
            await asyncio.to_thread(self.path.parent.mkdir, parents=True, exist_ok=True)
            async with aiosqlite.connect(self.path, isolation_level=None) as db:
                await db.executescript(_SCHEMA)
                # The seed goes in once per file, never again: otherwise a restart would bring
                # back the clusters a demo deleted.
                async with _transaction(db):
                    cursor = await db.execute("SELECT 1 FROM demo_meta WHERE key = 'seeded'")
                    if await cursor.fetchone() is None:
                        await db.executemany(
                            "INSERT INTO clusters VALUES (?, ?, ?, ?, ?)", _SEED_CLUSTERS
                        )
                        await db.executemany(
                            "INSERT INTO instances VALUES (?, ?, ?)", _SEED_INSTANCES
                        )
                        await db.executemany("INSERT INTO db_tables VALUES (?, ?, ?)", _SEED_TABLES)
                        await db.execute("INSERT INTO demo_meta VALUES ('seeded', '1')")
            self._ready = True

    @asynccontextmanager
    async def _connect(self) -> AsyncIterator[aiosqlite.Connection]:
        await self.setup()
        async with aiosqlite.connect(self.path, isolation_level=None) as db:
            yield db

    async def list_clusters(self) -> list[Cluster]:
        async with self._connect() as db:
            cursor = await db.execute(
                "SELECT id, name, region, replicas, status FROM clusters ORDER BY id"
            )
            return [Cluster(*row) for row in await cursor.fetchall()]

    async def get_cluster(self, cluster_id: str) -> Cluster:
        async with self._connect() as db:
            return await self._cluster(db, cluster_id)

    async def list_instances(self, cluster_id: str | None = None) -> list[Instance]:
        async with self._connect() as db:
            if cluster_id is None:
                cursor = await db.execute("SELECT id, cluster_id, state FROM instances ORDER BY id")
            else:
                cursor = await db.execute(
                    "SELECT id, cluster_id, state FROM instances WHERE cluster_id = ? ORDER BY id",
                    (cluster_id,),
                )
            return [Instance(*row) for row in await cursor.fetchall()]

    async def get_instance(self, instance_id: str) -> Instance:
        async with self._connect() as db:
            return await self._instance(db, instance_id)

    async def get_table(self, table: str) -> Table:
        async with self._connect() as db:
            return await self._table(db, table)

    async def scale_down(self, cluster_id: str, replicas: int) -> tuple[Cluster, Cluster]:
        """Scale a running cluster down; returns the cluster before and after."""
        async with self._connect() as db, _transaction(db):
            before = await self._cluster(db, cluster_id)
            _require_running(before)
            if not 0 <= replicas < before.replicas:
                raise ToolException(
                    f"Cannot scale {cluster_id} down to {replica_count(replicas)}: it runs "
                    f"{before.replicas}, so the new count must be between 0 and "
                    f"{before.replicas - 1}. Nothing was changed."
                )
            await db.execute(
                "UPDATE clusters SET replicas = ? WHERE id = ?", (replicas, cluster_id)
            )
            return before, await self._cluster(db, cluster_id)

    async def delete_cluster(self, cluster_id: str) -> tuple[Cluster, list[Instance]]:
        """Delete a cluster and terminate its instances; returns it and the instances stopped."""
        async with self._connect() as db, _transaction(db):
            cluster = await self._cluster(db, cluster_id)
            _require_running(cluster)
            cursor = await db.execute(
                "SELECT id, cluster_id, state FROM instances "
                "WHERE cluster_id = ? AND state = 'running' ORDER BY id",
                (cluster_id,),
            )
            stopped = [Instance(*row) for row in await cursor.fetchall()]
            await db.execute(
                "UPDATE instances SET state = 'terminated' WHERE cluster_id = ?", (cluster_id,)
            )
            await db.execute(
                "UPDATE clusters SET status = 'deleted', replicas = 0 WHERE id = ?", (cluster_id,)
            )
            return cluster, stopped

    async def terminate_instance(self, instance_id: str) -> Instance:
        """Terminate a running instance; returns it as it was."""
        async with self._connect() as db, _transaction(db):
            instance = await self._instance(db, instance_id)
            if instance.state != "running":
                raise ToolException(f"Instance {instance_id} is already {instance.state}.")
            await db.execute(
                "UPDATE instances SET state = 'terminated' WHERE id = ?", (instance_id,)
            )
            return instance

    async def drop_table(self, table: str) -> Table:
        """Drop a table; returns it as it was."""
        async with self._connect() as db, _transaction(db):
            found = await self._table(db, table)
            if found.state != "present":
                raise ToolException(f"Table {table} was already dropped.")
            await db.execute(
                "UPDATE db_tables SET state = 'dropped', row_count = 0 WHERE name = ?", (table,)
            )
            return found

    @staticmethod
    async def _cluster(db: aiosqlite.Connection, cluster_id: str) -> Cluster:
        columns = "id, name, region, replicas, status"
        return Cluster(*await _row(db, "clusters", columns, "id", cluster_id, "cluster"))

    @staticmethod
    async def _instance(db: aiosqlite.Connection, instance_id: str) -> Instance:
        columns = "id, cluster_id, state"
        return Instance(*await _row(db, "instances", columns, "id", instance_id, "instance"))

    @staticmethod
    async def _table(db: aiosqlite.Connection, table: str) -> Table:
        return Table(*await _row(db, "db_tables", "name, row_count, state", "name", table, "table"))


async def _row(
    db: aiosqlite.Connection, table: str, columns: str, key: str, value: str, kind: str
) -> aiosqlite.Row:
    """The row of `table` whose `key` is `value`; an unknown value is an error that lists the
    known ones. `table`, `columns` and `key` are this module's constants, never input."""
    cursor = await db.execute(f"SELECT {columns} FROM {table} WHERE {key} = ?", (value,))
    row = await cursor.fetchone()
    if row is None:
        known = await _ids(db, f"SELECT {key} FROM {table} ORDER BY {key}")
        raise ToolException(f"Unknown {kind} {value!r}. Known {kind}s: {known}.")
    return row


@asynccontextmanager
async def _transaction(db: aiosqlite.Connection) -> AsyncIterator[None]:
    # IMMEDIATE takes the write lock before the first read, so a check and the change it
    # guards cannot interleave with another connection's (another replica's, another test's).
    await db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        await db.execute("ROLLBACK")
        raise
    await db.execute("COMMIT")


async def _ids(db: aiosqlite.Connection, query: str) -> str:
    cursor = await db.execute(query)
    return ", ".join(str(row[0]) for row in await cursor.fetchall())


def _require_running(cluster: Cluster) -> None:
    if cluster.status != "running":
        raise ToolException(f"Cluster {cluster.id} is {cluster.status}; nothing was changed.")


def replica_count(count: int) -> str:
    return f"{count} replica" if count == 1 else f"{count} replicas"
