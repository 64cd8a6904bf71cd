"""Connections to the database `DATABASE_URL` names, for the bot's tables, the leases and the
LangGraph checkpointer alike: which backend a URL means, a pool of PostgreSQL connections, and
the advisory locks (the set-up lock every schema change of this app is made under)."""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from psycopg import AsyncConnection
from psycopg.pq import ConnStatus
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

# One key for every schema set-up of this app (the saver's and the bot's own tables).
SETUP_LOCK_KEY = 0x51AC_A990_0001
CONNECT_TIMEOUT_S = 10.0
LOCK_POLL_S = (0.01, 0.2)  # first and longest pause between tries for an advisory lock
# A pooled connection handed out this recently is not checked again before the next use.
CHECK_AFTER_IDLE_S = 1.0


def is_postgres(database_url: str) -> bool:
    return database_url.startswith(("postgresql://", "postgres://"))


def sqlite_path(database_url: str) -> Path:
    """`sqlite:///relative.db`, `sqlite:////abs/path.db` or a bare path."""
    path = (
        database_url.removeprefix("sqlite:///")
        if database_url.startswith("sqlite:")
        else database_url
    )
    return Path(path)


async def take_advisory_lock(
    conn: AsyncConnection[DictRow], key_sql: str, params: Sequence[Any]
) -> None:
    """Take the session advisory lock `key_sql` names (e.g. `%s, hashtext(%s)`), trying again
    and again instead of waiting inside `pg_advisory_lock`: a session waiting inside a
    statement holds a snapshot, and `CREATE INDEX CONCURRENTLY` (in the saver's migrations)
    waits for every snapshot, so the holder and its waiters would wait on each other for ever
    (and a long wait holds back vacuum)."""
    pause = LOCK_POLL_S[0]
    while True:
        cursor = await conn.execute(f"SELECT pg_try_advisory_lock({key_sql}) AS taken", params)
        row = await cursor.fetchone()
        if row is not None and row["taken"]:
            return
        await asyncio.sleep(pause)
        pause = min(pause * 2, LOCK_POLL_S[1])


@asynccontextmanager
async def setup_lock(database_url: str) -> AsyncIterator[None]:
    """Hold the app's set-up lock: replicas starting together on a new database otherwise
    race on `CREATE TABLE` and migrations ("already exists", duplicate keys)."""
    async with await AsyncConnection.connect(
        database_url, autocommit=True, row_factory=dict_row, connect_timeout=int(CONNECT_TIMEOUT_S)
    ) as conn:
        await take_advisory_lock(conn, "%s", (SETUP_LOCK_KEY,))
        yield
        # Closing the session releases the lock, also when set-up failed.


async def open_pool(
    database_url: str, *, max_size: int, name: str, min_size: int = 1
) -> AsyncConnectionPool[AsyncConnection[DictRow]]:
    """A pool of autocommit connections returning dict rows, as the saver and the bot expect."""
    kwargs: dict[str, Any] = {"autocommit": True, "row_factory": dict_row}
    pool: AsyncConnectionPool[AsyncConnection[DictRow]] = AsyncConnectionPool(
        database_url,
        min_size=min_size,
        max_size=max_size,
        kwargs=kwargs,
        connection_class=AsyncConnection[DictRow],
        name=name,
        open=False,
        check=_CheckWhenIdle(),
    )
    await pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)
    return pool


class _CheckWhenIdle:
    """A pool's check: a connection broken by a database restart is replaced before anyone
    gets it. A round trip of its own per use doubled the bot's statements in bursts (bench/
    README.md), so a connection handed out within the last `CHECK_AFTER_IDLE_S` goes unchecked:
    a restart in that window fails the statements then in flight, as it would anyway."""

    def __init__(self) -> None:
        self._handed_out: weakref.WeakKeyDictionary[AsyncConnection[DictRow], float] = (
            weakref.WeakKeyDictionary()
        )

    async def __call__(self, conn: AsyncConnection[DictRow]) -> None:
        now = time.monotonic()
        last = self._handed_out.get(conn)
        self._handed_out[conn] = now
        if last is None or now - last > CHECK_AFTER_IDLE_S or conn.pgconn.status != ConnStatus.OK:
            await AsyncConnectionPool.check_connection(conn)
