"""B1 — ack latency of slash commands and button clicks with 1, 50, 100 and 200
conversations in flight, Socket Mode and HTTP, against a bare slack-bolt AsyncApp whose
listeners only ack: Bolt's default (`process_before_response=False`) as the baseline, and the
same app with `process_before_response=True` (as the bot runs Bolt) as the floor.

"In flight" means a burst: N conversations start at once (N `/ask`, whose runs all work while
the later commands are still being acked), then all N of their cards are clicked at once (N
resumes running while the later clicks are acked). Each ack's latency is what the emulator
measured from sending the delivery to receiving the ack. The baseline gets the same bursts,
with cards of the same size to click, running side by side with the bot and taking turns
with it burst by burst. The whole is repeated in `runs` runs, each with fresh processes: the
rows pool every run's samples, and show each run's own ratio (lowest to highest) beside them.

    python -m bench.ack_latency [--quick]

With `BENCH_AGAINST=/absolute/path/to/another/checkout`, a second bot running that checkout's
code takes its turns too, and its rows follow the bot's, marked "[BENCH_AGAINST]".
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import (
    ask_many,
    bench_main,
    cards_of,
    click_many,
    cluster_ids,
    emulator,
    post_bare_cards,
)
from bench.processes import BotProcess, enter_all, sqlite_url, under_test, workdir
from bench.results import Row, Snapshot, Tally, failures, ms, percentile, spread
from bot.sandbox.emulator import SlackEmulator

TARGET = "p99 ≤ 1.0x bare, ≪ 3 s"
# The bot; the baseline (Bolt's defaults); the floor (Bolt acking before its listener returns).
KINDS = ("bot", "bare-default", "bare")
# The bot on BENCH_AGAINST's code.
BEFORE = "before"


@dataclass(frozen=True)
class Sizes:
    # conversations in flight → how many bursts of that size to measure
    bursts: dict[int, int]
    transports: tuple[str, ...] = ("socket", "http")
    warmup: int = 3
    runs: int = 1


FULL = Sizes({1: 50, 50: 4, 100: 2, 200: 2}, runs=3)
QUICK = Sizes({1: 10, 50: 1, 100: 1, 200: 1})


@dataclass
class Samples(Tally):
    asks: list[float] = field(default_factory=list)
    clicks: list[float] = field(default_factory=list)


async def burst(emu: SlackEmulator, target: BotProcess, *, kind: str, n: int, tag: str) -> Samples:
    clusters = cluster_ids(tag, n)
    got = Samples(conversations=n)
    with emulator_gc_paused():
        got.asks = await ask_many(emu, clusters)
    await target.call("idle")
    bot = kind in ("bot", BEFORE)
    if bot:
        cards = await cards_of(target, clusters)
        await target.call("starts")
    else:
        cards = await post_bare_cards(emu, clusters)
    with emulator_gc_paused():
        got.clicks = await click_many(emu, cards)
    await target.call("idle")
    if bot:
        got.lost = n - len((await target.call("starts"))["starts"])
    return got


@contextmanager
def emulator_gc_paused() -> Iterator[None]:
    """No garbage collection in this process (the emulator's) while a burst is timed: the
    emulator keeps every message, and a full collection of its heap stalls every ack in
    flight for about 100 ms, whichever app they came from."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


async def measure(sizes: Sizes, transport: str, directory: Path) -> dict[str, dict[int, Samples]]:
    """Samples by kind (KINDS) and conversations in flight.

    The bot and the bare apps run side by side, each with an emulator of its own (Socket Mode
    would spread deliveries over every connection), and take turns burst by burst: load from
    anything else on the machine then weighs on all alike.
    """
    against = os.environ.get("BENCH_AGAINST")
    kinds = (*KINDS, BEFORE) if against else KINDS
    async with AsyncExitStack() as stack:
        emus = [await stack.enter_async_context(emulator()) for _ in kinds]
        processes = await enter_all(
            stack,
            [
                under_test(
                    emu,
                    kind="bot" if kind == BEFORE else kind,
                    transport=transport,
                    database_url=sqlite_url(directory, f"{kind}-{transport}.sqlite3"),
                    workdir=directory,
                    source=Path(against) if kind == BEFORE and against else None,
                )
                for kind, emu in zip(kinds, emus, strict=True)
            ],
        )
        targets = dict(zip(kinds, zip(emus, processes, strict=True), strict=True))
        samples = {kind: {n: Samples() for n in sizes.bursts} for kind in kinds}
        for kind, (emu, target) in targets.items():
            # Imports, caches and connections warm up outside the measurement.
            for i in range(sizes.warmup):
                await burst(emu, target, kind=kind, n=1, tag=f"w{kind}{transport}{i}")
        for n, count in sizes.bursts.items():
            for i in range(count):
                for kind, (emu, target) in targets.items():
                    got = await burst(emu, target, kind=kind, n=n, tag=f"{kind}{transport}{n}x{i}")
                    samples[kind][n].add(got)
    return samples


async def run(sizes: Sizes = FULL) -> list[Row]:
    rows: list[Row] = []
    since = Snapshot()
    total = Samples()
    with workdir() as directory:
        for transport in sizes.transports:
            runs = []
            for i in range(sizes.runs):
                run_dir = directory / f"{transport}-{i}"
                run_dir.mkdir()
                runs.append(await measure(sizes, transport, run_dir))
            for n in sizes.bursts:
                for samples in runs:
                    total.add(samples["bot"][n])
                case = f"{transport}, {n} in flight"
                asks = [{k: s[k][n].asks for k in s} for s in runs]
                clicks = [{k: s[k][n].clicks for k in s} for s in runs]
                for subject in ("bot", BEFORE) if BEFORE in runs[0] else ("bot",):
                    rows += compared(case, "/ask ack", asks, subject)
                    rows += compared(case, "click ack", clicks, subject)
    return rows + failures("B1", total.lost, total.conversations, "conversations", since)


def compared(
    case: str, what: str, runs: list[dict[str, list[float]]], bot: str = "bot"
) -> list[Row]:
    """p50 and p99 (ms) of every run's samples together, against both baselines, with each
    run's own ratios (lowest to highest) when there are several."""
    _, baseline, floor = KINDS
    pooled = {k: [x for run in runs for x in run[k]] for k in runs[0]}
    marked = f"{what} [BENCH_AGAINST]" if bot == BEFORE else what

    def each_run(q: int, against: str) -> str:
        if len(runs) < 2:
            return ""
        return spread(percentile(r[bot], q) / percentile(r[against], q) for r in runs)

    return [
        Row(
            "B1",
            case,
            f"{marked} (n={len(pooled[bot])}) p{q}",
            ms(percentile(pooled[bot], q)),
            ms(percentile(pooled[baseline], q)),
            "ms",
            TARGET if q == 99 else "",
            spread=each_run(q, baseline),
            floor=ms(percentile(pooled[floor], q)),
            floor_spread=each_run(q, floor),
        )
        for q in (50, 99)
    ]


def main() -> None:
    bench_main(__doc__ or "", "B1 ack latency", run, FULL, QUICK)


if __name__ == "__main__":
    main()
