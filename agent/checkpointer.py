"""The LangGraph checkpointer named by `DATABASE_URL`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver


def sqlite_path(database_url: str) -> Path:
    """`sqlite:///relative.db`, `sqlite:////abs/path.db` or a bare path."""
    path = (
        database_url.removeprefix("sqlite:///")
        if database_url.startswith("sqlite:")
        else database_url
    )
    return Path(path)


@asynccontextmanager
async def open_checkpointer(database_url: str) -> AsyncIterator[BaseCheckpointSaver[str]]:
    path = sqlite_path(database_url)
    path.parent.mkdir(parents=True, exist_ok=True)
    async with aiosqlite.connect(path) as conn:
        # WAL lets the bot's own tables in the same file be written while checkpoints are read.
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA busy_timeout=10000")
        saver = AsyncSqliteSaver(conn)
        await saver.setup()
        yield saver
