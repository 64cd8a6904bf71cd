"""B1 — ack latency of slash commands and button clicks with 1, 50 and 200 conversations in
flight, Socket Mode and HTTP, against a bare slack-bolt AsyncApp whose listeners only ack.

"In flight" means a burst: N conversations start at once (N `/ask`, whose runs all work while
the later commands are still being acked), then all N of their cards are clicked at once (N
resumes running while the later clicks are acked). Each ack's latency is what the emulator
measured from sending the delivery to receiving the ack. The baseline gets the same bursts,
with cards of the same size to click, running side by side with the bot and taking turns
with it burst by burst.

    python -m bench.ack_latency [--quick]
"""

from __future__ import annotations

import gc
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
from bench.results import Row, Snapshot, Tally, failures, latency_rows
from bot.sandbox.emulator import SlackEmulator

TARGET = "p99 ≤ 1.3x bare, ≪ 3 s"


@dataclass(frozen=True)
class Sizes:
    # conversations in flight → how many bursts of that size to measure
    bursts: dict[int, int]
    transports: tuple[str, ...] = ("socket", "http")
    warmup: int = 3


FULL = Sizes({1: 100, 50: 10, 200: 4})
QUICK = Sizes({1: 10, 50: 1, 200: 1})


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
    if kind == "bot":
        cards = await cards_of(target, clusters)
        await target.call("starts")
    else:
        cards = await post_bare_cards(emu, clusters)
    with emulator_gc_paused():
        got.clicks = await click_many(emu, cards)
    await target.call("idle")
    if kind == "bot":
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
    """Samples by kind (bot, bare) and conversations in flight.

    The bot and the bare app run side by side, each with an emulator of its own (Socket Mode
    would spread deliveries over both connections), and take turns burst by burst: load from
    anything else on the machine then weighs on both alike.
    """
    kinds = ("bot", "bare")
    async with AsyncExitStack() as stack:
        emus = [await stack.enter_async_context(emulator()) for _ in kinds]
        processes = await enter_all(
            stack,
            [
                under_test(
                    emu,
                    kind=kind,
                    transport=transport,
                    database_url=sqlite_url(directory, f"{kind}-{transport}.sqlite3"),
                    workdir=directory,
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
            samples = await measure(sizes, transport, directory)
            bot, bare = samples["bot"], samples["bare"]
            for n in sizes.bursts:
                total.add(bot[n])
                case = f"{transport}, {n} in flight"
                rows += latency_rows("B1", case, "/ask ack", bot[n].asks, bare[n].asks, TARGET)
                rows += latency_rows("B1", case, "click ack", bot[n].clicks, bare[n].clicks, TARGET)
    return rows + failures("B1", total.lost, total.conversations, "conversations", since)


def main() -> None:
    bench_main(__doc__ or "", "B1 ack latency", run, FULL, QUICK)


if __name__ == "__main__":
    main()
