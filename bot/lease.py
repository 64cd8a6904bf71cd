"""Conversation leases: one run per conversation at a time, across processes (docs/design.md,
"One run per conversation").

On PostgreSQL a lease is a session advisory lock held on its own pooled connection; a killed
process's locks go the moment its connections close. On SQLite it is a row with an expiry
that the holder keeps renewing; a waiter may take it over once it expires, or at once if the
holder was a process on this machine that no longer exists.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from psycopg import AsyncConnection
from psycopg.rows import DictRow
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from bot.connections import open_pool, take_advisory_lock
from bot.db import Database, PostgresDatabase

log = logging.getLogger(__name__)

# Advisory locks taken with two int4 keys live apart from single-key ones (the set-up lock);
# the first key keeps this app's leases apart from other users of the same database.
LEASE_NAMESPACE = 0x51AC
# How many conversations one process may run at the same time; more wait for a connection.
LEASE_POOL_SIZE = 16
POOL_WAIT_S = 60.0

ROW_TTL_S = 15.0
ROW_RENEW_S = 5.0
ROW_POLL_S = (0.02, 0.25)  # first and longest pause between attempts on a taken row


class Leases(ABC):
    @abstractmethod
    def hold(self, key: str) -> contextlib.AbstractAsyncContextManager[None]:
        """Wait for the lease on `key` and hold it for the body of the `async with`. Callers
        queue in-process first, so one process asks for each key at most once at a time."""

    @abstractmethod
    async def close(self) -> None: ...


async def open_leases(db: Database) -> Leases:
    if isinstance(db, PostgresDatabase):
        pool = await open_pool(db.url, max_size=LEASE_POOL_SIZE, name="leases", min_size=0)
        return AdvisoryLeases(pool)
    return RowLeases(db)


class AdvisoryLeases(Leases):
    def __init__(self, pool: AsyncConnectionPool[AsyncConnection[DictRow]]) -> None:
        self._pool = pool

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        conn = await self._connection(key)
        released = False
        try:
            await take_advisory_lock(conn, "%s, hashtext(%s)", (LEASE_NAMESPACE, key))
            try:
                yield
            finally:
                await conn.execute(
                    "SELECT pg_advisory_unlock(%s, hashtext(%s))", (LEASE_NAMESPACE, key)
                )
                released = True
        finally:
            if not released:
                # Interrupted while waiting for the lock or releasing it: closing the session
                # is the one sure way to let it go (the pool replaces the connection).
                await conn.close()
            await self._pool.putconn(conn)

    async def _connection(self, key: str) -> AsyncConnection[DictRow]:
        while True:
            try:
                return await self._pool.getconn(timeout=POOL_WAIT_S)
            except PoolTimeout:
                log.warning(
                    "still waiting to run %s: all %d lease connections are held by runs",
                    key,
                    LEASE_POOL_SIZE,
                )

    async def close(self) -> None:
        await self._pool.close()


def _process_id() -> str:
    """Who holds a row lease: host, PID namespace and PID, so a waiter on the same machine can
    tell a dead holder from a live one, plus a random part so a reused PID is not mistaken."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = "?"
    return f"{socket.gethostname()}|{namespace}|{os.getpid()}|{secrets.token_hex(4)}"


def _holder_is_dead(holder: str, me: str) -> bool:
    parts, mine = holder.split("|"), me.split("|")
    if len(parts) != 4 or parts[:2] != mine[:2] or parts[1] == "?" or not parts[2].isdigit():
        return False  # another machine or container: only the expiry can tell
    try:
        os.kill(int(parts[2]), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # it exists, and belongs to someone else
    return False


class RowLeases(Leases):
    def __init__(self, db: Database) -> None:
        self._db = db
        self._me = _process_id()

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        pause = ROW_POLL_S[0]
        while not await self._take(key):
            await asyncio.sleep(pause)
            pause = min(pause * 2, ROW_POLL_S[1])
        renewer = asyncio.create_task(self._renew(key), name=f"renew lease {key}")
        try:
            yield
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
            await asyncio.shield(
                self._db.execute("DELETE FROM leases WHERE key = ? AND holder = ?", (key, self._me))
            )

    async def _take(self, key: str) -> bool:
        now = time.time()
        taken = await self._db.execute(
            "INSERT INTO leases (key, holder, expires_at) VALUES (?, ?, ?)"
            " ON CONFLICT (key) DO UPDATE SET holder = excluded.holder,"
            " expires_at = excluded.expires_at"
            # Our own row can only be left over from a failed release: the in-process lock
            # lets one task of this process ask at a time.
            " WHERE leases.expires_at < ? OR leases.holder = excluded.holder",
            (key, self._me, now + ROW_TTL_S, now),
        )
        if taken:
            return True
        row = await self._db.fetchone("SELECT holder FROM leases WHERE key = ?", (key,))
        if row is not None and _holder_is_dead(row["holder"], self._me):
            log.warning("taking over the lease on %s from a stopped process", key)
            await self._db.execute(
                "DELETE FROM leases WHERE key = ? AND holder = ?", (key, row["holder"])
            )
        return False

    async def _renew(self, key: str) -> None:
        while True:
            await asyncio.sleep(ROW_RENEW_S)
            try:
                kept = await self._db.execute(
                    "UPDATE leases SET expires_at = ? WHERE key = ? AND holder = ?",
                    (time.time() + ROW_TTL_S, key, self._me),
                )
            except Exception:
                log.exception("could not renew the lease on %s; trying again", key)
                continue
            if not kept:
                # Only a stall longer than the TTL gets here; the claim and the journal still
                # keep each call to one execution, so say it loudly and carry on.
                log.error("lost the lease on %s while running; another process may take it", key)

    async def close(self) -> None:
        """The rows go with each release; nothing is kept open."""
