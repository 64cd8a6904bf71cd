"""The processes under test in a benchmark: the bot (or the bare Bolt app) and the LangGraph
baseline, each a `bench.botproc` process behind a line protocol, and where their databases
and logs go."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, TypeVar

from bench.results import LOGGED
from bot.sandbox.emulator import SlackEmulator
from tests.support.process import ChildProcess, child_env

T = TypeVar("T")

SIGNING_SECRET = "bench-signing-secret"
START_TIMEOUT_S = 120.0
CALL_TIMEOUT_S = 600.0


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
async def bot_and_bare_graph(
    emu: SlackEmulator, *, bot_url: str, bare_url: str, directory: Path, replicas: int = 1
) -> AsyncIterator[tuple[list[BotProcess], BotProcess]]:
    """The bot's processes (`replicas` of them on `bot_url`) and the LangGraph baseline on
    `bare_url`, started together."""
    async with contextlib.AsyncExitStack() as stack:
        *bots, bare = await enter_all(
            stack,
            [
                *(
                    under_test(emu, database_url=bot_url, workdir=directory)
                    for _ in range(replicas)
                ),
                graph_process(bare_url, directory),
            ],
        )
        yield bots, bare


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
