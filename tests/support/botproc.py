"""Bot processes for tests: `slack-approvals run` in HTTP mode (or Socket Mode), configured by
its environment only, as an operator runs it, against the in-test Slack emulator and fake
model.

A `Deployment` is one emulator, one fake model, one database and N bot processes that Slack
(the emulator) calls in turn, as a load balancer would.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bot.db import Database
from bot.sandbox.emulator import SlackEmulator
from tests.conftest import Harness
from tests.fakes.openai_server import FakeOpenAI
from tests.support import durable_tools
from tests.support.operator import operator_model
from tests.support.process import ChildProcess, child_env, free_port

CLI = Path(sys.executable).with_name("slack-approvals")
SECRET = "test-signing-secret"
READY_TIMEOUT_S = 60.0
# Settings the bot reads from the environment: the test's own values replace any inherited.
_BOT_SETTINGS = (
    "SLACK_",
    "OPENAI_",
    "APPROVALS_",
    "LANGGRAPH_",
    "DATABASE_URL",
    "PORT",
    "HOST",
    "HEALTH_",
)


class BotProcess(ChildProcess):
    def __init__(self, name: str, env: dict[str, str], workdir: Path) -> None:
        super().__init__(workdir / f"{name}.log")
        self.name = name
        self.port = free_port()
        # In Socket Mode nothing listens on PORT: the probes (`url`) are on HEALTH_PORT.
        port = "HEALTH_PORT" if "SLACK_APP_TOKEN" in env else "PORT"
        self.env = {**env, port: str(self.port)}
        self.workdir = workdir

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        await self.spawn(str(CLI), "run", env=self.env, cwd=self.workdir)

    async def wait_ready(self) -> None:
        """Until `/readyz` answers 200: the database is reachable and recovery has started."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                if not self.running:
                    raise RuntimeError(f"{self.name} exited at start-up:\n{self.tail()}")
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(self.url + "/readyz") as response:
                        if response.status == 200:
                            return
                await asyncio.sleep(0.05)
        raise TimeoutError(f"{self.name} not ready after {READY_TIMEOUT_S} s:\n{self.tail()}")


@dataclass
class Deployment:
    slack: SlackEmulator
    model: FakeOpenAI
    workdir: Path
    bots: list[BotProcess]
    ui: Harness
    """The in-process test harness's Slack helpers (ask, wait for cards and texts)."""
    db: Database
    """The bots' database, as the test reads it."""

    @property
    def executions_log(self) -> Path:
        return self.workdir / "executions.jsonl"

    def hold(self, cluster_id: str) -> None:
        (self.workdir / "hold" / cluster_id).touch()

    def release(self, cluster_id: str) -> None:
        (self.workdir / "hold" / cluster_id).unlink(missing_ok=True)

    def started(self, cluster_id: str) -> int:
        return durable_tools.started(self.executions_log)[cluster_id]

    def finished(self, cluster_id: str) -> int:
        return durable_tools.finished(self.executions_log)[cluster_id]

    async def wait(
        self, what: str, predicate: Callable[[], object | Awaitable[object]], limit: float = 20.0
    ) -> None:
        """Poll `predicate` (sync, or async like a query) until true; `what` names it in the
        failure."""
        deadline = time.monotonic() + limit
        while not await _value(predicate()):
            if time.monotonic() > deadline:
                logs = "\n".join(f"--- {b.name}\n{b.tail(30)}" for b in self.bots)
                raise TimeoutError(f"still waiting for {what} after {limit} s\n{logs}")
            await asyncio.sleep(0.02)

    async def start(self) -> None:
        """(Re)start every bot that is not running, and wait until all are ready."""
        stopped = [bot for bot in self.bots if not bot.running]
        for bot in stopped:
            await bot.start()
        await asyncio.gather(*(bot.wait_ready() for bot in stopped))

    async def card_recorded(self, card_ts: str) -> None:
        """Until the bot has stored where a card is: a click a few milliseconds after the post
        would otherwise be refused as coming from another message."""
        await self.wait(
            f"card {card_ts} on record",
            lambda: self.db.fetchone("SELECT id FROM approvals WHERE message_ts = ?", (card_ts,)),
        )


async def _value(result: object | Awaitable[object]) -> object:
    return await result if inspect.isawaitable(result) else result


def _bot_env(
    slack: SlackEmulator, model: FakeOpenAI, workdir: Path, database_url: str
) -> dict[str, str]:
    env = child_env(
        {k: v for k, v in os.environ.items() if not k.upper().startswith(_BOT_SETTINGS)}
    )
    policy = workdir / "durable-policy.yml"
    policy.write_text(durable_tools.POLICY)
    (workdir / "hold").mkdir(exist_ok=True)
    env.update(
        SLACK_BOT_TOKEN=slack.bot_token,
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_API_URL=slack.api_url,
        HOST="127.0.0.1",
        OPENAI_API_KEY="test",
        OPENAI_BASE_URL=model.base_url,
        OPENAI_MODEL="fake-model",
        DATABASE_URL=database_url,
        APPROVALS_TOOLS="tests.support.durable_tools:TOOLS",
        APPROVALS_POLICY=str(policy),
        APPROVALS_TEST_LOG=str(workdir / "executions.jsonl"),
        APPROVALS_TEST_HOLD=str(workdir / "hold"),
    )
    return env


@asynccontextmanager
async def deployment(
    workdir: Path,
    database_url: str,
    replicas: int,
    env: Mapping[str, str | None] | None = None,
    *,
    model: FakeOpenAI | None = None,
    transport: str = "http",
) -> AsyncIterator[Deployment]:
    """Started and ready; every bot process is killed on the way out. `env` adds to (or
    replaces) the bots' settings, or removes one (None); `model` (stopped on the way out)
    replaces the operator model. `transport="socket"`: the bots take Slack's deliveries
    over Socket Mode instead of HTTP."""
    slack = SlackEmulator()
    await slack.start()
    model = model or await operator_model()
    db = await Database.open(database_url)
    bot_env = _bot_env(slack, model, workdir, database_url)
    if transport == "socket":
        bot_env.pop("SLACK_SIGNING_SECRET")
        bot_env["SLACK_APP_TOKEN"] = slack.app_token
    for name, value in (env or {}).items():
        if value is None:
            bot_env.pop(name, None)
        else:
            bot_env[name] = value
    bots = [BotProcess(f"bot{i}", bot_env, workdir) for i in range(replicas)]
    ui = Harness(slack, model, workdir)
    found = Deployment(slack, model, workdir, bots, ui, db)
    try:
        await found.start()
        if transport == "http":
            slack.use_http([f"{b.url}/slack/events" for b in bots], SECRET)
        yield found
    finally:
        for bot in bots:
            if bot.running:
                await bot.kill()
        await db.close()
        await model.stop()
        await slack.stop()
