"""B3 — pending scale: 10,000 approvals pending across 2,000 conversations.

Measured: the bot's memory growth while they pile up, its start-up time with them pending
(`running_bot` restarted on the same database), and the click latency then, each against the
same bot on an empty database.

How they are created: every conversation is a real `/ask` through the emulator (one message
asking for five scale-downs, so five per-call interrupts and five cards), 50 conversations at
a time. That is fast enough (about 70 ms of bot time per conversation on 2 cores, ~2.5 min in
all) and leaves exactly the state production would: checkpoints, approvals, audit rows and
cards. A shortcut that wrote rows directly would skip the checkpoints and cards, the parts
whose size could matter, and could drift from what the bot really writes.

Start-up is measured by restarting a bot on each database in turn. Click latency is measured
the same way on both, in freshly started bots running side by side and taking turns: new
conversations are asked for, then their cards clicked one at a time (ack, and click → tool
start).

    python -m bench.pending_scale [--quick]
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median

from bench.click_to_tool import Clicks, click_to_tool
from bench.common import ask_many, bench_main, cluster_ids, emulator
from bench.processes import BotProcess, enter_all, sqlite_url, under_test, workdir
from bench.results import Row, Snapshot, failures, latency_rows
from bot.sandbox.emulator import SlackEmulator

MB = 1024 * 1024


@dataclass(frozen=True)
class Sizes:
    conversations: int
    per_conversation: int
    samples: int
    batch: int = 50
    warmup: int = 3
    restarts: int = 2
    chunk: int = 10


FULL = Sizes(conversations=2000, per_conversation=5, samples=100)
QUICK = Sizes(conversations=100, per_conversation=5, samples=20, restarts=1)


async def populate(emu: SlackEmulator, bot: BotProcess, sizes: Sizes) -> tuple[int, int]:
    """Ask for conversations, `batch` at a time, until the wanted number of approvals is
    pending (a run that fails leaves fewer, so more are asked for); returns (pending,
    conversations asked for)."""
    wanted = sizes.conversations * sizes.per_conversation
    pending = asked = 0
    while pending < wanted:
        count = min(sizes.batch, -(-(wanted - pending) // sizes.per_conversation))
        clusters = cluster_ids(f"b3p{asked}", count * sizes.per_conversation)
        await ask_many(emu, clusters, per_ask=sizes.per_conversation)
        await bot.call("idle")
        asked += count
        pending = (await bot.call("counts"))["approvals"].get("pending", 0)
    return pending, asked


def database_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.parent.glob(path.name + "*"))


@dataclass
class Startup:
    running_bot: list[float] = field(default_factory=list)
    process: list[float] = field(default_factory=list)
    rss: list[int] = field(default_factory=list)

    def add(self, bot: BotProcess) -> None:
        self.running_bot.append(bot.ready["startup_s"])
        self.process.append(bot.ready["process_start_s"])
        self.rss.append(bot.ready["rss"])


async def run(sizes: Sizes = FULL) -> list[Row]:
    since = Snapshot()
    with workdir() as directory:
        full_url, empty_url = sqlite_url(directory, "full.sqlite3"), sqlite_url(directory)
        async with (
            emulator() as emu,
            under_test(emu, database_url=full_url, workdir=directory) as bot,
        ):
            # Imports, caches and first-use allocations are counted out of the growth.
            await click_to_tool(emu, bot, cluster_ids("b3w", sizes.warmup))
            before = (await bot.call("rss"))["rss"]
            pending, asked = await populate(emu, bot, sizes)
            after = await bot.call("rss")
        size = database_size(directory / "full.sqlite3") / MB

        startups = {"empty": Startup(), "full": Startup()}
        urls = {"empty": empty_url, "full": full_url}
        samples = {"empty": Clicks(), "full": Clicks()}
        async with emulator() as emu:
            for _ in range(sizes.restarts):
                for name, url in urls.items():
                    async with under_test(emu, database_url=url, workdir=directory) as bot:
                        startups[name].add(bot)
        async with AsyncExitStack() as stack:
            emus = [await stack.enter_async_context(emulator()) for _ in urls]
            started = await enter_all(
                stack,
                [
                    under_test(emu, database_url=url, workdir=directory)
                    for emu, url in zip(emus, urls.values(), strict=True)
                ],
            )
            bots = dict(zip(urls, zip(emus, started, strict=True), strict=True))
            for name, (emu, bot) in bots.items():
                if not sizes.restarts:
                    # Started side by side, so slower than alone: only when nothing else.
                    startups[name].add(bot)
                await click_to_tool(emu, bot, cluster_ids(f"b3w{name}", sizes.warmup))
            # Both bots up, taking turns, so that load from anything else on the machine
            # weighs on both alike.
            for i in range(0, sizes.samples, sizes.chunk):
                for name, (emu, bot) in bots.items():
                    n = min(sizes.chunk, sizes.samples - i)
                    samples[name].add(await click_to_tool(emu, bot, cluster_ids(f"b3{name}{i}", n)))

    empty, full = startups["empty"], startups["full"]
    case = f"{pending:,} pending in {asked:,} conversations"
    vs = case + " (vs empty DB)"
    rows = [
        Row(
            "B3",
            case,
            "bot RSS growth while they were created",
            (after["rss"] - before) / MB,
            None,
            "MB",
            "< 50 MB",
            note=f"RSS {before / MB:.0f} → {after['rss'] / MB:.0f} MB "
            f"(peak {after['rss_peak'] / MB:.0f} MB); database file {size:.0f} MB",
        ),
        Row("B3", vs, "RSS when ready", median(full.rss) / MB, median(empty.rss) / MB, "MB"),
        Row(
            "B3",
            vs,
            f"running_bot start-up (median of {len(full.running_bot)})",
            median(full.running_bot),
            median(empty.running_bot),
            "s",
            "< 3 s",
        ),
        Row(
            "B3",
            vs,
            f"process start → ready (median of {len(full.process)})",
            median(full.process),
            median(empty.process),
            "s",
        ),
    ]
    full_clicks, empty_clicks = samples["full"], samples["empty"]
    rows += latency_rows("B3", vs, "click ack", full_clicks.acks, empty_clicks.acks)
    rows += latency_rows("B3", vs, "click → tool start", full_clicks.to_tool, empty_clicks.to_tool)
    for row in rows[-4:]:
        if row.metric.endswith("p99"):
            row.target = "p99 ≤ 1.2x empty"
    lost = asked * sizes.per_conversation - pending + full_clicks.lost + empty_clicks.lost
    total = asked + full_clicks.conversations + empty_clicks.conversations
    return rows + failures("B3", lost, total, "conversations", since)


def main() -> None:
    bench_main(__doc__ or "", "B3 pending scale", run, FULL, QUICK)


if __name__ == "__main__":
    main()
