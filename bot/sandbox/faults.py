"""Faults a test injects into the emulator's Web API: rate limits, errors and delays, each
for a number of calls of one method, optionally only calls about one channel or thread."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Literal

from bot.sandbox.state import Workspace

FaultKind = Literal["ratelimited", "error", "delay"]
Params = dict[str, Any]


@dataclass
class Fault:
    kind: FaultKind
    remaining: int
    retry_after: int
    error: str
    status: int
    delay: float
    # Met only by calls about this channel / this thread (None: any). A test that holds one
    # conversation's call must not have it taken by another conversation's call of the method.
    channel: str | None = None
    thread_ts: str | None = None

    def scoped(self, channel: str | None, thread_ts: str | None) -> bool:
        """Whether this fault is for calls in that scope (a None there means any)."""
        return (channel is None or self.channel == channel) and (
            thread_ts is None or self.thread_ts == thread_ts
        )

    def meets(self, channel: str | None, thread_ts: str | None) -> bool:
        """Whether a call about `channel` and `thread_ts` meets this fault."""
        return (self.channel is None or self.channel == channel) and (
            self.thread_ts is None or self.thread_ts == thread_ts
        )


class Faults:
    def __init__(self, workspace: Workspace) -> None:
        self._ws = workspace
        self._faults: dict[str, deque[Fault]] = {}

    def inject(self, method: str, fault: Fault) -> None:
        # Faults for one method queue up, so "a 429 then a 500" can be scripted; a call meets
        # the first one in the queue whose scope it is in.
        self._faults.setdefault(method, deque()).append(fault)

    def left(self, method: str, channel: str | None = None, thread_ts: str | None = None) -> int:
        faults = self._faults.get(method, ())
        return sum(f.remaining for f in faults if f.scoped(channel, thread_ts))

    def take(self, method: str, params: Params) -> Fault | None:
        """The fault a call of `method` with `params` meets, used up by one; None if none."""
        queue = self._faults.get(method)
        if not queue:
            return None
        channel = params.get("channel")
        channel = channel if isinstance(channel, str) else None
        thread_ts = self._thread_of(channel, params)
        fault = next((f for f in queue if f.meets(channel, thread_ts)), None)
        if fault is None:
            return None
        fault.remaining -= 1
        if fault.remaining <= 0:
            queue.remove(fault)
        return fault

    def _thread_of(self, channel: str | None, params: Params) -> str | None:
        """The thread a call is about: the one it posts in, or the one of the message it
        changes (a thread's root is its own thread); None for a new top-level message."""
        thread_ts = params.get("thread_ts")
        if isinstance(thread_ts, str) and thread_ts:
            return thread_ts
        ts = params.get("ts") or params.get("timestamp")
        if channel is None or not isinstance(ts, str):
            return None
        message = self._ws.find_message(channel, ts)
        return None if message is None else message.thread_ts or message.ts
