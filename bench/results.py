"""A benchmark's results: its rows, the table and notes they print as, and what went wrong
along the way (errors the bots logged, deliveries left unacked)."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import platform
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

# Every exception the processes under test logged in this run, for the report.
LOGGED: Counter[str] = Counter()
# Deliveries the emulator got no ack for within Slack's 3 s, by kind: Slack would show the
# user an error. Counted and reported rather than fatal, so the run still yields its figures.
UNACKED: Counter[str] = Counter()


@dataclass
class Row:
    """One figure of a benchmark, next to its baseline from the same run."""

    bench: str
    case: str
    metric: str
    value: float | None
    baseline: float | None
    unit: str
    target: str = ""
    note: str = ""
    # B1: each run's ratio to the baseline, lowest to highest ("0.62-0.91x"); a second baseline (the
    # floor: bare Bolt with process_before_response) and its runs' ratios likewise.
    spread: str = ""
    floor: float | None = None
    floor_spread: str = ""

    @property
    def ratio(self) -> float | None:
        if self.value is None or not self.baseline:
            return None
        return self.value / self.baseline

    @property
    def floor_ratio(self) -> float | None:
        if self.value is None or not self.floor:
            return None
        return self.value / self.floor


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "ms":
        return f"{value:.2f} ms" if value < 100 else f"{value:.0f} ms"
    if unit == "s":
        return f"{value:.2f} s"
    if unit == "MB":
        return f"{value:.1f} MB"
    if unit == "/s":
        return f"{value:.0f} /s"
    return f"{value:g} {unit}".strip()


def table(rows: Sequence[Row]) -> str:
    """The rows as markdown; with the runs' spread and the second baseline's columns when a
    row has them (B1)."""
    extra = any(r.spread or r.floor is not None for r in rows)
    head = "| bench | case | metric | slack-approvals | baseline | ratio |"
    rule = "|---|---|---|---:|---:|---:|"
    if extra:
        head += " ratio in each run | floor | ratio to floor | in each run |"
        rule += "---:|---:|---:|---:|"
    lines = [head + " target |", rule + "---|"]
    for r in rows:
        value = fmt(r.value, r.unit) if r.value is not None or not r.note else r.note
        cells = [r.bench, r.case, r.metric, value]
        cells += ["—" if r.baseline is None else fmt(r.baseline, r.unit), _times(r.ratio)]
        if extra:
            floor = "" if r.floor is None else fmt(r.floor, r.unit)
            cells += [r.spread, floor, _times(r.floor_ratio), r.floor_spread]
        lines.append("| " + " | ".join([*cells, r.target]) + " |")
    return "\n".join(lines)


def _times(ratio: float | None) -> str:
    return "" if ratio is None else f"{ratio:.2f}x"


def spread(ratios: Iterable[float]) -> str:
    """The lowest and highest of some ratios, as the table shows them."""
    ordered = sorted(ratios)
    return f"{ordered[0]:.2f}-{ordered[-1]:.2f}x" if ordered else ""


def percentile(values: Iterable[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no samples")
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def latency_rows(
    bench: str,
    case: str,
    what: str,
    samples: Sequence[float],
    baseline: Sequence[float],
    target_p99: str = "",
) -> list[Row]:
    """p50 and p99 rows, in ms, from samples in seconds."""
    n = f"{what} (n={len(samples)})"
    return [
        Row(
            bench, case, f"{n} p50", ms(percentile(samples, 50)), ms(percentile(baseline, 50)), "ms"
        ),
        Row(
            bench,
            case,
            f"{n} p99",
            ms(percentile(samples, 99)),
            ms(percentile(baseline, 99)),
            "ms",
            target_p99,
        ),
    ]


def ms(seconds: float) -> float:
    return seconds * 1000


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far: less swayed than wall time by
    whatever else runs on a shared machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return (
        f"{cpu}, {os.cpu_count()} cores; Python {platform.python_version()}; "
        f"{platform.system()} {platform.release()} ({platform.platform(terse=True)})"
    )


def fsync_latency(directory: Path, count: int = 100) -> str:
    """p50 and p90 of fsync() in `directory`: SQLite commits with an fsync each, so on a
    shared disk this moves every SQLite figure."""
    samples = []
    fd = os.open(directory / "fsync-probe", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for _ in range(count):
            os.write(fd, b"x" * 4096)
            started = time.perf_counter()
            os.fsync(fd)
            samples.append(time.perf_counter() - started)
    finally:
        os.close(fd)
        (directory / "fsync-probe").unlink()
    return (
        f"fsync p50 {ms(percentile(samples, 50)):.2f} ms, p90 {ms(percentile(samples, 90)):.2f} ms"
    )


def failures(bench: str, lost: int, total: int, what: str, since: Snapshot) -> list[Row]:
    """What did not get through, with the errors the bots logged and the deliveries left
    unacked since `since`: one row, or none when all went well. A benchmark goes on past
    failures: losing a few runs is a finding to report, not a reason to have no figures."""
    if not lost and not since.anything_new():
        return []
    logged, unacked = LOGGED - since.logged, UNACKED - since.unacked
    found = [f"{message} (x{n})" for message, n in logged.most_common(3)]
    found += [f"{n} {kind} deliveries not acked within 3 s" for kind, n in unacked.items()]
    what_failed = f"{what} that failed (of {total:,})"
    return [Row(bench, "all cases", what_failed, float(lost), None, "", "0", "; ".join(found))]


@dataclass
class Tally:
    """What a benchmark counts in one run: its samples (lists) and counters, which `add`
    sums another run's into."""

    conversations: int = 0
    lost: int = 0  # conversations that got no card, or whose click ran no tool

    def add(self, other: Self) -> None:
        for f in dataclasses.fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


@dataclass(frozen=True)
class Snapshot:
    """LOGGED and UNACKED as they were when a benchmark started."""

    logged: Counter[str] = field(default_factory=lambda: LOGGED.copy())
    unacked: Counter[str] = field(default_factory=lambda: UNACKED.copy())

    def anything_new(self) -> bool:
        return bool(LOGGED - self.logged or UNACKED - self.unacked)


def notes(rows: Sequence[Row]) -> str:
    """The notes of rows that have a figure (a row without one shows its note instead)."""
    return "\n".join(
        f"- {r.bench} {r.case}, {r.metric}: {r.note}"
        for r in rows
        if r.note and r.value is not None
    )


def print_report(title: str, rows: Sequence[Row]) -> None:
    print(f"\n## {title}\n")
    print(f"Machine: {machine()}\n")
    print(table(rows))
    if notes(rows):
        print("\n" + notes(rows))
