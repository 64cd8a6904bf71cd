"""B2 — click → tool start: from the emulator sending an Approve click to the approved tool's
first line, against a bare LangGraph `Command(resume=…)` of the same graph on the same
checkpointer with no Slack in between (bench.bare_graph).

One click at a time with nothing else running, so the figure is the path's own cost: ack,
load and check the approval, claim, update the card, read what is pending, resume, journal.
Both clocks are `time.monotonic()`, one clock for every process on Linux.

    python -m bench.click_to_tool [--quick]

With `BENCH_AGAINST=/absolute/path/to/another/checkout`, a second bot running that checkout's code
takes its turns too (its own emulator and database), and a row compares the two: a change
measured against the code before it in the same run, under the same load.
"""

from __future__ import annotations

import asyncio
import os
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import APPROVER, Card, bench_main, cluster_ids, emulator, waiting_cards
from bench.processes import BotProcess, bot_and_bare_graph, sqlite_url, under_test, workdir
from bench.results import (
    Row,
    Snapshot,
    Tally,
    cpu_seconds,
    failures,
    latency_rows,
    ms,
    percentile,
)
from bot import blocks
from bot.sandbox.emulator import SlackEmulator

TARGET = "p50 ≤ 1.5x, p99 ≤ 2x bare"


@dataclass(frozen=True)
class Sizes:
    samples: int
    warmup: int = 3
    chunk: int = 10


FULL = Sizes(samples=100)
QUICK = Sizes(samples=20)


@dataclass
class Clicks(Tally):
    to_tool: list[float] = field(default_factory=list)  # click → tool start, s
    acks: list[float] = field(default_factory=list)  # click ack latency, s
    cpu: float = 0.0  # the bot's CPU time while it handled the clicks, s


async def click_each(emu: SlackEmulator, bot: BotProcess, cards: list[Card]) -> Clicks:
    """Click one card at a time, each after the previous one's run has finished."""
    clicks = Clicks(conversations=len(cards))
    await bot.call("starts")
    cpu = cpu_seconds(bot.proc.pid)
    for card in cards:
        clicked = asyncio.get_running_loop().time()  # the loop's clock is time.monotonic()
        delivery = await emu.click(APPROVER, card.channel, card.ts, blocks.APPROVE_ACTION)
        await bot.call("idle")
        starts = (await bot.call("starts"))["starts"]
        if delivery.ack is None or [c for c, _ in starts] != [card.cluster]:
            clicks.lost += 1
            continue
        clicks.to_tool.append(starts[0][1] - clicked)
        clicks.acks.append(delivery.ack.latency)
    clicks.cpu = cpu_seconds(bot.proc.pid) - cpu
    return clicks


async def click_to_tool(emu: SlackEmulator, bot: BotProcess, clusters: list[str]) -> Clicks:
    """Ask for one conversation per cluster, then click their cards one at a time."""
    clicks = await click_each(emu, bot, await waiting_cards(emu, [bot], clusters))
    clicks.lost += len(clusters) - clicks.conversations
    clicks.conversations = len(clusters)
    return clicks


async def run(sizes: Sizes = FULL) -> list[Row]:
    since = Snapshot()
    clicks = Clicks()
    against_clicks = Clicks()
    bare_samples: list[float] = []
    floor: dict[str, list[float]] = {"bare": [], "claim": [], "checked": []}
    with workdir() as directory:
        async with AsyncExitStack() as stack:
            emu = await stack.enter_async_context(emulator())
            [bot], graph = await stack.enter_async_context(
                bot_and_bare_graph(
                    emu,
                    bot_url=sqlite_url(directory),
                    bare_url=sqlite_url(directory, "bare.sqlite3"),
                    directory=directory,
                )
            )
            against = os.environ.get("BENCH_AGAINST")
            other: tuple[SlackEmulator, BotProcess] | None = None
            if against:
                other_emu = await stack.enter_async_context(emulator())
                other_bot = await stack.enter_async_context(
                    under_test(
                        other_emu,
                        database_url=sqlite_url(directory, "against.sqlite3"),
                        workdir=directory,
                        source=Path(against),
                    )
                )
                other = (other_emu, other_bot)
                await click_to_tool(other_emu, other_bot, cluster_ids("b2v", sizes.warmup))
            await click_to_tool(emu, bot, cluster_ids("b2w", sizes.warmup))
            await graph.call("latency", n=sizes.warmup)
            # Turns of `chunk` clicks and `chunk` bare resumes: load from anything else on the
            # machine then weighs on both alike.
            for i in range(0, sizes.samples, sizes.chunk):
                n = min(sizes.chunk, sizes.samples - i)
                clicks.add(await click_to_tool(emu, bot, cluster_ids(f"b2x{i}", n)))
                bare_samples += (await graph.call("latency", n=n))["samples"]
                for name, samples in (await graph.call("floor", n=n))["samples"].items():
                    floor[name] += samples
                if other is not None:
                    against_clicks.add(await click_to_tool(*other, cluster_ids(f"b2y{i}", n)))
    rows = latency_rows(
        "B2", "SQLite, one at a time", "click → tool start", clicks.to_tool, bare_samples, TARGET
    )
    # What a click must cost whatever the bot (bench/floor.py), and the bot against it.
    for case, samples in [
        ("floor, no Slack: claim + one FULL commit", floor["claim"]),
        ("floor, no Slack: load + claim + lease + one FULL commit", floor["checked"]),
    ]:
        rows += latency_rows("B2", case, "resume → tool start", samples, floor["bare"], "")
    rows += latency_rows(
        "B2",
        "the bot vs the floor with load and lease",
        "click → tool start",
        clicks.to_tool,
        floor["checked"],
        "",
    )
    if against:
        rows += latency_rows(
            "B2",
            f"SQLite, this code vs {against}",
            "click → tool start",
            clicks.to_tool,
            against_clicks.to_tool,
            "",
        )
        rows.append(
            Row(
                "B2",
                f"SQLite, this code vs {against}",
                f"bot CPU per click (n={len(clicks.to_tool)}), all of its work",
                ms(clicks.cpu / max(1, len(clicks.to_tool))),
                ms(against_clicks.cpu / max(1, len(against_clicks.to_tool))),
                "ms",
            )
        )
    overhead = ms(percentile(clicks.to_tool, 50) - percentile(bare_samples, 50))
    rows[0].note = f"the bot adds {overhead:.2f} ms at p50"
    return rows + failures("B2", clicks.lost, clicks.conversations, "conversations", since)


def main() -> None:
    bench_main(__doc__ or "", "B2 click → tool start", run, FULL, QUICK)


if __name__ == "__main__":
    main()
