"""Full garbage collections wait for an idle bot (bot.idle_gc), and Python's own come back
when the last bot stops."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from typing import Any

from bot import idle_gc


async def full_collections_while(busy: bool) -> list[int]:
    """Runs the collector with the bot busy or not, with a full collection due; returns the
    generations collected meanwhile, and checks Python's own thresholds come back."""
    before = gc.get_threshold()
    seen: list[int] = []

    def note(phase: str, info: dict[str, Any]) -> None:
        if phase == "stop":
            seen.append(info["generation"])

    collector = asyncio.create_task(idle_gc.collect_when_idle(lambda: busy))
    await asyncio.sleep(0)
    assert gc.get_threshold()[2] > before[2], "Python's own full collections still on"
    gc.callbacks.append(note)
    try:
        for _ in range(idle_gc.DUE):
            gc.collect(1)  # each one counts toward the next full collection
        # Three ticks of the collector are enough to see it stay put; an idle bot's due
        # collection is waited for longer, on a machine this shared.
        for _ in range(12 if busy else 80):
            if 2 in seen:
                break
            await asyncio.sleep(idle_gc.TICK_S / 4)
    finally:
        gc.callbacks.remove(note)
        collector.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await collector
    assert gc.get_threshold() == before
    return seen


async def test_a_due_full_collection_is_made_once_the_bot_is_idle() -> None:
    assert 2 in await full_collections_while(busy=False)


async def test_a_busy_bot_is_not_stopped_for_a_full_collection_before_it_is_overdue() -> None:
    assert 2 not in await full_collections_while(busy=True)
