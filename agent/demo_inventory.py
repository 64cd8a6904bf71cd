"""The built-in demo infrastructure: a few clusters, instances and tables kept in SQLite.

The sandbox and the tests need tools that really change something, so that an approval visibly
has an effect (and a denial visibly has none), without touching any real system.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

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


R = TypeVar("R")
# The kinds of row that are taken out of service (terminated, dropped) rather than changed.
Retirable = TypeVar("Retirable", Instance, Table)


@dataclass(frozen=True)
class _Rows(Generic[R]):
    """One kind of row: its table, the columns its type is made of, and its key. All are this
    module's constants, never input: they go into the SQL as they are."""

    kind: str
    table: str
    columns: str
    key: str
    make: Callable[..., R]

    async def get(self, db: aiosqlite.Connection, value: str) -> R:
        """The row whose key is `value`; an unknown value is an error that lists the known
        ones."""
        query = f"SELECT {self.columns} FROM {self.table} WHERE {self.key} = ?"
        row = await (await db.execute(query, (value,))).fetchone()
        if row is None:
            known = await _ids(db, f"SELECT {self.key} FROM {self.table} ORDER BY {self.key}")
            raise ToolException(f"Unknown {self.kind} {value!r}. Known {self.kind}s: {known}.")
        return self.make(*row)


_CLUSTERS = _Rows("cluster", "clusters", "id, name, region, replicas, status", "id", Cluster)
_INSTANCES = _Rows("instance", "instances", "id, cluster_id, state", "id", Instance)
_TABLES = _Rows("table", "db_tables", "name, row_count, state", "name", Table)


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
            return await _CLUSTERS.get(db, cluster_id)

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
            return await _INSTANCES.get(db, instance_id)

    async def get_table(self, table: str) -> Table:
        async with self._connect() as db:
            return await _TABLES.get(db, table)

    async def scale_down(self, cluster_id: str, replicas: int) -> tuple[Cluster, Cluster]:
        """Scale a running cluster down; returns the cluster before and after."""
        async with self._connect() as db, _transaction(db):
            before = await _CLUSTERS.get(db, cluster_id)
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
            return before, await _CLUSTERS.get(db, cluster_id)

    async def delete_cluster(self, cluster_id: str) -> tuple[Cluster, list[Instance]]:
        """Delete a cluster and terminate its instances; returns it and the instances stopped."""
        async with self._connect() as db, _transaction(db):
            cluster = await _CLUSTERS.get(db, cluster_id)
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
        return await self._retire(
            _INSTANCES, instance_id, "running", "state = 'terminated'", "is already {0.state}"
        )

    async def drop_table(self, table: str) -> Table:
        """Drop a table; returns it as it was."""
        return await self._retire(
            _TABLES, table, "present", "state = 'dropped', row_count = 0", "was already dropped"
        )

    async def _retire(
        self, rows: _Rows[Retirable], value: str, live: str, retired: str, refusal: str
    ) -> Retirable:
        """Take a `live` row out of service (`retired`: what it is set to); returns it as it
        was. `refusal` (formatted with the row) says why a row no longer live is left."""
        async with self._connect() as db, _transaction(db):
            found = await rows.get(db, value)
            if found.state != live:
                raise ToolException(f"{rows.kind.capitalize()} {value} {refusal.format(found)}.")
            await db.execute(f"UPDATE {rows.table} SET {retired} WHERE {rows.key} = ?", (value,))
            return found


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
