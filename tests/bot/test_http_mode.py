"""HTTP mode: signed requests on /slack/events; unsigned, mis-signed or stale ones are refused."""

from __future__ import annotations

import json
import time
from urllib.parse import urlencode

import aiohttp
from slack_sdk.signature import SignatureVerifier

from tests.conftest import Harness
from tests.fakes.openai_server import reply_text, reply_tool_calls
from tests.security.support import SECRET, http_settings
from tests.support.tools import executions


async def test_signed_requests_drive_the_whole_flow(harness: Harness) -> None:
    harness.model.script(
        reply_tool_calls(("scale_down", {"cluster_id": "cl-004", "replicas": 1})),
        reply_text("cl-004 is down to 1."),
    )
    async with harness.bot(**http_settings()) as bot:
        harness.slack.use_http(f"http://127.0.0.1:{bot.http_port}/slack/events", SECRET)
        thread = await harness.ask("scale down cl-004 to 1")
        [card] = await harness.wait_cards("C0OPS", thread)
        delivery = await harness.slack.click("U0BOB", "C0OPS", card.ts, "approval_approve")
        assert delivery.ack is not None and delivery.ack.status == 200
        await harness.wait_text("C0OPS", thread, "cl-004 is down to 1.")
        await harness.idle()
    assert executions("scale_down") == [{"cluster_id": "cl-004", "replicas": 1}]
    assert {d.transport for d in harness.slack.deliveries} == {"http"}


async def test_wrong_secret_is_refused_and_changes_nothing(harness: Harness) -> None:
    async with harness.bot(**http_settings()) as bot:
        harness.slack.use_http(f"http://127.0.0.1:{bot.http_port}/slack/events", "not-the-secret")
        delivery = await harness.slack.slash_command("U0ALICE", "C0OPS", "/ask", "list clusters")
        assert delivery.ack is not None and delivery.ack.status == 401
        await harness.idle()
    assert harness.model.requests == []
    assert harness.slack.messages("C0OPS") == []


async def signed_post(
    url: str, body: str, *, timestamp: int, secret: str = SECRET, signature: str | None = None
) -> int:
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": str(timestamp),
        "X-Slack-Signature": signature
        or SignatureVerifier(secret).generate_signature(timestamp=str(timestamp), body=body)
        or "",
    }
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body.encode(), headers=headers) as response,
    ):
        return response.status


async def test_stale_missing_and_malformed_signatures_are_refused(harness: Harness) -> None:
    command = {
        "team_id": "T0SANDBOX",
        "channel_id": "C0OPS",
        "user_id": "U0ALICE",
        "command": "/ask",
        "text": "delete cluster cl-001",
        "trigger_id": "t.1",
        "response_url": "http://127.0.0.1:1/unused",
    }
    body = urlencode(command)
    async with harness.bot(**http_settings()) as bot:
        url = f"http://127.0.0.1:{bot.http_port}/slack/events"
        now = int(time.time())
        assert await signed_post(url, body, timestamp=now - 6 * 60) == 401  # stale
        assert await signed_post(url, body, timestamp=now, signature="v0=deadbeef") == 401
        assert await signed_post(url, body, timestamp=now, signature="garbage") == 401
        tampered = body.replace("cl-001", "cl-002")
        good = SignatureVerifier(SECRET).generate_signature(timestamp=str(now), body=body)
        assert await signed_post(url, tampered, timestamp=now, signature=good) == 401
        # The same request, correctly signed and fresh, is accepted: the refusals were real.
        assert await signed_post(url, body, timestamp=now) == 200
        await harness.idle()
    assert len(harness.model.requests) == 1
    assert json.dumps(harness.model.requests[0]).count("delete cluster cl-001") == 1
