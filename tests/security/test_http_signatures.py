"""HTTP mode: every request is signed, fresh and small, and a replayed one has no second effect.

tests/bot/test_http_mode.py covers a slash command that is stale, wrongly signed, tampered
or signed with the wrong secret; these extend it to every kind of request and header defect,
to replays (slack-bolt accepts a byte-identical request again within its 5-minute window)
and to body size.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from urllib.parse import urlencode

import aiohttp
import pytest

from bot.sandbox import payloads
from tests.conftest import Harness
from tests.fakes.openai_server import reply_text
from tests.security.support import (
    FORM,
    approvals,
    audit_events,
    card_over_http,
    click_payload,
    deny_values,
    ephemerals_for,
    events_url,
    form_body,
    http_settings,
    open_view,
    post,
    signed_headers,
    signed_interaction,
    submission_payload,
)
from tests.support.tools import executions

MIB = 1024 * 1024


def slash_body(harness: Harness, text: str) -> str:
    ws = harness.slack.workspace
    payload = payloads.slash_command(
        ws,
        user="U0ALICE",
        channel="C0OPS",
        command="/ask",
        text=text,
        response_url=harness.slack.base_url + "response/unused",
        trigger_id=ws.new_trigger("U0ALICE"),
    )
    return urlencode(payload)


async def nothing_happened(harness: Harness) -> None:
    await harness.idle()
    assert harness.model.requests == []
    assert harness.slack.messages("C0OPS") == []


async def test_missing_signature_headers_are_refused(harness: Harness) -> None:
    async with harness.bot(**http_settings()) as bot:
        url, body = events_url(bot), slash_body(harness, "list clusters")
        good = signed_headers(body)
        stamp, signature = good["X-Slack-Request-Timestamp"], good["X-Slack-Signature"]
        for headers in (
            {},
            {"X-Slack-Request-Timestamp": stamp},
            {"X-Slack-Signature": signature},
            {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": ""},
        ):
            status, _ = await post(url, body, {"Content-Type": FORM, **headers})
            assert status == 401, headers
        await nothing_happened(harness)


async def test_malformed_signatures_are_refused(harness: Harness) -> None:
    async with harness.bot(**http_settings()) as bot:
        url, body = events_url(bot), slash_body(harness, "list clusters")
        good = signed_headers(body)
        digest = good["X-Slack-Signature"].removeprefix("v0=")
        other_stamp = str(int(good["X-Slack-Request-Timestamp"]) - 1)
        for signature, stamp in (
            ("", None),
            ("v0=", None),
            (f"v1={digest}", None),  # another scheme's prefix
            (f"v0={digest.upper()}", None),
            (f"v0={digest[:-2]}", None),  # truncated
            (f"v0={'z' * len(digest)}", None),  # not hex
            (good["X-Slack-Signature"], other_stamp),  # signed for another timestamp
        ):
            headers = {**good, "X-Slack-Signature": signature}
            if stamp is not None:
                headers["X-Slack-Request-Timestamp"] = stamp
            status, _ = await post(url, body, headers)
            assert status == 401, signature
        await nothing_happened(harness)


async def test_malformed_timestamps_are_refused(harness: Harness) -> None:
    async with harness.bot(**http_settings()) as bot:
        url, body = events_url(bot), slash_body(harness, "list clusters")
        statuses = []
        for stamp in ("abc", "", "1.5", "1e9", "0x10"):
            headers = {**signed_headers(body), "X-Slack-Request-Timestamp": stamp}
            statuses.append((await post(url, body, headers))[0])
        await nothing_happened(harness)
    assert statuses == [401] * 5


async def test_unsigned_junk_is_refused_before_it_is_parsed(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with harness.bot(**http_settings()) as bot:
        statuses = []
        for body, content_type in (
            (b"{not json", "application/json"),
            (b"[1, 2]", "application/json"),
            (b"payload=%7Bnot-json", FORM),
            (b"\xff\xfe\xfd", FORM),
        ):
            statuses.append((await post(events_url(bot), body, {"Content-Type": content_type}))[0])
        await nothing_happened(harness)
    assert not [r for r in caplog.records if r.exc_info]
    assert statuses == [401] * 4


async def test_wrong_secret_is_refused_for_events_and_clicks(harness: Harness) -> None:
    call = ("delete_cluster", {"cluster_id": "cl-007"})
    async with card_over_http(harness, "delete cluster cl-007", call, "Deleted.") as http:
        bot, url, card = http.bot, http.url, http.card
        requests = len(harness.model.requests)

        harness.slack.use_http(url, "not-the-signing-secret")
        click = await harness.slack.click("U0BOB", "C0OPS", card.ts, "approval_approve")
        mention = await harness.slack.post_user_message(
            "U0ALICE", "C0OPS", f"<@{bot.bot_user_id}> list clusters"
        )
        await harness.idle()
        assert click.ack is not None and click.ack.status == 401
        assert harness.slack.deliveries[-1].ack is not None
        assert harness.slack.deliveries[-1].ack.status == 401
        assert [r["status"] for r in await approvals(bot)] == ["pending"]
        assert executions("delete_cluster") == []
        assert len(harness.model.requests) == requests
        assert harness.slack.thread("C0OPS", mention) == [harness.slack.message("C0OPS", mention)]


async def test_stale_and_future_timestamps_are_refused_for_a_click(harness: Harness) -> None:
    call = ("delete_cluster", {"cluster_id": "cl-008"})
    async with card_over_http(harness, "delete cluster cl-008", call, "Deleted.") as http:
        bot, url, thread, card = http.bot, http.url, http.thread, http.card
        body, content_type = form_body(
            "interactive", click_payload(harness.slack, "U0BOB", card, "approval_approve")
        )
        now = int(time.time())
        # 10 s beyond Slack's 5 minutes either way, so the clock cannot tip the result.
        for stamp in (now - 310, now + 310, now + 24 * 3600):
            headers = signed_headers(body, content_type=content_type, timestamp=stamp)
            assert (await post(url, body, headers))[0] == 401
        await harness.idle()
        assert [r["status"] for r in await approvals(bot)] == ["pending"]

        # Inside the window the same click counts: the refusals above were about time alone.
        headers = signed_headers(body, content_type=content_type, timestamp=now - 240)
        assert (await post(url, body, headers))[0] == 200
        await harness.wait_text("C0OPS", thread, "Deleted.")
        await harness.idle()
    assert executions("delete_cluster") == [{"cluster_id": "cl-008"}]


async def test_a_replayed_event_starts_one_turn(harness: Harness) -> None:
    harness.model.script(reply_text("Two clusters."))
    async with harness.bot(**http_settings()) as bot:
        ws = harness.slack.workspace
        message = ws.add_message(
            "C0OPS",
            user="U0ALICE",
            text=f"<@{bot.bot_user_id}> list clusters",
            blocks=[],
            thread_ts=None,
        )
        [event] = [
            e for e in payloads.message_events(ws, message) if e["event"]["type"] == "app_mention"
        ]
        body, content_type = form_body("events_api", event)
        headers = signed_headers(body, content_type=content_type)
        # Byte for byte the same request twice, then Slack's own retry of it, then the same
        # message under a new event id (Slack's double delivery of a DM mention).
        assert (await post(events_url(bot), body, headers))[0] == 200
        assert (await post(events_url(bot), body, headers))[0] == 200
        retry = signed_headers(body, content_type=content_type)
        retry.update({"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
        assert (await post(events_url(bot), body, retry))[0] == 200
        renamed, _ = form_body("events_api", {**event, "event_id": "Ev0REPLAYED"})
        assert (
            await post(events_url(bot), renamed, signed_headers(renamed, content_type=content_type))
        )[0] == 200
        await harness.wait_text("C0OPS", message.ts, "Two clusters.")
        await harness.idle()
    assert len(harness.model.requests) == 1
    assert harness.texts("C0OPS", message.ts).count("Two clusters.") == 1


async def test_a_replayed_slash_command_starts_one_turn(harness: Harness) -> None:
    harness.model.script(reply_text("Two clusters."))
    async with harness.bot(**http_settings()) as bot:
        body = slash_body(harness, "list clusters")
        headers = signed_headers(body)
        assert (await post(events_url(bot), body, headers))[0] == 200
        assert (await post(events_url(bot), body, headers))[0] == 200
        await harness.slack.wait_for(
            lambda: any("Two clusters." in m.text for m in harness.slack.messages("C0OPS"))
        )
        await harness.idle()
    assert len(harness.model.requests) == 1
    roots = [m for m in harness.slack.messages("C0OPS") if "asked:" in m.text]
    assert len(roots) == 1


async def test_a_replayed_approve_click_runs_the_tool_once(harness: Harness) -> None:
    call = ("scale_down", {"cluster_id": "cl-001", "replicas": 1})
    async with card_over_http(harness, "scale down cl-001 to 1", call, "Scaled.") as http:
        bot, url, thread, card = http.bot, http.url, http.thread, http.card
        body, headers = signed_interaction(
            click_payload(harness.slack, "U0BOB", card, "approval_approve")
        )
        assert (await post(url, body, headers))[0] == 200
        await harness.wait_text("C0OPS", thread, "Scaled.")
        await harness.idle()
        assert (await post(url, body, headers))[0] == 200
        await harness.idle()
        assert executions("scale_down") == [{"cluster_id": "cl-001", "replicas": 1}]
        assert any("Already decided" in t for t in ephemerals_for(harness, "U0BOB"))
        assert [e for e, _ in await audit_events(bot)].count("approved") == 1


async def test_a_replayed_deny_click_does_not_deny(harness: Harness) -> None:
    """The first click opens the reason modal; the replay must not turn into a denial
    (its trigger is spent, and a failed modal otherwise falls back to denying at once)."""
    call = ("delete_cluster", {"cluster_id": "cl-002"})
    async with card_over_http(harness, "delete cluster cl-002", call, "Deleted.") as http:
        bot, url, thread, card = http.bot, http.url, http.thread, http.card
        body, headers = signed_interaction(
            click_payload(harness.slack, "U0BOB", card, "approval_deny")
        )
        assert (await post(url, body, headers))[0] == 200
        await harness.slack.wait_for(lambda: harness.slack.views)
        await harness.idle()
        assert (await post(url, body, headers))[0] == 200
        await harness.idle()
        assert len(harness.slack.views) == 1
        assert [r["status"] for r in await approvals(bot)] == ["pending"]
        # Bob closed the modal without denying; Carol's approval still decides it.
        await harness.slack.click("U0CAROL", "C0OPS", card.ts, "approval_approve")
        await harness.wait_text("C0OPS", thread, "Deleted.")
        await harness.idle()
    assert executions("delete_cluster") == [{"cluster_id": "cl-002"}]


async def test_a_replayed_deny_submission_decides_once(harness: Harness) -> None:
    call = ("delete_cluster", {"cluster_id": "cl-003"})
    async with card_over_http(harness, "delete cluster cl-003", call, "Left alone.") as http:
        bot, url, thread, card = http.bot, http.url, http.thread, http.card
        view = await open_view(harness, "U0BOB", card.ts, "approval_deny")
        body, headers = signed_interaction(
            submission_payload(harness.slack, "U0BOB", view, deny_values("change freeze"))
        )
        assert (await post(url, body, headers))[0] == 200
        await harness.wait_text("C0OPS", thread, "Left alone.")
        await harness.idle()
        requests = len(harness.model.requests)
        assert (await post(url, body, headers))[0] == 200
        await harness.idle()
        [row] = await approvals(bot)
        assert (row["status"], row["decided_by"], row["reason"]) == (
            "rejected",
            "U0BOB",
            "change freeze",
        )
        assert len(harness.model.requests) == requests
        assert [e for e, _ in await audit_events(bot)].count("denied") == 1
    assert executions("delete_cluster") == []


async def chunks(total: int, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for _ in range(total // size):
        yield b"a" * size


async def test_oversized_requests_are_refused(harness: Harness) -> None:
    """aiohttp's default `client_max_size` (1 MiB) is the cap; Slack's largest payloads
    (a 100-block modal's state, a 50-block message) stay far below it."""
    async with harness.bot(**http_settings()) as bot:
        url = events_url(bot)
        text = "x" * MIB
        body = slash_body(harness, text)
        # Correctly signed: the refusal is about size, not the signature.
        status, _ = await post(url, body, signed_headers(body))
        assert status == 413
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, data=chunks(2 * MIB), headers=signed_headers(b"")) as response,
        ):
            assert response.status == 413  # no Content-Length: refused while streaming
        huge_header = {**signed_headers(b"a=b"), "X-Padding": "p" * 64 * 1024}
        assert (await post(url, b"a=b", huge_header))[0] in (400, 431)
        await nothing_happened(harness)
