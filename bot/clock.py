"""The time that deadlines are measured by: request expiry, retries, housekeeping.

One object the coordinator, decisions and the sweeps read, so that a test can move time on
instead of sleeping through real deadlines.
"""

from __future__ import annotations

import time


class Clock:
    def now(self) -> float:
        """Seconds since the epoch."""
        return time.time()
