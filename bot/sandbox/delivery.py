"""How payloads reach the bot: Socket Mode envelopes over a WebSocket, or signed HTTP POSTs."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import WSMsgType, web
from slack_sdk.signature import SignatureVerifier

from bot.sandbox.records import Ack, DeliveryKind

CLIENT_WAIT = 5.0  # how long a delivery waits for a Socket Mode client to (re)connect
CLOSE_TIMEOUT = 2.0


class NoAck(Exception):
    """The delivery went out but no ack came back; Slack would retry it later."""


class SocketModeServer:
    def __init__(self, *, app_id: str, ws_url: Callable[[], str]) -> None:
        self._app_id = app_id
        self._ws_url = ws_url
        self._tickets: set[str] = set()
        self._connections: list[web.WebSocketResponse] = []
        self._pending: dict[str, tuple[asyncio.Future[Any], web.WebSocketResponse]] = {}
        self._turn = 0
        self._roster = asyncio.Condition()  # notified whenever a client connects or leaves
        self._closing = False

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    def issue_url(self) -> str:
        # Tickets are single use, like Slack's, so a client that reconnects must call
        # apps.connections.open again (slack-sdk does).
        ticket = secrets.token_urlsafe(16)
        self._tickets.add(ticket)
        return f"{self._ws_url()}?ticket={ticket}"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        if self._closing or ticket not in self._tickets:
            raise web.HTTPUnauthorized(text="invalid or used Socket Mode ticket")
        self._tickets.discard(ticket)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await self._roster_changed(lambda: self._connections.append(ws))
        try:
            await ws.send_json(
                {
                    "type": "hello",
                    "num_connections": len(self._connections),
                    "connection_info": {"app_id": self._app_id},
                    "debug_info": {
                        "host": "sandbox-emulator",
                        "build_number": 1,
                        "approximate_connection_time": 18060,
                    },
                }
            )
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    self._on_ack(message.data)
        finally:
            await self._roster_changed(lambda: self._connections.remove(ws))
            for envelope_id, (future, owner) in list(self._pending.items()):
                if owner is ws and not future.done():
                    future.set_exception(NoAck(f"connection closed before ack of {envelope_id}"))
        return ws

    async def _roster_changed(self, change: Callable[[], None]) -> None:
        async with self._roster:
            change()
            self._roster.notify_all()

    def _on_ack(self, data: str) -> None:
        try:
            ack = json.loads(data)
        except ValueError:
            return
        if not isinstance(ack, dict):
            return
        pending = self._pending.get(str(ack.get("envelope_id")))
        if pending is not None and not pending[0].done():
            pending[0].set_result(ack.get("payload"))

    async def ready(self) -> None:
        """Wait briefly for a client, so a delivery right after a (re)connect still lands."""
        try:
            async with asyncio.timeout(CLIENT_WAIT), self._roster:
                await self._roster.wait_for(lambda: self._connections)
        except TimeoutError:
            raise ConnectionError(
                f"no Socket Mode client connected after {CLIENT_WAIT} s: start the bot "
                "(AsyncSocketModeHandler.connect_async()) or call use_http() first"
            ) from None

    async def send(
        self, kind: DeliveryKind, payload: dict[str, Any], *, retry_num: int, retry_reason: str
    ) -> Ack:
        """Send one envelope and wait for its ack; the caller awaits ready() first and bounds
        the wait for the ack."""
        ws = self._connections[self._turn % len(self._connections)]
        self._turn += 1
        envelope: dict[str, Any] = {
            "envelope_id": str(uuid.uuid4()),
            "type": kind,
            "payload": payload,
            "accepts_response_payload": kind != "events_api",
        }
        # Slack only retries Events API deliveries, so only their envelopes carry retry fields.
        if kind == "events_api":
            envelope["retry_attempt"] = retry_num
            envelope["retry_reason"] = retry_reason
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[envelope["envelope_id"]] = (future, ws)
        started = time.perf_counter()
        try:
            await ws.send_json(envelope)
            body = await future
        except ConnectionError as e:
            raise NoAck(f"connection lost: {e}") from None
        finally:
            self._pending.pop(envelope["envelope_id"], None)
        return Ack(status=200, body=body, latency=time.perf_counter() - started)

    async def send_disconnect(self, reason: str) -> None:
        old = list(self._connections)
        for ws in old:
            await ws.send_json(
                {"type": "disconnect", "reason": reason, "debug_info": {"host": "sandbox-emulator"}}
            )

        def replaced() -> bool:
            current = self._connections
            return len(current) >= len(old) and not any(ws in current for ws in old)

        try:
            async with asyncio.timeout(CLIENT_WAIT), self._roster:
                await self._roster.wait_for(replaced)
        except TimeoutError:
            raise ConnectionError(
                f"Socket Mode clients did not reconnect within {CLIENT_WAIT} s after a disconnect"
            ) from None

    async def close(self) -> None:
        self._closing = True
        for ws in list(self._connections):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ws.close(code=aiohttp.WSCloseCode.GOING_AWAY), CLOSE_TIMEOUT)


class HttpDelivery:
    """Posts to the bot's Request URL with Slack's v0 signature headers; given several URLs
    (replicas behind a load balancer), to each in turn."""

    def __init__(self) -> None:
        self._urls: list[str] = []
        self._turn = 0
        self._signing_secret = ""
        self._session: aiohttp.ClientSession | None = None

    def target(self, urls: Sequence[str], signing_secret: str) -> None:
        if not urls:
            raise ValueError("give at least one Request URL")
        self._urls = list(urls)
        self._signing_secret = signing_secret

    async def send(
        self, kind: DeliveryKind, payload: dict[str, Any], *, retry_num: int, retry_reason: str
    ) -> Ack:
        """Post one request and wait for the response; the caller bounds the wait."""
        body, content_type = _encode(kind, payload)
        timestamp = str(int(time.time()))
        signature = SignatureVerifier(self._signing_secret).generate_signature(
            timestamp=timestamp, body=body
        )
        headers = {
            "Content-Type": content_type,
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": signature or "",
        }
        if retry_num:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = retry_reason
        if self._session is None:
            self._session = aiohttp.ClientSession()
        url = self._urls[self._turn % len(self._urls)]
        self._turn += 1
        started = time.perf_counter()
        try:
            async with self._session.post(url, data=body.encode(), headers=headers) as response:
                text = await response.text()
                latency = time.perf_counter() - started
                parsed: Any = text or None
                if text and response.content_type == "application/json":
                    with contextlib.suppress(ValueError):
                        parsed = json.loads(text)
        except aiohttp.ClientConnectorError as e:
            raise ConnectionError(f"the bot is not reachable at {url}: {e}") from None
        except aiohttp.ClientError as e:
            raise NoAck(f"the request failed: {e}") from None
        return Ack(status=response.status, body=parsed, latency=latency)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def _encode(kind: DeliveryKind, payload: dict[str, Any]) -> tuple[str, str]:
    """The body Slack posts for each kind: JSON events, form fields, or a form `payload` field."""
    if kind == "events_api":
        return json.dumps(payload), "application/json"
    form = "application/x-www-form-urlencoded"
    if kind == "slash_commands":
        return urlencode(payload), form
    return urlencode({"payload": json.dumps(payload)}), form
