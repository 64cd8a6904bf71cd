"""The LangGraph checkpointer named by `DATABASE_URL`: SQLite by default, PostgreSQL for
several replicas sharing one database."""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator, Collection, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import aiosqlite
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    DeltaChannelHistory,
)
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from bot.connections import is_postgres, open_pool, setup_lock, sqlite_path

# One AsyncPostgresSaver makes one query at a time (its queries wait their turn behind one
# asyncio lock, whatever its pool), and a process's runs take turns there: in bursts that
# lock was busy most of the time (bench/README.md, B4). This many savers over one pool of as
# many connections let that many threads' checkpoints be read and written at once.
CHECKPOINT_SAVERS = 4


@asynccontextmanager
async def open_checkpointer(
    database_url: str, *, fsync_each_commit: bool = True, savers: int = CHECKPOINT_SAVERS
) -> AsyncIterator[BaseCheckpointSaver[str]]:
    """`fsync_each_commit=False` (SQLite): checkpoints commit without an fsync of their own,
    for a caller that makes a durable commit to the same file before anything irreversible
    (the bot: the journal entry before each gated tool, README "Durability").

    `savers` (PostgreSQL): how many `AsyncPostgresSaver`s share the work (`SaversByThread`);
    with 1, LangGraph's saver as it comes."""
    if is_postgres(database_url):
        pool = await open_pool(database_url, max_size=savers, name="checkpoints")
        try:
            postgres = [AsyncPostgresSaver(pool) for _ in range(savers)]
            async with setup_lock(database_url):
                await postgres[0].setup()
            yield postgres[0] if savers == 1 else SaversByThread(postgres)
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


def _thread(config: RunnableConfig) -> str:
    return str(config["configurable"]["thread_id"])


class SaversByThread(BaseCheckpointSaver[str]):
    """Several savers of one database, each thread's checkpoints always through the same one.

    Any of them reads and writes any thread (they share the tables); a thread sticks to one
    so that its reads and writes keep the order they were made in, as with a single saver
    (each saver runs its queries one at a time, in turn). Threads spread over the savers, and
    so over their connections, instead of queueing for one."""

    def __init__(self, savers: Sequence[BaseCheckpointSaver[str]]) -> None:
        super().__init__(serde=savers[0].serde)
        self.savers = tuple(savers)

    def _for(self, thread_id: str) -> BaseCheckpointSaver[str]:
        # crc32, not hash(): the same thread goes to the same saver in every run.
        return self.savers[zlib.crc32(thread_id.encode()) % len(self.savers)]

    def _of(self, config: RunnableConfig | None) -> BaseCheckpointSaver[str]:
        """The thread's saver; for a query across threads, any (the first)."""
        if config is None or "thread_id" not in config.get("configurable", {}):
            return self.savers[0]
        return self._for(_thread(config))

    @property
    def config_specs(self) -> list[Any]:
        return self.savers[0].config_specs

    def with_allowlist(
        self, extra_allowlist: Collection[tuple[str, ...]]
    ) -> BaseCheckpointSaver[str]:
        """Each saver deserializes what it reads, so each gets the allowlist. (LangGraph
        clones its saver so for each run with strict msgpack on; a clone of LangGraph's
        saver keeps the original's lock, so a thread still takes its turns in one place.)"""
        savers = [s.with_allowlist(extra_allowlist) for s in self.savers]
        if all(new is old for new, old in zip(savers, self.savers, strict=True)):
            return self
        return SaversByThread(savers)

    def get_next_version(self, current: str | None, channel: None) -> str:
        return self.savers[0].get_next_version(current, channel)

    # async: what the bot's runs use ------------------------------------------------------

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await self._of(config).aget_tuple(config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        found = self._of(config).alist(config, filter=filter, before=before, limit=limit)
        async for item in found:
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return await self._of(config).aput(config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        await self._of(config).aput_writes(config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        await self._for(str(thread_id)).adelete_thread(thread_id)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        await self.savers[0].aprune(thread_ids, strategy=strategy)

    async def aget_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        return await self._of(config).aget_delta_channel_history(config=config, channels=channels)

    # sync: LangGraph's saver offers them to other threads than the event loop's ----------

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return self._of(config).get_tuple(config)

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        return self._of(config).list(config, filter=filter, before=before, limit=limit)

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return self._of(config).put(config, checkpoint, metadata, new_versions)

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        self._of(config).put_writes(config, writes, task_id, task_path)

    def delete_thread(self, thread_id: str) -> None:
        self._for(str(thread_id)).delete_thread(thread_id)

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        self.savers[0].prune(thread_ids, strategy=strategy)

    def get_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        return self._of(config).get_delta_channel_history(config=config, channels=channels)
