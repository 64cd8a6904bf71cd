"""The bot's own database: SQLite (one aiosqlite connection) or PostgreSQL (a psycopg pool).

Callers write one dialect: `?` placeholders, and SQL that both backends share (`ON CONFLICT`,
conditional `UPDATE`). Every statement runs in autocommit, so a claim is one atomic statement
on either backend, and rows come back as dicts.
"""

from __future__ import annotations

import asyncio
import functools
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import aiosqlite
from psycopg import AsyncConnection
from psycopg.rows import DictRow
from psycopg_pool import AsyncConnectionPool

from agent.checkpointer import is_postgres, open_pool, setup_lock, sqlite_path
from bot.schema import Dialect, statements

Row = dict[str, Any]

POOL_SIZE = 10


class Database(ABC):
    dialect: Dialect

    @classmethod
    async def open(cls, database_url: str) -> Database:
        """Connect and create the tables; on PostgreSQL under the set-up lock, since replicas
        starting together on a new database would otherwise race on `CREATE TABLE`."""
        if is_postgres(database_url):
            pool = await open_pool(database_url, max_size=POOL_SIZE, name="bot")
            db: Database = PostgresDatabase(pool, database_url)
            try:
                async with setup_lock(database_url):
                    for statement in statements("postgresql"):
                        await db.execute(statement)
            except BaseException:
                await db.close()
                raise
            return db
        path = sqlite_path(database_url)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit: every statement is its own transaction, and a claim is one statement.
        conn = await aiosqlite.connect(path, isolation_level=None)
        conn.row_factory = aiosqlite.Row
        await conn.execute("PRAGMA journal_mode=WAL")
        # Other processes on the same file (replicas, `slack-approvals audit`) wait their turn.
        await conn.execute("PRAGMA busy_timeout=10000")
        await conn.executescript(";\n".join(statements("sqlite")) + ";")
        return SqliteDatabase(conn)

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; return how many rows it changed."""

    @abstractmethod
    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None: ...

    @abstractmethod
    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...


class SqliteDatabase(Database):
    dialect: Dialect = "sqlite"

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn
        # One statement at a time, start to finish: a half-read SELECT keeps a read
        # transaction open, and a write interleaved with it would have to upgrade it, which
        # SQLite refuses at once ("database is locked") while another connection writes.
        self._turn = asyncio.Lock()

    async def close(self) -> None:
        await self._conn.close()

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        async with self._turn, self._conn.execute(sql, params) as cursor:
            return cursor.rowcount

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        async with self._turn, self._conn.execute(sql, params) as cursor:
            row = await cursor.fetchone()
        return dict(row) if row is not None else None

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        async with self._turn, self._conn.execute(sql, params) as cursor:
            rows = await cursor.fetchall()
        return [dict(row) for row in rows]


class PostgresDatabase(Database):
    dialect: Dialect = "postgresql"

    def __init__(self, pool: AsyncConnectionPool[AsyncConnection[DictRow]], url: str) -> None:
        self.pool = pool
        self.url = url

    async def close(self) -> None:
        await self.pool.close()

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        async with self.pool.connection() as conn:
            cursor = await conn.execute(to_psycopg(sql), params)
            return cursor.rowcount

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        async with self.pool.connection() as conn:
            cursor = await conn.execute(to_psycopg(sql), params)
            return await cursor.fetchone()

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        async with self.pool.connection() as conn:
            cursor = await conn.execute(to_psycopg(sql), params)
            return await cursor.fetchall()


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
