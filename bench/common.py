"""What every benchmark shares: the emulator, bot processes, sampling and the result table."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import math
import os
import platform
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self, TypeVar

from slack_sdk.web.async_client import AsyncWebClient

from agent.policy import Policy
from bot import blocks
from bot.sandbox.emulator import Delivery, SlackEmulator
from tests.support.approvals import an_approval
from tests.support.process import ChildProcess, child_env

T = TypeVar("T")

SIGNING_SECRET = "bench-signing-secret"
REQUESTER = "U0ALICE"
APPROVER = "U0BOB"
# Conversations are spread over channels as in a real workspace; it also keeps the emulator's
# per-channel scans (a root message's reply count) short.
CHANNELS = {f"C0BENCH{i:02d}": f"bench-{i:02d}" for i in range(20)}
START_TIMEOUT_S = 120.0
CALL_TIMEOUT_S = 600.0
# Every exception the processes under test logged in this run, for the report.
LOGGED: Counter[str] = Counter()
# Deliveries the emulator got no ack for within Slack's 3 s, by kind: Slack would show the
# user an error. Counted and reported rather than fatal, so the run still yields its figures.
UNACKED: Counter[str] = Counter()


def quiet_logs() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(logging.WARNING)


# results ---------------------------------------------------------------------------------


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

    @property
    def ratio(self) -> float | None:
        if self.value is None or not self.baseline:
            return None
        return self.value / self.baseline


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
    head = "| bench | case | metric | slack-approvals | baseline | ratio | target |"
    lines = [head, "|---|---|---|---:|---:|---:|---|"]
    for r in rows:
        ratio = "" if r.ratio is None else f"{r.ratio:.2f}x"
        value = fmt(r.value, r.unit) if r.value is not None or not r.note else r.note
        baseline = "—" if r.baseline is None else fmt(r.baseline, r.unit)
        lines.append(
            f"| {r.bench} | {r.case} | {r.metric} | {value} | {baseline} | {ratio} | {r.target} |"
        )
    return "\n".join(lines)


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


# the emulator and the processes under test ------------------------------------------------


def emulator() -> SlackEmulator:
    """The benchmarks' Slack, with channels enough to spread conversations over; started and
    stopped by `async with`."""
    return SlackEmulator(channels=CHANNELS)


class StartError(RuntimeError):
    """The process under test did not come up; the message carries the end of its log."""


class BotProcess(ChildProcess):
    """A process of `bench.botproc`: the bot, or a baseline, behind a line protocol."""

    def __init__(self, log_path: Path) -> None:
        super().__init__(log_path)
        self.ready: dict[str, Any] = {}
        self._lock = asyncio.Lock()

    @classmethod
    async def start(cls, config: dict[str, Any], source: Path | None = None) -> BotProcess:
        """`source`: another checkout whose code the process runs instead of this one."""
        workdir = Path(config["workdir"])
        bot = cls(workdir / f"{config['kind']}-{time.monotonic_ns()}.log")
        env = child_env()
        if source is not None:
            env["PYTHONPATH"] = os.pathsep.join([str(source), env["PYTHONPATH"]])
        # Not the repo as the working directory: a DATABASE_URL an older bot misreads as a
        # path lands here.
        await bot.spawn(
            sys.executable,
            "-m",
            "bench.botproc",
            json.dumps(config),
            env=env,
            cwd=workdir,
            protocol=True,
        )
        started = time.perf_counter()
        try:
            message = await asyncio.wait_for(bot._read(), START_TIMEOUT_S)
        except (TimeoutError, EOFError):
            message = {}
        if message.get("event") != "ready":
            await bot.stop()
            raise StartError(f"{config['kind']} did not start: {bot.tail(3, ' | ')}")
        message["process_start_s"] = time.perf_counter() - started
        bot.ready = message
        return bot

    async def _read(self) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdout is not None
        line = await self.proc.stdout.readline()
        if not line:
            raise EOFError("the process closed its output")
        result: dict[str, Any] = json.loads(line)
        return result

    async def call(self, cmd: str, **args: Any) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdin is not None
        async with self._lock:
            self.proc.stdin.write((json.dumps({"cmd": cmd, **args}) + "\n").encode())
            await self.proc.stdin.drain()
            answer = await asyncio.wait_for(self._read(), CALL_TIMEOUT_S)
        if not answer.get("ok"):
            raise RuntimeError(f"{cmd} failed in the bot process: {answer.get('error')}")
        return answer

    async def stop(self) -> None:
        assert self.proc is not None
        if self.proc.returncode is None and self.proc.stdin is not None:
            with contextlib.suppress(ConnectionError):
                self.proc.stdin.write(b'{"cmd": "quit"}\n')
                await self.proc.stdin.drain()
                self.proc.stdin.close()
        try:
            await self.wait_exit(40)
        except TimeoutError:
            await self.kill()


def process_config(
    emu: SlackEmulator, *, kind: str, transport: str, database_url: str, workdir: Path
) -> dict[str, Any]:
    return {
        "kind": kind,
        "transport": transport,
        "api_url": emu.api_url,
        "bot_token": emu.bot_token,
        "app_token": emu.app_token,
        "signing_secret": SIGNING_SECRET,
        "database_url": database_url,
        "workdir": str(workdir),
    }


async def enter_all(
    stack: contextlib.AsyncExitStack, managers: Sequence[AbstractAsyncContextManager[T]]
) -> list[T]:
    """Enter these at once, so that their processes start in parallel. If one fails, the
    others are still entered (and so left by `stack`) before its error is raised."""
    entered = await asyncio.gather(
        *(stack.enter_async_context(m) for m in managers), return_exceptions=True
    )
    for result in entered:
        if isinstance(result, BaseException):
            raise result
    return entered  # type: ignore[return-value]


@contextlib.asynccontextmanager
async def graph_process(database_url: str, directory: Path) -> AsyncIterator[BotProcess]:
    """The LangGraph baseline (bench.bare_graph) in a process of its own, as the bot is."""
    bot = await BotProcess.start(
        {"kind": "graph", "database_url": database_url, "workdir": str(directory)}
    )
    try:
        yield bot
    finally:
        await bot.stop()


@contextlib.asynccontextmanager
async def under_test(
    emu: SlackEmulator,
    *,
    kind: str = "bot",
    transport: str = "socket",
    database_url: str,
    workdir: Path,
    source: Path | None = None,
) -> AsyncIterator[BotProcess]:
    """The bot (or the bare app) in its own process, receiving this emulator's deliveries."""
    config = process_config(
        emu, kind=kind, transport=transport, database_url=database_url, workdir=workdir
    )
    bot = await BotProcess.start(config, source)
    try:
        if transport == "http":
            emu.use_http(f"http://127.0.0.1:{bot.ready['http_port']}/slack/events", SIGNING_SECRET)
        yield bot
    finally:
        await bot.stop()
        LOGGED.update(bot.errors())


@contextlib.contextmanager
def workdir() -> Iterator[Path]:
    """A temporary directory for databases and logs; BENCH_WORKDIR keeps them for a look."""
    kept = os.environ.get("BENCH_WORKDIR")
    if kept:
        path = Path(kept)
        path.mkdir(parents=True, exist_ok=True)
        yield Path(tempfile.mkdtemp(prefix="run-", dir=path))
        return
    with tempfile.TemporaryDirectory(prefix="slack-approvals-bench-") as path:
        yield Path(path)


def sqlite_url(directory: Path, name: str = "bot.sqlite3") -> str:
    return f"sqlite:///{directory / name}"


# driving conversations ---------------------------------------------------------------------


@dataclass(frozen=True)
class Card:
    approval_id: str
    channel: str
    ts: str
    cluster: str


# The bare app's cards show the rules the bot's cards show in the benchmarks.
BARE_POLICY = Policy.parse("defaults: {expires_after: 1d}")

# Ids stay unique when a database is reused across runs (a PostgreSQL URL given by hand).
RUN = uuid.uuid4().hex[:4]


def cluster_ids(tag: str, count: int) -> list[str]:
    return [f"{RUN}{tag}-{i:05d}" for i in range(count)]


def channel_for(i: int) -> str:
    return list(CHANNELS)[i % len(CHANNELS)]


def latencies(deliveries: Iterable[Delivery]) -> list[float]:
    """Ack latencies (s) of the deliveries that were acked; the others go to UNACKED."""
    found = []
    for delivery in deliveries:
        if delivery.ack is None or delivery.ack.status != 200:
            UNACKED[delivery.kind] += 1
        else:
            found.append(delivery.ack.latency)
    return found


async def bounded(coros: Iterable[Any], limit: int | None) -> list[Any]:
    """gather(), with at most `limit` awaiting at once."""
    if limit is None:
        return list(await asyncio.gather(*coros))
    gate = asyncio.Semaphore(limit)

    async def one(coro: Any) -> Any:
        async with gate:
            return await coro

    return list(await asyncio.gather(*(one(c) for c in coros)))


async def ask_many(
    emu: SlackEmulator, clusters: Sequence[str], *, per_ask: int = 1, limit: int | None = None
) -> list[float]:
    """`/ask` one conversation per `per_ask` clusters; returns the acks' latencies (s)."""
    asks = []
    for n, i in enumerate(range(0, len(clusters), per_ask)):
        text = " and ".join(f"scale down {c} to 2" for c in clusters[i : i + per_ask])
        asks.append(emu.slash_command(REQUESTER, channel_for(n), "/ask", text))
    return latencies(await bounded(asks, limit))


async def click_many(
    emu: SlackEmulator, cards: Sequence[Card], *, limit: int | None = None
) -> list[float]:
    """Approve every card at once; returns the acks' latencies (s)."""
    clicks = (emu.click(APPROVER, c.channel, c.ts, blocks.APPROVE_ACTION) for c in cards)
    return latencies(await bounded(clicks, limit))


async def cards_of(bot: BotProcess, clusters: Iterable[str] | None = None) -> list[Card]:
    """The bot's pending cards, for these clusters when given."""
    wanted = None if clusters is None else set(clusters)
    cards = [Card(*c) for c in (await bot.call("pending"))["cards"]]
    return [c for c in cards if wanted is None or c.cluster in wanted]


async def post_bare_cards(emu: SlackEmulator, clusters: Sequence[str]) -> list[Card]:
    """Cards like the bot's for the bare app to be clicked on: the same blocks, so Bolt parses
    payloads of the same size in both."""
    client = AsyncWebClient(token=emu.bot_token, base_url=emu.api_url)
    cards = []
    for i, cluster in enumerate(clusters):
        approval = an_approval(
            f"ap_bare{i:08d}",
            channel=channel_for(i),
            args={"cluster_id": cluster, "replicas": 2},
            requester=REQUESTER,
            policy=BARE_POLICY,
        )
        posted = await client.chat_postMessage(
            channel=approval.channel,
            text=blocks.card_text(approval),
            blocks=blocks.approval_card(approval),
        )
        cards.append(Card(approval.id, approval.channel, str(posted["ts"]), cluster))
    return cards


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


def bench_main(
    doc: str,
    title: str,
    run: Callable[..., Coroutine[Any, Any, list[Row]]],
    full: object,
    quick: object,
    *,
    takes_database_url: bool = False,
) -> None:
    """One benchmark's command line: `--quick` for its small sizes (and `--database-url`
    where it runs on PostgreSQL too); prints its table."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a quick look")
    if takes_database_url:
        parser.add_argument(
            "--database-url", help="postgresql://… of a scratch database, for two replicas on it"
        )
    args = parser.parse_args()
    quiet_logs()
    extra = (args.database_url,) if takes_database_url else ()
    print_report(title, asyncio.run(run(quick if args.quick else full, *extra)))
