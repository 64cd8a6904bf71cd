"""The LangGraph checkpointer named by `DATABASE_URL`: SQLite by default, PostgreSQL for
several replicas sharing one database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiosqlite
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from bot.connections import is_postgres, open_pool, setup_lock, sqlite_path

# The saver serializes its queries behind one asyncio lock, so more connections would idle.
CHECKPOINT_POOL_SIZE = 2


@asynccontextmanager
async def open_checkpointer(
    database_url: str, *, fsync_each_commit: bool = True
) -> AsyncIterator[BaseCheckpointSaver[str]]:
    """`fsync_each_commit=False` (SQLite): checkpoints commit without an fsync of their own,
    for a caller that makes a durable commit to the same file before anything irreversible
    (the bot: the journal entry before each gated tool, README "Durability")."""
    if is_postgres(database_url):
        pool = await open_pool(database_url, max_size=CHECKPOINT_POOL_SIZE, name="checkpoints")
        try:
            saver = AsyncPostgresSaver(pool)
            async with setup_lock(database_url):
                await saver.setup()
            yield saver
        finally:
            await pool.close()
        return
    path = sqlite_path(database_url)
    path.parent.mkdir(parents=True, exist_ok=True)
    async with aiosqlite.connect(path) as conn:
        # WAL lets the bot's own tables in the same file be written while checkpoints are read.
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA busy_timeout=10000")
        if not fsync_each_commit:
            # The durable commit syncs the WAL the checkpoints share with it.
            await conn.execute("PRAGMA synchronous=NORMAL")
        sqlite_saver = AsyncSqliteSaver(conn)
        await sqlite_saver.setup()
        yield sqlite_saver
