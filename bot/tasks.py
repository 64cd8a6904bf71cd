"""Background work: what listeners hand off after their ack, and what a stop must wait for."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any

log = logging.getLogger(__name__)


class Background:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, work: Coroutine[Any, Any, None], *, what: str) -> None:
        """Run `work` after the caller has returned; failures are logged, never lost."""
        task = asyncio.create_task(_guard(work, what), name=what)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def wait_idle(self, limit: float | None = None) -> bool:
        """Wait for background work, including work it spawns; True if all of it finished."""
        try:
            async with asyncio.timeout(limit):
                while self._tasks:
                    await asyncio.wait(set(self._tasks))
        except TimeoutError:
            return False
        return True

    async def cancel_all(self, limit: float) -> None:
        """Stop what is still running (shutdown past its bound); a run cancelled inside a
        tool stays "started" in the journal, so recovery reports it instead of re-running."""
        running = list(self._tasks)
        if running:
            log.warning("stopping %d runs that did not finish in time", len(running))
        for task in running:
            task.cancel()
        await self.wait_idle(limit)


async def _guard(work: Coroutine[Any, Any, None], what: str) -> None:
    try:
        await work
    except Exception:
        log.exception("background work failed: %s", what)


@asynccontextmanager
async def local_lock(locks: dict[str, asyncio.Lock], key: str) -> AsyncIterator[None]:
    """Hold this process's lock on `key`, made on first use and dropped when nobody holds or
    waits for it, so the table stays as small as the work in flight."""
    lock = locks.setdefault(key, asyncio.Lock())
    try:
        async with lock:
            yield
    finally:
        if not lock.locked() and not lock._waiters:
            locks.pop(key, None)
