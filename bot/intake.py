"""How Slack reaches the bot and the bot reaches Slack: the Web API client, the signed HTTP
endpoint for events, and closing a Socket Mode connection in bounded time."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from bot.metrics import Metrics, SlackErrorCounter
from bot.settings import Settings

SOCKET_CLOSE_TIMEOUT_S = 3.0


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


def events_app(app: AsyncApp, signing_secret: str) -> web.Application:
    """/slack/events that verifies the raw body's signature before Bolt parses anything:
    Bolt's adapter parses first, so unsigned junk would otherwise reach its parser (500)."""
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

    async def events(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await app.async_dispatch(await to_bolt_request(request)))

    web_app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[signed_only])
    web_app.router.add_post(EVENTS_PATH, events)
    return web_app


async def close_socket(handler: AsyncSocketModeHandler) -> None:
    # slack-sdk's aiohttp client can linger ~10 s in its ping loop: bound it.
    with contextlib.suppress(TimeoutError):
        closing = handler.close_async()  # type: ignore[no-untyped-call]  # slack-bolt
        await asyncio.wait_for(closing, SOCKET_CLOSE_TIMEOUT_S)
