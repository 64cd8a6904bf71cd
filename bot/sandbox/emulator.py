"""A local Slack for the test suite and the sandbox: Web API, Socket Mode / HTTP delivery and
user actions, faithful enough that unmodified slack-bolt and slack-sdk clients run against it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar, cast

from aiohttp import web

from bot.sandbox.actions import UserActions
from bot.sandbox.delivery import HttpDelivery, SocketModeServer
from bot.sandbox.faults import Fault, FaultKind
from bot.sandbox.records import (
    Ack,
    ApiCall,
    Button,
    Delivery,
    Ephemeral,
    Message,
    View,
    dm_channel_id,
)
from bot.sandbox.state import (
    DEFAULT_CHANNEL_MEMBERS,
    DEFAULT_CHANNELS,
    DEFAULT_USERGROUPS,
    DEFAULT_USERS,
    Workspace,
)
from bot.sandbox.webapi import WebApi

__all__ = [
    "Ack",
    "ApiCall",
    "Button",
    "Delivery",
    "Ephemeral",
    "Message",
    "SlackEmulator",
    "View",
]

T = TypeVar("T")

POLL_INTERVAL = 0.05  # wait_for also polls, for predicates that look outside the emulator
SHUTDOWN_TIMEOUT = 2.0


class SlackEmulator(UserActions):
    def __init__(
        self,
        *,
        bot_token: str = "xoxb-sandbox",
        app_token: str = "xapp-sandbox",
        team_id: str = "T0SANDBOX",
        bot_user_id: str = "U0BOT",
        app_id: str = "A0SANDBOX",
        users: dict[str, str] | None = None,
        usergroups: dict[str, list[str]] | None = None,
        channels: dict[str, str] | None = None,
        channel_members: dict[str, list[str]] | None = None,
        bot_events: Sequence[str] = (
            "app_home_opened",
            "app_mention",
            "message.channels",
            "message.im",
        ),
        ack_timeout: float = 3.0,
        commands: Iterable[str] = ("/ask",),
    ) -> None:
        self.bot_token = bot_token
        self.app_token = app_token
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self.app_id = app_id
        self.ack_timeout = ack_timeout  # Slack's deadline for acks; a late ack counts as none
        # The app's slash commands, as its manifest registers them: Slack sends the app only
        # these, and answers any other itself.
        self.commands = frozenset(commands)
        self._ws = Workspace(
            team_id=team_id,
            bot_user_id=bot_user_id,
            app_id=app_id,
            users=DEFAULT_USERS if users is None else users,
            usergroups=DEFAULT_USERGROUPS if usergroups is None else usergroups,
            channels=DEFAULT_CHANNELS if channels is None else channels,
            bot_events=bot_events,
            channel_members=DEFAULT_CHANNEL_MEMBERS if channel_members is None else channel_members,
        )
        self._socket = SocketModeServer(
            app_id=app_id, ws_url=lambda: self._url("ws") + "socket-mode"
        )
        self._api = WebApi(
            self._ws,
            bot_token=bot_token,
            app_token=app_token,
            issue_socket_url=self._socket.issue_url,
            page_url=lambda: self.base_url,
        )
        self._http = HttpDelivery()
        self._use_http = False
        # Shown on the sandbox page, e.g. {"model": "the offline rule-based model"}.
        self.sandbox_info: dict[str, str] = {}
        self._more_routes: list[Callable[[web.Application], None]] = []
        self._runner: web.AppRunner | None = None
        self._host = ""
        self._port = 0

    # --- lifecycle ---

    def add_routes(self, register: Callable[[web.Application], None]) -> None:
        """Serve more beside Slack's endpoints (the sandbox's, built on the user actions
        below); `register` adds them to the server's app at `start()`."""
        if self._runner is not None:
            raise RuntimeError("add routes before the emulator starts")
        self._more_routes.append(register)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api.handle)
        app.router.add_get("/socket-mode", self._socket.handle)
        app.router.add_post("/response/{key}", self._api.handle_response_url)
        for register in self._more_routes:
            register(app)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        self._host, self._port = host, self._runner.addresses[0][1]

    async def stop(self) -> None:
        await self._socket.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self._http.close()

    async def __aenter__(self) -> SlackEmulator:
        """Started on a free loopback port; stopped on the way out."""
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _url(self, scheme: str) -> str:
        if not self._port:
            raise RuntimeError("the emulator is not started; await emulator.start() first")
        return f"{scheme}://{self._host}:{self._port}/"

    @property
    def base_url(self) -> str:
        return self._url("http")

    @property
    def api_url(self) -> str:
        return self.base_url + "api/"

    @property
    def workspace(self) -> Workspace:
        """The workspace's state, for what is served beside Slack (the sandbox page)."""
        return self._ws

    @property
    def socket_mode_connections(self) -> int:
        return self._socket.connection_count

    async def send_disconnect(self, reason: str = "refresh_requested") -> None:
        """Tell every Socket Mode client to reconnect, as Slack does every few hours, and wait
        until each has replaced its connection."""
        await self._socket.send_disconnect(reason)

    def dm_channel(self, user: str) -> str:
        self._ws.user_name(user)
        return dm_channel_id(user)

    def use_http(self, url: str | Sequence[str], signing_secret: str) -> None:
        """Deliver over HTTP; several URLs (replicas) take deliveries in turn."""
        self._http.target([url] if isinstance(url, str) else url, signing_secret)
        self._use_http = True

    def inject_fault(
        self,
        method: str,
        kind: FaultKind,
        *,
        times: int = 1,
        retry_after: int = 1,
        error: str = "internal_error",
        status: int = 500,
        delay: float = 0.0,
        channel: str | None = None,
        thread_ts: str | None = None,
    ) -> None:
        """The next `times` calls of `method` fail (or wait `delay` s, then succeed): with
        `channel` / `thread_ts`, only calls about that channel / thread — the one a message is
        posted in, or that of the message a call changes; other calls go through."""
        if times < 1:
            raise ValueError("times must be at least 1")
        fault = Fault(kind, times, retry_after, error, status, delay, channel, thread_ts)
        self._api.faults.inject(method, fault)

    def faults_left(
        self, method: str, *, channel: str | None = None, thread_ts: str | None = None
    ) -> int:
        """Injected faults on `method` (in that scope, when given) not yet met: 0 once the
        calls they wait for arrived (a delayed call is then in flight)."""
        return self._api.faults.left(method, channel, thread_ts)

    # --- records ---

    @property
    def ephemerals(self) -> list[Ephemeral]:
        return self._ws.ephemerals

    @property
    def views(self) -> list[View]:
        return self._ws.views

    @property
    def calls(self) -> list[ApiCall]:
        return self._ws.calls

    @property
    def deliveries(self) -> list[Delivery]:
        return self._ws.deliveries

    def messages(self, channel: str) -> list[Message]:
        return self._ws.messages(channel)

    def thread(self, channel: str, thread_ts: str) -> list[Message]:
        return [m for m in self._ws.messages(channel) if thread_ts in (m.ts, m.thread_ts)]

    def message(self, channel: str, ts: str) -> Message:
        found = self._ws.find_message(channel, ts)
        if found is None:
            self._ws.channel(channel)
            raise LookupError(f"no message with ts {ts} in {channel}")
        return found

    def reactions(self, channel: str, ts: str) -> list[str]:
        return list(self._ws.reactions(channel, ts))

    async def wait_for(
        self,
        predicate: Callable[[], T | bool | None],
        timeout: float = 10.0,  # noqa: ASYNC109 - the public API other code is written against
    ) -> T:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            result = predicate()
            if result:
                return cast(T, result)
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(self._describe_timeout(predicate, timeout))
            changed = self._ws.changed
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(remaining, POLL_INTERVAL)):
                    await changed.wait()

    def _describe_timeout(self, predicate: Callable[..., object], timeout: float) -> str:
        name = getattr(predicate, "__qualname__", repr(predicate))
        calls = [f"{c.method} -> {c.response.get('error') or 'ok'}" for c in self.calls[-5:]]
        deliveries = [
            f"{d.kind} ack={d.ack.status if d.ack else None} {d.error or ''}".strip()
            for d in self.deliveries[-5:]
        ]
        return (
            f"wait_for({name}) was still false after {timeout} s; "
            f"last API calls: {calls or 'none'}; last deliveries: {deliveries or 'none'}"
        )
