"""The real stack on loopback: the bot's Bolt app ↔ the Slack emulator, ChatOpenAI ↔ a fake."""

from __future__ import annotations

import fcntl
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from bot.clock import Clock
from bot.sandbox.emulator import Message, SlackEmulator
from bot.sandbox.web import serve_sandbox
from bot.service import RunningBot, running_bot
from bot.settings import Settings, load_settings
from tests.fakes.openai_server import FakeOpenAI, reply_text, reply_tool_calls
from tests.support import tools
from tests.support.pg import requires_postgres

POLICY = """\
defaults:
  approvers: []
tools:
  list_clusters: {approval: never}
  describe_cluster: {approval: never}
  scale_down: {approval: required}
  delete_cluster: {approval: required}
"""


class Harness:
    def __init__(self, emulator: SlackEmulator, model: FakeOpenAI, tmp: Path) -> None:
        self.slack = emulator
        self.model = model
        self.tmp = tmp
        self.policy_file = tmp / "policy.yml"
        self.policy_file.write_text(POLICY)

    def settings(self, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "_env_file": None,
            "slack_bot_token": self.slack.bot_token,
            "slack_app_token": self.slack.app_token,
            "slack_api_url": self.slack.api_url,
            "openai_api_key": "test",
            "openai_base_url": self.model.base_url,
            "openai_model": "fake-model",
            "database_url": f"sqlite:///{self.tmp / 'bot.sqlite3'}",
            "approvals_tools": "tests.support.tools:TOOLS",
            "approvals_policy": str(self.policy_file),
            "demo_inventory": str(self.tmp / "inventory.sqlite3"),
            "health_port": 0,
        }
        values.update(overrides)
        return load_settings(**values)

    @asynccontextmanager
    async def bot(self, clock: Clock | None = None, **overrides: Any) -> AsyncIterator[RunningBot]:
        async with running_bot(self.settings(**overrides), clock) as bot:
            self.running = bot
            yield bot

    async def idle(self) -> None:
        assert await self.running.runner.wait_idle(20), "background work did not finish"

    async def ask(self, text: str, *, user: str = "U0ALICE", channel: str = "C0OPS") -> str:
        """`/ask` and return the thread the bot opened for it."""
        earlier = {m.ts for m in self.slack.messages(channel)}
        delivery = await self.slack.slash_command(user, channel, "/ask", text)
        assert delivery.ack is not None
        root = await self.slack.wait_for(
            lambda: next(
                (
                    m
                    for m in self.slack.messages(channel)
                    if m.ts not in earlier
                    and m.bot_id
                    and "asked:" in m.text
                    and text[:20] in m.text
                ),
                None,
            )
        )
        return root.ts

    async def ask_two_calls(self, answer: str | None = None) -> tuple[str, list[Message]]:
        """`/ask` for which the model calls scale_down and delete_cluster at once, then says
        `answer` (if given); returns the thread and its two cards."""
        calls = reply_tool_calls(
            ("scale_down", {"cluster_id": "cl-001", "replicas": 1}),
            ("delete_cluster", {"cluster_id": "cl-002"}),
        )
        self.model.script(calls, *([] if answer is None else [reply_text(answer)]))
        thread = await self.ask("scale down cl-001 to 1 and delete cluster cl-002")
        return thread, await self.wait_cards("C0OPS", thread, count=2)

    async def ask_call(
        self, text: str, tool: str, args: dict[str, Any], answer: str, channel: str = "C0OPS"
    ) -> tuple[str, Message]:
        """`/ask` for which the model makes one gated call, then says `answer`; returns the
        thread and its card."""
        self.model.script(reply_tool_calls((tool, args)), reply_text(answer))
        thread = await self.ask(text, channel=channel)
        [card] = await self.wait_cards(channel, thread)
        return thread, card

    async def ask_scale_down(
        self,
        replicas: int = 2,
        *,
        cluster: str = "cl-001",
        answer: str = "All done here.",
        channel: str = "C0OPS",
    ) -> tuple[str, Message]:
        """`/ask` to scale `cluster` down to `replicas` (see `ask_call`)."""
        args = {"cluster_id": cluster, "replicas": replicas}
        text = f"scale down {cluster} to {replicas}"
        return await self.ask_call(text, "scale_down", args, answer, channel)

    async def approve(self, user: str, channel: str, card_ts: str) -> None:
        """`user` clicks Approve; returns once the bot's background work is done."""
        await self.slack.click(user, channel, card_ts, "approval_approve")
        await self.idle()

    async def approve_and_wait(self, thread: str, card: Message, answer: str) -> None:
        """The on-call approver approves `card`; returns once the bot said `answer` in the
        thread and its background work is done."""
        await self.slack.click("U0BOB", "C0OPS", card.ts, "approval_approve")
        await self.wait_text("C0OPS", thread, answer)
        await self.idle()

    def with_button(self, channel: str, thread_ts: str, action_id: str) -> list[Message]:
        return [
            m
            for m in self.slack.thread(channel, thread_ts)
            if any(b.action_id == action_id for b in m.buttons())
        ]

    def cards(self, channel: str, thread_ts: str) -> list[Message]:
        return self.with_button(channel, thread_ts, "approval_approve")

    async def wait_button(self, channel: str, thread_ts: str, action_id: str) -> Message:
        """The first message in the thread that carries a button with this action id."""
        return await self.slack.wait_for(
            lambda: next(iter(self.with_button(channel, thread_ts, action_id)), None)
        )

    async def wait_cards(self, channel: str, thread_ts: str, count: int = 1) -> list[Message]:
        return await self.slack.wait_for(
            lambda: (cards := self.cards(channel, thread_ts)) and len(cards) >= count and cards
        )

    async def wait_text(self, channel: str, thread_ts: str, needle: str) -> Message:
        return await self.slack.wait_for(
            lambda: next(
                (m for m in self.slack.thread(channel, thread_ts) if needle in m.text), None
            )
        )

    async def deny(self, user: str, channel: str, card_ts: str, reason: str | None = None) -> None:
        """Deny through the modal, as a person would: click, then submit the reason form."""
        opened = len(self.slack.views)
        await self.slack.click(user, channel, card_ts, "approval_deny")
        view = await self.slack.wait_for(
            lambda: len(self.slack.views) > opened and self.slack.views[-1]
        )
        assert view.view["callback_id"] == "deny_reason"
        value = {"type": "plain_text_input", "value": reason}
        await self.slack.submit_view(user, view.id, {"reason": {"reason": value}})

    def texts(self, channel: str, thread_ts: str) -> list[str]:
        return [m.text for m in self.slack.thread(channel, thread_ts)]


@pytest.fixture
async def slack() -> AsyncIterator[SlackEmulator]:
    """The emulator every test talks to, with the sandbox's page and endpoints beside it."""
    async with serve_sandbox(SlackEmulator()) as emulator:
        yield emulator


@pytest.fixture
async def model() -> AsyncIterator[FakeOpenAI]:
    fake = FakeOpenAI()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
def harness(slack: SlackEmulator, model: FakeOpenAI, tmp_path: Path) -> Harness:
    tools.EXECUTIONS.clear()
    tools.GATE.clear()
    return Harness(slack, model, tmp_path)


@pytest.fixture(autouse=True)
def one_worker_on_postgresql(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """With the suite's workers (pytest-xdist), one at a time runs a test that needs PostgreSQL:
    a bot process may hold ~30 connections, and two multi-process tests side by side could pass
    the server's default max_connections (100). Each test still gets a database of its own."""
    if "PYTEST_XDIST_WORKER" not in os.environ or not any(
        mark == requires_postgres.mark for mark in request.node.iter_markers("skipif")
    ):
        yield
        return
    # The workers' temporary directories share this parent, one per run of the suite.
    with (tmp_path_factory.getbasetemp().parent / "postgresql.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
