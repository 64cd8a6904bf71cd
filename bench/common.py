"""What every benchmark shares: the emulator, the processes under test and the conversations
it drives through them (the results they yield are `bench.results`)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from slack_sdk.web.async_client import AsyncWebClient

from agent.policy import Policy
from bench.results import LOGGED, UNACKED, Row, print_report
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


def quiet_logs() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(logging.WARNING)


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
