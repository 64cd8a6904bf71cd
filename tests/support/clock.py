"""A clock a test moves on by hand, so deadlines pass without sleeping through them."""

from __future__ import annotations

import time

from bot.clock import Clock


class ManualClock(Clock):
    def __init__(self) -> None:
        self._offset = 0.0

    def now(self) -> float:
        return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        self._offset += seconds
