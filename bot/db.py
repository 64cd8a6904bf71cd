"""The bot's own database: SQLite (one aiosqlite connection) or PostgreSQL (a psycopg pool).

Callers write one dialect: `?` placeholders, and SQL that both backends share (`ON CONFLICT`,
conditional `UPDATE`, `RETURNING`). A statement on its own runs in autocommit; statements that
must land together (a decision and its audit record) run in `transaction()`. Rows come back as
dicts; the storage modules turn them into row types, frozen dataclasses whose fields are the
columns they read (`row_columns`, `row_values`), selected by name, never `*`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import re
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self, cast

import aiosqlite
from psycopg import AsyncConnection
from psycopg.rows import DictRow
from psycopg_pool import AsyncConnectionPool

from bot.connections import is_postgres, open_pool, setup_lock, sqlite_path
from bot.migrations import Dialect, migrate

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

Row = dict[str, Any]


def row_columns(row_type: type[DataclassInstance], alias: str = "") -> str:
    """The SELECT list of a row type: its fields, in order (each after `alias.`, for a join)."""
    prefix = f"{alias}." if alias else ""
    return ", ".join(prefix + field.name for field in fields(row_type))


def row_values(row_type: type[DataclassInstance], row: Row) -> dict[str, Any]:
    """The values of a row type's fields in a row read with its `row_columns`."""
    return {field.name: row[field.name] for field in fields(row_type)}


class RowType:
    """The base of a dataclass of named columns, read from a row selected with its
    `row_columns`."""

    @classmethod
    def from_row(cls, row: Row) -> Self:
        return cls(**row_values(cast("type[DataclassInstance]", cls), row))


POOL_SIZE = 10


class Statements(ABC):
    """Where statements run: the database in autocommit, or one open transaction."""

    @abstractmethod
    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; return how many rows it changed."""

    @abstractmethod
    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...

    async def execute_durable(self, sql: str, params: Sequence[Any] = ()) -> int:
        """`execute`, committed so that a power loss cannot undo it (nor, on SQLite, anything
        committed before it)."""
        return await self.execute(sql, params)

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None


class Database(Statements):
    dialect: Dialect

    @classmethod
    async def open(cls, database_url: str) -> Database:
        """Connect and bring the tables to the current schema version (`bot.migrations`); on
        PostgreSQL under the set-up lock, since replicas starting together on a new database
        would otherwise race on `CREATE TABLE`."""
        if is_postgres(database_url):
            pool = await open_pool(database_url, max_size=POOL_SIZE, name="bot")
            db: Database = PostgresDatabase(pool, database_url)
            try:
                async with setup_lock(database_url):
                    await migrate(db)
            except BaseException:
                await db.close()
                raise
            return db
        path = sqlite_path(database_url)
        path.parent.mkdir(parents=True, exist_ok=True)
        # No fsync per commit: a killed process loses nothing (the WAL is in the OS's cache),
        # a power loss the commits since the last fsync. `execute_durable` commits with one,
        # on a connection of its own; it syncs the one WAL file, so every commit before it on
        # any connection to the file is then durable too (README, "Durability").
        conn = await sqlite_connection(path, synchronous="NORMAL")
        try:
            durable = await sqlite_connection(path, synchronous="FULL")
        except BaseException:
            await conn.close()
            raise
        db = SqliteDatabase(conn, durable, path)
        try:
            await migrate(db)
        except BaseException:
            await db.close()
            raise
        return db

    @abstractmethod
    async def close(self) -> None: ...

    async def __aenter__(self) -> Database:
        """`async with await Database.open(url) as db:` closes it on the way out."""
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def settle(self) -> None:
        """Make what was committed so far durable, off any request's path (call when a run
        is over). On SQLite, commits skip the fsync (`synchronous=NORMAL`) until the next
        durable one, which then pays for all of them: after a busy spell, the first click's
        journal entry took 1-2 ms instead of 0.5 (B2). Nothing to do on PostgreSQL."""

    async def ping(self) -> bool:
        """A round trip to the database (readiness)."""
        return await self.fetchone("SELECT 1 AS ok") is not None

    @abstractmethod
    def transaction(self) -> contextlib.AbstractAsyncContextManager[Statements]:
        """Statements that commit together or not at all (rolled back if the body raises)."""


class _SqliteStatements(Statements):
    """Each statement in one trip to aiosqlite's thread: executed and read to the end there,
    so no cursor stays open across an await. The caller holds the connection's turn, which
    makes the change count's difference this statement's own."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        before = self._conn.total_changes
        await self._conn.execute_fetchall(sql, params)
        return self._conn.total_changes - before

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return [dict(row) for row in await self._conn.execute_fetchall(sql, params)]


async def sqlite_connection(path: Path, *, synchronous: str) -> aiosqlite.Connection:
    """An autocommit connection (every statement its own transaction; a claim is one
    statement) in WAL mode. Closed again if setting it up fails: aiosqlite's thread would
    otherwise keep the process from ever exiting."""
    conn = await aiosqlite.connect(path, isolation_level=None)
    try:
        conn.row_factory = aiosqlite.Row
        # First, so that the switch to WAL also waits its turn behind other processes
        # (replicas, `slack-approvals audit`) opening the same file.
        await conn.execute("PRAGMA busy_timeout=10000")
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute(f"PRAGMA synchronous={synchronous}")
    except BaseException:
        await conn.close()
        raise
    return conn


class SqliteDatabase(Database):
    dialect: Dialect = "sqlite"

    def __init__(
        self, conn: aiosqlite.Connection, durable: aiosqlite.Connection, path: Path
    ) -> None:
        self._wal = path.with_name(path.name + "-wal")
        self._settling = False
        self._settle_again = False
        self._conn = conn
        self._statements = _SqliteStatements(conn)
        self._durable_conn = durable
        self._durable = _SqliteStatements(durable)
        self._durable_turn = asyncio.Lock()
        # One statement (or transaction) at a time on the one connection: a write interleaved
        # with another task's open read transaction would have to upgrade it, which SQLite
        # refuses at once ("database is locked") while another connection writes.
        self._turn = asyncio.Lock()

    async def close(self) -> None:
        await self._durable_conn.close()
        await self._conn.close()

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        async with self._turn:
            return await self._statements.execute(sql, params)

    async def execute_durable(self, sql: str, params: Sequence[Any] = ()) -> int:
        async with self._durable_turn:
            return await self._durable.execute(sql, params)

    async def settle(self) -> None:
        # Concurrent calls coalesce: one fsync in flight, and one more after it if asked.
        if self._settling:
            self._settle_again = True
            return
        self._settling = True
        try:
            while True:
                self._settle_again = False
                await asyncio.to_thread(_fsync, self._wal)
                if not self._settle_again:
                    return
        finally:
            self._settling = False

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        async with self._turn:
            return await self._statements.fetchall(sql, params)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Statements]:
        async with self._turn:
            # IMMEDIATE takes the write lock up front (waiting out other processes under
            # busy_timeout) instead of failing to upgrade a read part-way through.
            await self._statements.execute("BEGIN IMMEDIATE")
            try:
                yield self._statements
            except BaseException:
                await asyncio.shield(self._statements.execute("ROLLBACK"))
                raise
            await asyncio.shield(self._statements.execute("COMMIT"))


class PostgresDatabase(Database):
    dialect: Dialect = "postgresql"

    def __init__(self, pool: AsyncConnectionPool[AsyncConnection[DictRow]], url: str) -> None:
        self.pool = pool
        self.url = url

    async def close(self) -> None:
        await self.pool.close()

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        async with self.pool.connection() as conn:
            return await _PostgresStatements(conn).execute(sql, params)

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        async with self.pool.connection() as conn:
            return await _PostgresStatements(conn).fetchall(sql, params)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Statements]:
        async with self.pool.connection() as conn, conn.transaction():
            yield _PostgresStatements(conn)


class _PostgresStatements(Statements):
    def __init__(self, conn: AsyncConnection[DictRow]) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        cursor = await self._conn.execute(to_psycopg(sql), params)
        return cursor.rowcount

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        cursor = await self._conn.execute(to_psycopg(sql), params)
        return await cursor.fetchall() if cursor.description is not None else []


def _fsync(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:  # no WAL yet, or none left after the last connection closed
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_LITERAL_OR_MARK = re.compile(r"'(?:[^']|'')*'|\?|%")


@functools.lru_cache(maxsize=512)
def to_psycopg(sql: str) -> str:
    """`?` → `%s` outside string literals; a literal `%` is doubled, since psycopg reads `%`
    as a placeholder anywhere once parameters are passed."""

    def swap(match: re.Match[str]) -> str:
        token = match.group()
        if token == "?":
            return "%s"
        return token.replace("%", "%%")

    return _LITERAL_OR_MARK.sub(swap, sql)
