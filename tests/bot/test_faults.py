"""Slack misbehaving: rate limits, server errors, a post that fails for good, and retried event
deliveries. Nothing is lost, nothing runs or is posted twice (docs/design.md, "A gated tool
runs at most once, and only after a recorded approval", "A crash mid-tool is reported,
never re-run"); the health
and metrics endpoints, and the logs, say what happened."""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from typing import Any

import aiohttp
import pytest

from bot.logcontext import ContextFilter
from tests.conftest import Harness
from tests.fakes.openai_server import reply_text, reply_tool_calls
from tests.support.tools import executions

CHANNEL = "C0OPS"


def samples(metrics: str, name: str) -> dict[str, float]:
    """`{labels: value}` of one metric in a Prometheus text exposition."""
    found = {}
    for line in metrics.splitlines():
        if line.startswith(name):
            key, value = line.rsplit(" ", 1)
            found[key.removeprefix(name)] = float(value)
    return found


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


async def test_rate_limits_and_server_errors_lose_nothing_and_post_nothing_twice(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.handler.addFilter(ContextFilter())
    caplog.set_level(logging.INFO)
    harness.model.script(
        reply_tool_calls(("scale_down", {"cluster_id": "cl-007", "replicas": 1})),
        reply_text("cl-007 runs 1 replica now."),
    )
    slack = harness.slack
    async with harness.bot() as bot:
        # The card's post: a 429, then a 500, then through (slack-sdk's retry handlers).
        slack.inject_fault("chat.postMessage", "ratelimited", retry_after=1)
        slack.inject_fault("chat.postMessage", "error", status=500)
        thread = await slack.post_user_message(
            "U0ALICE", CHANNEL, f"<@{bot.bot_user_id}> scale down cl-007 to 1"
        )
        [card] = await harness.wait_cards(CHANNEL, thread)
        approval_id = card.buttons()[0].value

        # The card's update after the click: a 500, then a 429.
        slack.inject_fault("chat.update", "error", status=503)
        slack.inject_fault("chat.update", "ratelimited", retry_after=1)
        await slack.click("U0BOB", CHANNEL, card.ts, "approval_approve")
        await harness.wait_text(CHANNEL, thread, "cl-007 runs 1 replica now.")
        await harness.idle()

        assert executions("scale_down") == [{"cluster_id": "cl-007", "replicas": 1}]
        texts = harness.texts(CHANNEL, thread)
        assert len(harness.cards(CHANNEL, thread)) == 0  # the one card lost its buttons
        assert sum("Approval needed" in t or "Approved" in t for t in texts) == 1
        assert sum("ran:" in t for t in texts) == 1
        assert sum("cl-007 runs 1 replica now." in t for t in texts) == 1
        assert "Approved by <@U0BOB>" in json.dumps(slack.message(CHANNEL, card.ts).blocks)
        failed = [c for c in slack.calls if c.status != 200]
        assert [(c.method, c.status) for c in failed] == [
            ("chat.postMessage", 429),
            ("chat.postMessage", 500),
            ("chat.update", 503),
            ("chat.update", 429),
        ]

        base = f"http://127.0.0.1:{bot.health_port}"
        assert (await get(base + "/healthz"))[0] == 200
        status, body = await get(base + "/readyz")
        assert status == 200 and json.loads(body) == {
            "ok": True,
            "accepting": True,
            "database": True,
            "slack": True,
        }
        status, metrics = await get(base + "/metrics")
        assert status == 200
        errors = samples(metrics, "slack_approvals_slack_api_errors_total")
        assert errors == {
            '{kind="ratelimited",method="chat.postMessage"}': 1.0,
            '{kind="server_error",method="chat.postMessage"}': 1.0,
            '{kind="server_error",method="chat.update"}': 1.0,
            '{kind="ratelimited",method="chat.update"}': 1.0,
        }
        approvals = samples(metrics, "slack_approvals_approvals")
        assert approvals['{status="approved"}'] == 1.0 and approvals['{status="pending"}'] == 0
        acks = samples(metrics, "slack_approvals_ack_seconds_count")
        assert acks['{kind="event_callback"}'] >= 1 and acks['{kind="block_actions"}'] == 1
        assert samples(metrics, "slack_approvals_run_seconds_count")[""] >= 2

    conversation = f"slack:{bot.team_id}:{CHANNEL}:{thread}"
    tagged = [r for r in caplog.records if getattr(r, "approval", None) == approval_id]
    assert tagged and all(getattr(r, "conversation", None) == conversation for r in tagged)
    assert f"conversation={conversation} approval={approval_id}" in tagged[-1].context  # type: ignore[attr-defined]


async def test_a_card_update_slack_refused_is_caught_up_live_and_at_the_next_start(
    harness: Harness,
) -> None:
    harness.model.script(
        reply_tool_calls(
            ("scale_down", {"cluster_id": "cl-011", "replicas": 1}),
            ("scale_down", {"cluster_id": "cl-012", "replicas": 1}),
        ),
        reply_text("Both scaled down."),
    )
    slack = harness.slack
    async with harness.bot() as bot:
        thread = await harness.ask("scale down cl-011 and cl-012 to 1")
        first, second = await harness.wait_cards(CHANNEL, thread, count=2)
        # An error no retry can fix: the decision stands, the card falls behind.
        slack.inject_fault("chat.update", "error", status=200, error="fatal_error")
        await harness.approve("U0BOB", CHANNEL, first.ts)
        assert executions("scale_down") == [{"cluster_id": "cl-011", "replicas": 1}]
        assert slack.message(CHANNEL, first.ts).buttons(), "the update was refused"
        # A click on the stale buttons decides nothing again.
        await harness.approve("U0CAROL", CHANNEL, first.ts)
        assert len(executions("scale_down")) == 1
        # What the sweeper does every CARD_CATCH_UP_S: the card is redrawn.
        await bot.runner.cards.redraw_behind(decided_before=time.time())
        await harness.idle()
        assert slack.message(CHANNEL, first.ts).buttons() == []
        assert "Approved by <@U0BOB>" in json.dumps(slack.message(CHANNEL, first.ts).blocks)

        slack.inject_fault("chat.update", "error", status=200, error="fatal_error")
        await slack.click("U0BOB", CHANNEL, second.ts, "approval_approve")
        await harness.wait_text(CHANNEL, thread, "Both scaled down.")
        await harness.idle()
        assert slack.message(CHANNEL, second.ts).buttons()
    async with harness.bot():
        await harness.idle()
        assert slack.message(CHANNEL, second.ts).buttons() == []
        assert "Approved by <@U0BOB>" in json.dumps(slack.message(CHANNEL, second.ts).blocks)
    assert len(executions("scale_down")) == 2
    # Per card: the refused update, then one redraw; nothing more.
    updates = Counter(c.params["ts"] for c in slack.calls if c.method == "chat.update")
    assert {ts: updates[ts] for ts in (first.ts, second.ts)} == {first.ts: 2, second.ts: 2}
    # (The batch card beside them is redrawn as each of its calls is decided.)


async def test_a_card_deleted_in_slack_is_not_redrawn_again_and_again(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    harness.model.script(
        reply_tool_calls(("scale_down", {"cluster_id": "cl-013", "replicas": 1})),
        reply_text("Done."),
    )
    slack = harness.slack
    async with harness.bot() as bot:
        thread = await harness.ask("scale down cl-013 to 1")
        [card] = await harness.wait_cards(CHANNEL, thread)
        slack.inject_fault("chat.update", "error", status=200, error="message_not_found")
        await slack.click("U0BOB", CHANNEL, card.ts, "approval_approve")
        await harness.wait_text(CHANNEL, thread, "Done.")
        await harness.idle()
        assert executions("scale_down") == [{"cluster_id": "cl-013", "replicas": 1}]
        assert "can no longer be updated (message_not_found)" in caplog.text
        assert await bot.store.cards_behind(time.time() + 60) == []
        await bot.runner.cards.redraw_behind(decided_before=time.time() + 60)
        await harness.idle()
    assert [c.method for c in slack.calls].count("chat.update") == 1


async def test_an_event_delivered_three_times_starts_one_run(harness: Harness) -> None:
    harness.model.script(reply_text("Hello once."))
    slack = harness.slack
    async with harness.bot() as bot:
        thread = await slack.post_user_message("U0ALICE", CHANNEL, f"<@{bot.bot_user_id}> hi")
        [mention] = [d for d in slack.deliveries if _event_type(d.payload) == "app_mention"]
        for retry in (1, 2):  # Socket Mode marks them with `retry_attempt`
            await slack.deliver(
                "events_api", mention.payload, retry_num=retry, retry_reason="timeout"
            )
        await harness.wait_text(CHANNEL, thread, "Hello once.")
        await harness.idle()
    assert len(harness.model.requests) == 1
    assert sum("Hello once." in t for t in harness.texts(CHANNEL, thread)) == 1


def _event_type(payload: dict[str, Any]) -> str | None:
    event = payload.get("event")
    return event.get("type") if isinstance(event, dict) else None


async def test_housekeeping_forgets_dedupe_keys_slack_can_no_longer_redeliver(
    harness: Harness,
) -> None:
    async with harness.bot() as bot:
        assert await bot.store.first_sighting("old")
        assert await bot.store.first_sighting("recent")
        day = 86_400
        await bot.store.db.execute(
            "UPDATE seen_events SET seen_at = ? WHERE key = 'old'", (time.time() - day - 60,)
        )
        await bot.decisions.housekeeping()
        keys = await bot.store.db.fetchall("SELECT key FROM seen_events ORDER BY key")
        assert keys == [{"key": "recent"}]
        assert not await bot.store.first_sighting("recent")  # still a duplicate
