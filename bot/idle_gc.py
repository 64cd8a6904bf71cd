"""Full garbage collections in the bot's idle moments, not in the middle of a burst.

`gc.freeze()` at start-up keeps what the bot is built of out of every collection, but a full
collection still walks what the runs leave behind: watched during bursts of 200 clicks, each
took 28-92 ms, and every ack in flight waited for it (bench/README.md, B1). So Python's own
full collections are switched off while a bot runs, and this one makes them when nothing is
in the bot's hands, or, under load that never pauses, after many more young collections than
Python would wait for, so that memory held in cycles stays bounded.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable

TICK_S = 0.5
# Young-generation collections since the last full one: Python's own default for a full
# collection, and the bound past which one is made even under load.
DUE = 10
OVERDUE = 200
_NEVER = 1_000_000_000

# Bots that hold Python's full collections off; several may run in one process (tests).
_holders: list[tuple[int, int, int]] = []


async def collect_when_idle(busy: Callable[[], bool]) -> None:
    """Until cancelled: full collections when `busy()` is false, at most every TICK_S."""
    _hold()
    try:
        while True:
            await asyncio.sleep(TICK_S)
            since_full = gc.get_count()[2]
            if since_full >= OVERDUE or (since_full >= DUE and not busy()):
                gc.collect()
    finally:
        _release()


def _hold() -> None:
    threshold = gc.get_threshold()
    _holders.append(threshold)
    if len(_holders) == 1:
        gc.set_threshold(threshold[0], threshold[1], _NEVER)


def _release() -> None:
    first = _holders[0]
    _holders.pop()
    if not _holders:
        gc.set_threshold(*first)
