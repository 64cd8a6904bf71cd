"""The benchmarks run end to end at tiny sizes. Nothing here checks a timing: benchmarks are
scripts run by hand (bench/README.md); this only keeps them from rotting."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import ack_latency, click_to_tool, pending_scale, profile_paths, run_all, throughput
from bench.results import Row, table
from tests.support.pg import fresh_database, requires_postgres


def figures(rows: list[Row]) -> list[Row]:
    assert rows, "a benchmark produced no rows"
    markdown = table(rows)
    assert markdown.count("\n") == len(rows) + 1
    return [r for r in rows if r.value is not None]


async def test_ack_latency_runs() -> None:
    sizes = ack_latency.Sizes({1: 1, 3: 1}, warmup=1)
    rows = figures(await ack_latency.run(sizes))
    cases = {r.case for r in rows}
    assert {"socket, 3 in flight", "http, 1 in flight"} <= cases
    assert all(r.baseline for r in rows if r.metric.endswith(("p50", "p99")))


async def test_click_to_tool_runs() -> None:
    rows = figures(await click_to_tool.run(click_to_tool.Sizes(samples=2, warmup=1, chunk=1)))
    assert [r.metric for r in rows][:2] == [
        "click → tool start (n=2) p50",
        "click → tool start (n=2) p99",
    ]
    floors = [r for r in rows if r.case.startswith("floor, no Slack")]
    assert len(floors) == 4 and all(r.baseline for r in floors)


def trace_steps(directory: Path) -> dict[str, str]:
    """Step → how many clicks it was timed in, from the one trace the bot wrote."""
    [trace] = directory.glob("click-trace-*.txt")
    lines = trace.read_text().splitlines()[1:]
    return {line.split()[0]: line.split()[1] for line in lines if ":" not in line}


def trace_counts(directory: Path) -> dict[str, int]:
    """The median counts before the tool (database trips, thread-pool hops), from the
    trace's last lines."""
    [trace] = directory.glob("click-trace-*.txt")
    counts = [line.split(" (p50): ") for line in trace.read_text().splitlines()[-2:]]
    return {what: int(count) for what, count in counts}


async def test_click_trace_times_the_steps_of_the_click_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BENCH_PRELOAD", "bench.click_trace")
    monkeypatch.setenv("BENCH_TRACE_OUT", str(tmp_path))
    # Ten clicks (one to warm up): the trace is written every ten tool starts.
    await click_to_tool.run(click_to_tool.Sizes(samples=9, warmup=1, chunk=1))
    steps = trace_steps(tmp_path)
    assert steps["tool.start"] == "10"
    assert {"Store.claim", "Store.unresumed", "SqlJournal.begin"} <= set(steps)
    counts = trace_counts(tmp_path)
    assert counts["database trips before the tool"] > 0
    # LangSmith's set-up for each middleware hook stays on the loop (agent/tracing.py).
    assert counts["thread-pool hops before the tool"] == 0


async def test_pending_scale_runs() -> None:
    sizes = pending_scale.Sizes(
        conversations=4, per_conversation=2, samples=2, batch=2, warmup=1, restarts=0, chunk=1
    )
    rows = figures(await pending_scale.run(sizes))
    assert rows[0].case.startswith("8 pending in 4 conversations")
    assert any("start-up" in r.metric for r in rows)


async def test_throughput_runs_and_reports_a_backend_it_cannot_use() -> None:
    sizes = throughput.Sizes(decisions=4, concurrency=2, batch=2, warmup=1, rounds=1)
    # Nothing listens on port 1: the PostgreSQL row must say n/a rather than fail the run.
    rows = await throughput.run(sizes, database_url="postgresql://bench@127.0.0.1:1/none")
    sqlite, postgres = rows[0], rows[1]
    assert sqlite.value and sqlite.baseline
    assert postgres.value is None and postgres.note == throughput.UNAVAILABLE


@requires_postgres
async def test_throughput_on_postgresql_has_the_bare_graph_in_two_processes() -> None:
    sizes = throughput.Sizes(decisions=4, concurrency=2, batch=2, warmup=1, rounds=1)
    async with fresh_database() as url:
        rows = figures(await throughput.run(sizes, database_url=url))
    [replicas, pair] = [r for r in rows if r.case.startswith("PostgreSQL")]
    assert replicas.value and pair.value and pair.baseline == replicas.baseline


async def test_profile_paths_writes_reports(tmp_path: Path) -> None:
    reports = await profile_paths.run(2, tmp_path, lines=5)
    assert all(r.exists() and r.with_suffix(".html").exists() for r in reports)


def test_run_all_suites_cover_every_benchmark() -> None:
    assert set(vars(run_all.FULL)) == {"b1", "b2", "b3", "b4"}
    assert run_all.QUICK.b3.conversations < run_all.FULL.b3.conversations
