"""The bot's own database: a thin async layer over SQLite (aiosqlite).

SQL is kept to what SQLite and PostgreSQL share (`ON CONFLICT`, conditional
`UPDATE`), so the same statements serve both backends.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiosqlite

from agent.checkpointer import sqlite_path

Row = dict[str, Any]

SCHEMA = """
CREATE TABLE IF NOT EXISTS approvals (
    id TEXT PRIMARY KEY,
    interrupt_id TEXT NOT NULL UNIQUE,
    conversation TEXT NOT NULL,
    team_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    thread_ts TEXT NOT NULL,
    message_ts TEXT,
    tool_call_id TEXT NOT NULL,
    tool TEXT NOT NULL,
    args TEXT NOT NULL,
    description TEXT NOT NULL,
    requester TEXT NOT NULL,
    status TEXT NOT NULL,
    policy TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL,
    decided_by TEXT,
    decided_at REAL,
    reason TEXT,
    decision TEXT,
    resumed_at REAL
);
CREATE INDEX IF NOT EXISTS approvals_by_conversation ON approvals (conversation, status);
CREATE TABLE IF NOT EXISTS seen_events (
    key TEXT PRIMARY KEY,
    seen_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS journal (
    thread_id TEXT NOT NULL,
    tool_call_id TEXT NOT NULL,
    tool TEXT NOT NULL,
    args TEXT NOT NULL,
    status TEXT NOT NULL,
    result TEXT,
    result_status TEXT,
    started_at REAL NOT NULL,
    finished_at REAL,
    PRIMARY KEY (thread_id, tool_call_id)
);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    event TEXT NOT NULL,
    approval_id TEXT,
    conversation TEXT,
    tool TEXT,
    args TEXT,
    actor TEXT,
    reason TEXT,
    detail TEXT
);
"""


class Database:
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    @classmethod
    async def open(cls, database_url: str) -> Database:
        path: Path = sqlite_path(database_url)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit: every statement is its own transaction, and a claim is one statement.
        conn = await aiosqlite.connect(path, isolation_level=None)
        conn.row_factory = aiosqlite.Row
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA busy_timeout=10000")
        await conn.executescript(SCHEMA)
        return cls(conn)

    async def close(self) -> None:
        await self._conn.close()

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; return how many rows it changed."""
        async with self._conn.execute(sql, params) as cursor:
            return cursor.rowcount

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        async with self._conn.execute(sql, params) as cursor:
            row = await cursor.fetchone()
        return dict(row) if row is not None else None

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        async with self._conn.execute(sql, params) as cursor:
            rows = await cursor.fetchall()
        return [dict(row) for row in rows]
