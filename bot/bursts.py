"""Acks first: in a burst of deliveries, the work the fast path hands off waits until the
burst has been acked.

A run takes the event loop a millisecond at a time, and its Slack calls keep the API busy.
Started as each click of a burst is acked, a hundred runs stand between the burst's later
clicks and their acks (B1: a burst's click ack p99 was 1.3-1.7x a bare Bolt app's; with the
runs held back until the burst was acked, 0.6-0.8x; bench/README.md, round 4). So a delivery
that arrives alone starts its work a loop turn later (time for the rest of a burst read from
the socket with it to reach the bot, and hold it too); one that arrives within `quiet_s` of
the one before is held, and so is all work handed off after it, until no delivery has come
for `quiet_s` while the event loop was free to take one, or the oldest held has waited
`longest_s`. A check that comes late (the loop was busy with a burst's acks, or with a run
started before the burst) proves nothing: deliveries may be waiting in the socket, a few
loop turns from the bot (Socket Mode split its 100- and 200-click bursts this way, B1), so
the quiet time is counted again from then. Held work counts as background
work (`Background.wait_idle` waits for it). A held click has been acked but not yet claimed:
a stop flushes what is held before it drains, and a kill loses it as it would lose an
unstarted task, leaving the card to be clicked again.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable

from bot.tasks import Background

QUIET_S = 0.002
LONGEST_S = 0.05


class Bursts:
    def __init__(
        self, background: Background, quiet_s: float = QUIET_S, longest_s: float = LONGEST_S
    ) -> None:
        self._background = background
        self._quiet_s = quiet_s
        self._longest_s = longest_s
        self._last = -math.inf  # loop time of the last delivery
        self._held: list[Callable[[], None]] = []
        self._held_since = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._released = asyncio.Event()

    def delivered(self) -> bool:
        """Note a delivery as it reaches the bot; True when it comes in a burst."""
        now = asyncio.get_running_loop().time()
        in_burst = now - self._last < self._quiet_s
        self._last = now
        return in_burst

    def start(self, work: Callable[[], None], *, in_burst: bool) -> None:
        """Start a delivery's work (after its ack is written): a loop turn from now, unless
        it came in a burst or other work is held."""
        if not in_burst and not self._held:
            self._background.spawn(self._start_alone(work), what="work of a delivery")
            return
        self._hold(work)

    async def _start_alone(self, work: Callable[[], None]) -> None:
        # One loop turn first: the rest of a burst read from the socket with this delivery
        # reaches `delivered` in it, and then this work waits with theirs, as the first.
        await asyncio.sleep(0)
        if self._held:
            self._held.insert(0, work)
        else:
            work()

    def _hold(self, work: Callable[[], None]) -> None:
        if not self._held:
            self._held_since = asyncio.get_running_loop().time()
            self._released = asyncio.Event()
            self._background.spawn(self._until_released(), what="work held for its burst")
        self._held.append(work)
        self._arm()

    def flush(self) -> None:
        """Start everything held, in the order it came."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        held, self._held = self._held, []
        for work in held:
            work()
        # Only now: what the held work spawned is already there for `wait_idle` to wait on.
        self._released.set()

    @property
    def held(self) -> int:
        return len(self._held)

    async def _until_released(self) -> None:
        await self._released.wait()

    def _arm(self, quiet_from: float = -math.inf) -> None:
        if self._timer is None:
            quiet_until = max(self._last, quiet_from) + self._quiet_s
            due = min(quiet_until, self._held_since + self._longest_s)
            self._timer = asyncio.get_running_loop().call_at(due, self._check)

    def _check(self) -> None:
        assert self._timer is not None
        due, self._timer = self._timer.when(), None
        now = asyncio.get_running_loop().time()
        if now - self._held_since >= self._longest_s:
            self.flush()
        elif now - due >= self._quiet_s:
            self._arm(quiet_from=now)
        elif now - self._last >= self._quiet_s:
            self.flush()
        else:
            self._arm()
