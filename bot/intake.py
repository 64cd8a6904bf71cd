"""How Slack reaches the bot and the bot reaches Slack: the Web API client, the signed HTTP
endpoint for events, the Socket Mode handler, and closing a Socket Mode connection in bounded
time.

Both intakes try the listeners' fast path (`bot.listeners`) before Bolt's dispatch: in a burst
of clicks most of the bot's event loop went to Bolt's middleware chain, a new client per
request and its listener runner, not to the bot (bench/README.md, B1). What the fast path
takes is what Bolt would have passed to one listener (checked as Bolt checks it: the signature
and its age over HTTP, the workspace); it is acked first, and only then is its work started
(at once, or once its burst has been acked: `bot.bursts`). Everything else goes to Bolt as
before."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.signature import SignatureVerifier
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient

from bot.bursts import Bursts
from bot.metrics import MeasuredApp, Metrics, SlackErrorCounter
from bot.settings import Settings

SOCKET_CLOSE_TIMEOUT_S = 3.0


def _nothing() -> None:
    return None


@dataclass(frozen=True)
class Handoff:
    """A request the fast path takes from Bolt: acked with `reply` (empty: a bare ack), and
    only then `start`ed, so that the work it spawns cannot get ahead of the ack's write."""

    reply: dict[str, Any] = field(default_factory=dict)
    start: Callable[[], None] = _nothing


# A request's parsed body → its hand-off, or None for Bolt to dispatch it.
FastPath = Callable[[Mapping[str, Any]], Handoff | None]


def slack_client(
    settings: Settings,
    token: str | None,
    metrics: Metrics,
    http: aiohttp.ClientSession,
    *,
    retry_connection: bool = True,
) -> AsyncWebClient:
    """A Web API client at `SLACK_API_URL`; slack-sdk's retry handlers share one attempt
    counter, so the limits are raised well above its default of one retry. Without a shared
    session slack-sdk opens a connection (and a TLS handshake) for every call.
    `retry_connection=False` is for the start-up checks: a Slack that cannot be reached then
    is a configuration or network problem to report at once, not ride out."""
    connection = [AsyncConnectionErrorRetryHandler(max_retry_count=4)] if retry_connection else []
    return AsyncWebClient(
        token=token,
        base_url=settings.slack_api_url,
        session=http,
        timeout=15,
        retry_handlers=[
            SlackErrorCounter(metrics),
            *connection,
            AsyncRateLimitErrorRetryHandler(max_retry_count=6),
            AsyncServerErrorRetryHandler(max_retry_count=4),
        ],
    )


EVENTS_PATH = "/slack/events"
MAX_BODY_BYTES = 1024 * 1024


def events_app(
    app: MeasuredApp, signing_secret: str, fast_path: FastPath, bursts: Bursts
) -> web.Application:
    """/slack/events that verifies the raw body's signature before Bolt parses anything:
    Bolt's adapter parses first, so unsigned junk would otherwise reach its parser (500).
    That check is Bolt's own (slack-sdk's `SignatureVerifier`: the HMAC, and a timestamp
    within 5 minutes), so what the fast path takes has passed all Bolt would check."""
    verifier = SignatureVerifier(signing_secret)

    @web.middleware
    async def signed_only(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path != EVENTS_PATH:
            passed: web.StreamResponse = await handler(request)
            return passed
        body = await request.read()  # aiohttp answers 413 past client_max_size
        stamp = request.headers.get("X-Slack-Request-Timestamp", "")
        signature = request.headers.get("X-Slack-Signature", "")
        if not (stamp.isascii() and stamp.isdigit() and verifier.is_valid(body, stamp, signature)):
            return web.json_response({"error": "invalid request"}, status=401)
        verified: web.StreamResponse = await handler(request)
        return verified

    async def events(request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        in_burst = bursts.delivered()
        bolt_request = await to_bolt_request(request)
        body = bolt_request.body
        handoff = fast_path(body) if isinstance(body, dict) else None
        if handoff is None:
            return await to_aiohttp_response(await app.async_dispatch(bolt_request))
        with app.measuring(body, started):
            response = web.json_response(handoff.reply) if handoff.reply else web.Response()
            # Written out before the work starts: a task spawned now could run first.
            await response.prepare(request)
            await response.write_eof()
            bursts.start(handoff.start, in_burst=in_burst)
        return response

    web_app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[signed_only])
    web_app.router.add_post(EVENTS_PATH, events)
    return web_app


class SocketModeHandler(AsyncSocketModeHandler):
    """Bolt's Socket Mode handler, with the fast path ahead of Bolt's dispatch."""

    def __init__(
        self, app: MeasuredApp, app_token: str, fast_path: FastPath, bursts: Bursts
    ) -> None:
        super().__init__(app, app_token)
        self._measured = app
        self._fast_path = fast_path
        self._bursts = bursts

    async def handle(self, client: SocketModeClient, req: SocketModeRequest) -> None:  # type: ignore[override]  # slack-bolt
        started = time.perf_counter()
        in_burst = self._bursts.delivered()
        payload = req.payload
        handoff = (
            self._fast_path(payload)
            if req.type in ("interactive", "slash_commands") and isinstance(payload, dict)
            else None
        )
        if handoff is None:
            await super().handle(client, req)
            return
        with self._measured.measuring(payload, started):
            ack = SocketModeResponse(envelope_id=req.envelope_id, payload=handoff.reply or None)
            await client.send_socket_mode_response(ack)
            self._bursts.start(handoff.start, in_burst=in_burst)


async def close_socket(handler: AsyncSocketModeHandler) -> None:
    # slack-sdk's aiohttp client can linger ~10 s in its ping loop: bound it.
    with contextlib.suppress(TimeoutError):
        closing = handler.close_async()  # type: ignore[no-untyped-call]  # slack-bolt
        await asyncio.wait_for(closing, SOCKET_CLOSE_TIMEOUT_S)
