"""Where the time goes between a click and the tool: a timed trace of the bot's click path.

A preload for the bot's process (`bench.botproc` imports it first), not a benchmark of its
own: it wraps the steps of the click path, times each one from the moment the click reached
the bot (the intake's fast path, or Bolt's dispatch), and every ten tool starts writes the
medians to `$BENCH_TRACE_OUT/click-trace-<pid>.txt` (default: the temporary directory):

    BENCH_PRELOAD=bench.click_trace .venv/bin/python -m bench.click_to_tool

Steps that overlap (the card update runs beside the resume) show their own start and length.
The wrappers cost a few microseconds a step. The last lines count the trips to a database
thread (every aiosqlite call, the checkpointer's included) and the hops to the event loop's
thread pool (`run_in_executor`) between the click and the tool.
"""

from __future__ import annotations

import asyncio
import functools
import os
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import aiosqlite
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from agent.session import AgentSession
from bench import tools
from bot.cards import Cards
from bot.decisions import Decisions
from bot.directory import Directory
from bot.lease import RowLeases
from bot.metrics import MeasuredApp
from bot.runner import Runner
from bot.store import SqlJournal, Store

STEPS: dict[type, tuple[str, ...]] = {
    Decisions: ("decide", "_apply"),
    Store: ("get", "claim", "unresumed", "votes", "set_card_status", "run_started"),
    Runner: ("resume_decided", "_decision"),
    Cards: ("update",),
    RowLeases: ("_take",),
    AgentSession: ("pending", "resume"),
    SqlJournal: ("approval_for", "begin"),
    Directory: ("is_allowed", "name"),
    AsyncSqliteSaver: ("aget_tuple",),
}

_clicked: list[float] = []  # perf_counter() when the click being traced reached Bolt
_spans: list[tuple[str, float, float]] = []
_traces: dict[str, list[tuple[float, float]]] = defaultdict(list)
_trips: list[int] = [0]  # database trips since the click being traced
_trip_counts: list[int] = []
_hops: list[int] = [0]  # run_in_executor calls since the click being traced
_hop_counts: list[int] = []


def _timed(label: str, step: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(step)
    async def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await step(*args, **kwargs)
        finally:
            if _clicked:
                ended = time.perf_counter()
                _spans.append((label, started - _clicked[0], ended - _clicked[0]))

    return timed


def _measuring(step: Callable[..., Any]) -> Callable[..., Any]:
    """Where a click reaches the bot, through Bolt's dispatch or the intake's fast path."""

    @functools.wraps(step)
    def measuring(self: MeasuredApp, body: dict[str, Any], *args: Any) -> Any:
        if body.get("type") == "block_actions":
            _clicked[:] = [time.perf_counter()]
            _spans.clear()
            _trips[0] = 0
            _hops[0] = 0
        return step(self, body, *args)

    return measuring


class _Starts(list[tuple[str, float]]):
    """bench.tools.STARTS, noting the tool's start in the trace."""

    def append(self, start: tuple[str, float]) -> None:
        if _clicked:
            at = time.perf_counter() - _clicked.pop()
            for label, began, ended in _spans:
                _traces[label].append((began, ended))
            _traces["tool.start"].append((at, at))
            _trip_counts.append(_trips[0])
            _hop_counts.append(_hops[0])
            if len(_traces["tool.start"]) % 10 == 0:
                _write()
        super().append(start)


def _median(values: Sequence[float]) -> float:
    return sorted(values)[len(values) // 2]


def _write() -> None:
    out = Path(os.environ.get("BENCH_TRACE_OUT", tempfile.gettempdir()))
    lines = [f"{'step':32} {'n':>5} {'starts at (p50)':>16} {'takes (p50)':>12}"]
    for label, spans in sorted(_traces.items(), key=lambda kv: _median([s for s, _ in kv[1]])):
        start = _median([s for s, _ in spans]) * 1000
        length = _median([e - s for s, e in spans]) * 1000
        lines.append(f"{label:32} {len(spans):5d} {start:13.2f} ms {length:9.2f} ms")
    if _trip_counts:
        lines.append(f"database trips before the tool (p50): {_median(_trip_counts)}")
        lines.append(f"thread-pool hops before the tool (p50): {_median(_hop_counts)}")
    (out / f"click-trace-{os.getpid()}.txt").write_text("\n".join(lines) + "\n")


def _counted(step: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(step)
    async def counted(*args: Any, **kwargs: Any) -> Any:
        if _clicked:
            _trips[0] += 1
        return await step(*args, **kwargs)

    return counted


def _hopping(step: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(step)
    def hopping(*args: Any, **kwargs: Any) -> Any:
        if _clicked:
            _hops[0] += 1
        return step(*args, **kwargs)

    return hopping


def install() -> None:
    loop_class = asyncio.BaseEventLoop
    loop_class.run_in_executor = _hopping(loop_class.run_in_executor)  # type: ignore[method-assign,assignment]
    aiosqlite.Connection._execute = _counted(aiosqlite.Connection._execute)  # type: ignore[method-assign]
    MeasuredApp.measuring = _measuring(MeasuredApp.measuring)  # type: ignore[method-assign]
    for owner, names in STEPS.items():
        for name in names:
            setattr(owner, name, _timed(f"{owner.__name__}.{name}", getattr(owner, name)))
    tools.STARTS = _Starts()


install()
