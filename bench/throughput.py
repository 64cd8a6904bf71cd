"""B4 — throughput: approvals decided and carried through to the tool's execution, per second.

N conversations wait on one approval each; then all N cards are clicked, at most
`concurrency` clicks awaiting their ack at a time (as a busy team's would arrive), and the
figure is N over the time from the first click to the last tool start. Every approved call
must have run exactly once, or the run fails. The baseline is the bare LangGraph graph
resuming the same number of paused threads, `concurrency` at a time, on the same kind of
checkpointer (bench.bare_graph).

SQLite with one bot process always runs. PostgreSQL with two bot replicas sharing the
database (Socket Mode, the emulator spreading deliveries over both connections) runs when
`--database-url postgresql://…` names a scratch database; it reports n/a when the bot cannot
run on it.

    python -m bench.throughput [--quick] [--database-url postgresql://user@host/db]
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.common import bench_main, click_many, cluster_ids, emulator, waiting_cards
from bench.processes import (
    BotProcess,
    StartError,
    bot_and_bare_graph,
    graph_process,
    sqlite_url,
    workdir,
)
from bench.results import Row, Snapshot, failures
from bot.connections import is_postgres
from bot.sandbox.emulator import SlackEmulator

POSTGRES_SAVER = "AsyncPostgresSaver"
UNAVAILABLE = "n/a (PostgreSQL backend not available)"


@dataclass(frozen=True)
class Sizes:
    decisions: int
    concurrency: int = 50
    batch: int = 50
    warmup: int = 10
    rounds: int = 2


FULL = Sizes(decisions=400)
QUICK = Sizes(decisions=100)


class Unavailable(Exception):
    """The bot or the baseline cannot run on this database."""


@dataclass
class Round:
    elapsed: float  # s, from the first click to the last tool start
    done: int  # approved calls that ran
    lost: int  # conversations that got no card, or whose approved call never ran


async def decide(
    emu: SlackEmulator, bots: Sequence[BotProcess], clusters: list[str], sizes: Sizes
) -> Round:
    """Ask for one conversation per cluster, then approve all their cards."""
    cards = await waiting_cards(emu, bots, clusters, batch=sizes.batch)
    for bot in bots:
        await bot.call("starts")
    clicked = asyncio.get_running_loop().time()  # time.monotonic(), as the tools record
    await click_many(emu, cards, limit=sizes.concurrency)
    for bot in bots:
        await bot.call("idle")
    starts = [s for bot in bots for s in (await bot.call("starts"))["starts"]]
    ran = [c for c, _ in starts]
    if len(set(ran)) != len(ran) or not set(ran) <= {c.cluster for c in cards}:
        raise RuntimeError("an approved call ran twice, or a call ran without approval")
    elapsed = max((at for _, at in starts), default=clicked) - clicked
    return Round(float(elapsed), len(ran), len(clusters) - len(ran))


async def reachable(database_url: str) -> None:
    """Unavailable unless a PostgreSQL server answers at this URL: fails in seconds where
    the bot's own pool would keep retrying."""
    try:
        import psycopg
    except ImportError:
        raise Unavailable("psycopg is not installed") from None
    try:
        conn = await psycopg.AsyncConnection.connect(database_url, connect_timeout=3)
    except psycopg.Error as exc:
        raise Unavailable(f"cannot connect to {database_url}: {exc}") from None
    await conn.close()


@asynccontextmanager
async def processes(
    emu: SlackEmulator, *, bot_url: str, bare_url: str, replicas: int, directory: Path
) -> AsyncIterator[tuple[list[BotProcess], BotProcess]]:
    """The bot's replicas and the baseline, started together; Unavailable if any cannot run
    on its database."""
    async with AsyncExitStack() as stack:
        started = bot_and_bare_graph(
            emu, bot_url=bot_url, bare_url=bare_url, directory=directory, replicas=replicas
        )
        try:
            replicas_up, bare = await stack.enter_async_context(started)
        except StartError as exc:
            raise Unavailable(str(exc)) from None
        for url, process in [*((bot_url, r) for r in replicas_up), (bare_url, bare)]:
            if is_postgres(url) and process.ready["checkpointer"] != POSTGRES_SAVER:
                raise Unavailable(f"{url} runs on {process.ready['checkpointer']}")
        yield replicas_up, bare


@dataclass
class Result:
    bot: float  # decisions carried through per second
    bare: float
    asked: int = 0
    lost: int = 0
    bare_pair: float | None = None  # the bare graph in as many processes as the bot's replicas


async def resume_in_each(graphs: Sequence[BotProcess], n: int, concurrency: int) -> float:
    """n paused threads shared out over these baseline processes, then all resumed at once
    (each keeping its share of `concurrency`): seconds from the first resume to the last
    tool start in any of them."""
    share = len(graphs)
    await asyncio.gather(
        *(g.call("pause", n=n // share + (i < n % share)) for i, g in enumerate(graphs))
    )
    windows = await asyncio.gather(
        *(g.call("resume_paused", concurrency=max(1, concurrency // share)) for g in graphs)
    )
    return float(max(w["last"] for w in windows) - min(w["started"] for w in windows))


async def measure(
    sizes: Sizes, *, bot_url: str, bare_url: str, replicas: int, directory: Path
) -> Result:
    """The bot and the baseline take turns, `rounds` each, so that load from anything else on
    the machine weighs on both alike."""
    per_round = sizes.decisions // sizes.rounds
    bot_s = bare_s = pair_s = 0.0
    done = lost = 0
    async with (
        emulator() as emu,
        processes(
            emu, bot_url=bot_url, bare_url=bare_url, replicas=replicas, directory=directory
        ) as (replicas_up, bare),
        AsyncExitStack() as stack,
    ):
        # What the bare graph itself gains from as many processes as the bot has replicas:
        # the ceiling the machine's cores set, whatever the bot does on top.
        pair = [bare] + [
            await stack.enter_async_context(graph_process(bare_url, directory))
            for _ in range(replicas - 1)
        ]
        await decide(emu, replicas_up, cluster_ids(f"b4w{replicas}", sizes.warmup), sizes)
        await bare.call("throughput", n=sizes.warmup, concurrency=sizes.concurrency)
        for i in range(sizes.rounds):
            got = await decide(
                emu, replicas_up, cluster_ids(f"b4r{replicas}x{i}", per_round), sizes
            )
            bot_s, done, lost = bot_s + got.elapsed, done + got.done, lost + got.lost
            answer = await bare.call("throughput", n=per_round, concurrency=sizes.concurrency)
            bare_s += answer["elapsed"]
            if len(pair) > 1:
                pair_s += await resume_in_each(pair, per_round, sizes.concurrency)
    asked = per_round * sizes.rounds
    return Result(
        done / bot_s,
        asked / bare_s,
        asked,
        lost,
        asked / pair_s if pair_s else None,
    )


async def run(sizes: Sizes = FULL, database_url: str | None = None) -> list[Row]:
    since = Snapshot()
    metric = f"decisions → tool executed (n={sizes.decisions}, {sizes.concurrency} at a time)"
    rows = []
    results = []
    with workdir() as directory:
        sqlite = await measure(
            sizes,
            bot_url=sqlite_url(directory),
            bare_url=sqlite_url(directory, "bare.sqlite3"),
            replicas=1,
            directory=directory,
        )
        results.append(sqlite)
        rows.append(Row("B4", "SQLite, 1 process", metric, sqlite.bot, sqlite.bare, "/s"))

        case = "PostgreSQL, 2 replicas (baseline: 1 process)"
        postgres = Row("B4", case, metric, None, None, "/s")
        if database_url is None:
            postgres.note = "n/a (no --database-url postgresql://… given)"
        else:
            try:
                await reachable(database_url)
                result = await measure(
                    sizes,
                    bot_url=database_url,
                    bare_url=database_url,
                    replicas=2,
                    directory=directory,
                )
            except Unavailable as exc:
                postgres.note = UNAVAILABLE
                print(f"B4 PostgreSQL: {exc}", file=sys.stderr)
            else:
                results.append(result)
                postgres.value, postgres.baseline = result.bot, result.bare
        rows.append(postgres)
        if len(results) > 1:
            pair_case = "PostgreSQL, LangGraph alone in 2 processes (baseline: 1 process)"
            rows.append(Row("B4", pair_case, metric, results[1].bare_pair, results[1].bare, "/s"))
    lost = sum(r.lost for r in results)
    return rows + failures("B4", lost, sum(r.asked for r in results), "decisions", since)


def main() -> None:
    bench_main(__doc__ or "", "B4 throughput", run, FULL, QUICK, takes_database_url=True)


if __name__ == "__main__":
    main()
