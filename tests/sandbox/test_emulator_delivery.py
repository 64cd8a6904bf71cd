"""The emulator delivering to real slack-bolt apps over loopback: Socket Mode, trigger ids,
retries and acks, response URLs and HTTP mode."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.sandbox import delivery as delivery_module
from bot.sandbox import views
from bot.sandbox.emulator import SlackEmulator
from tests.support.bolt_app import APPROVAL_BLOCKS, approval_app, error_of
from tests.support.socket_mode import socket_mode

SECRET = "sandbox-signing-secret"


@pytest.fixture
def slack(mentions_and_dms: SlackEmulator) -> SlackEmulator:
    return mentions_and_dms


# --- Socket Mode with a real Bolt app ---


async def test_socket_mode_with_bolt(slack: SlackEmulator, client: AsyncWebClient) -> None:
    seen: list[dict[str, Any]] = []
    async with socket_mode(slack, approval_app(client, seen)):
        asked = await slack.slash_command("U0ALICE", "C0OPS", "/ask", "scale down cl-001 to 2")
        assert asked.transport == "socket_mode" and asked.ack is not None
        assert asked.ack.body == {"text": "Asking the agent…"} and asked.ack.latency < 1
        assert seen[0]["command"] == "/ask" and seen[0]["channel_name"] == "ops"
        assert seen[0]["trigger_id"] and seen[0]["response_url"].startswith(slack.base_url)
        assert [(e.user, e.text) for e in slack.ephemerals] == [("U0ALICE", "Asking the agent…")]
        root = slack.messages("C0OPS")[0]
        assert root.text == "<@U0ALICE> asked: scale down cl-001 to 2"

        ts = await slack.post_user_message("U0BOB", "C0OPS", "<@U0BOT> status?", thread_ts=root.ts)
        reply = await slack.wait_for(lambda: slack.thread("C0OPS", root.ts)[2:])
        assert reply[0].text == "on it"
        mention = seen[-1]
        assert mention["type"] == "app_mention" and mention["ts"] == ts
        assert mention["thread_ts"] == root.ts and mention["parent_user_id"] == "U0BOT"

        await slack.post_user_message("U0CAROL", "D0CAROL", "hi <@U0BOT>")
        dm_events = slack.deliveries[-2:]
        kinds = [d.payload["event"]["type"] for d in dm_events]
        assert kinds == ["message", "app_mention"]
        assert dm_events[0].payload["event"]["channel_type"] == "im"
        assert dm_events[0].payload["event_id"] != dm_events[1].payload["event_id"]
        assert dm_events[0].payload["authorizations"][0]["user_id"] == "U0BOT"

        clicked = await slack.click("U0BOB", "C0OPS", root.ts, "approve")
        assert clicked.ack is not None and clicked.ack.status == 200
        action = clicked.payload
        assert action["type"] == "block_actions" and action["user"]["id"] == "U0BOB"
        assert action["container"] == {
            "type": "message",
            "message_ts": root.ts,
            "channel_id": "C0OPS",
            "is_ephemeral": False,
        }
        assert action["actions"][0]["value"] == "appr-1" and action["actions"][0]["style"] == (
            "primary"
        )
        assert action["message"]["blocks"][1]["block_id"] == "decision"
        await slack.wait_for(lambda: slack.message("C0OPS", root.ts).text.startswith("Approved"))
        with pytest.raises(LookupError, match="no button approve"):
            await slack.click("U0BOB", "C0OPS", root.ts, "approve")  # respond() removed the buttons
        with pytest.raises(LookupError):
            await slack.click("U0BOB", "C0OPS", "1.000001", "approve")

        await slack.slash_command("U0ALICE", "C0OPS", "/ask", "delete cl-002")
        second = slack.messages("C0OPS")[-1]
        await slack.click("U0DAVE", "C0OPS", second.ts, "deny", value="appr-1")
        modal = await slack.wait_for(lambda: slack.views[-1] if slack.views else None)
        assert modal.user == "U0DAVE" and modal.id.startswith("V")
        empty = {"reason": {"text": {"type": "plain_text_input", "value": ""}}}
        refused = await slack.submit_view("U0DAVE", modal.id, empty)
        assert refused.ack is not None and refused.ack.body["response_action"] == "errors"
        assert modal.is_open
        with pytest.raises(ValueError, match="opened for U0DAVE"):
            await slack.submit_view("U0BOB", modal.id, empty)
        reason = {"reason": {"text": {"type": "plain_text_input", "value": "too risky"}}}
        await slack.submit_view("U0DAVE", modal.id, reason)
        assert not modal.is_open and seen[-1]["private_metadata"] == "appr-1"
        with pytest.raises(ValueError, match="closed"):
            await slack.close_view("U0DAVE", modal.id)

        await slack.click("U0DAVE", "C0OPS", second.ts, "deny")
        again = await slack.wait_for(
            lambda: slack.views[-1] if slack.views[-1] is not modal else None
        )
        closed = await slack.close_view("U0DAVE", again.id)
        assert closed.payload["type"] == "view_closed" and seen[-1]["id"] == again.id

    assert all(d.ack is not None and d.ack.status == 200 for d in slack.deliveries)
    assert all(d.ack.latency < 1 for d in slack.deliveries if d.ack)


async def test_trigger_ids(
    slack: SlackEmulator, client: AsyncWebClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = AsyncApp(client=client)

    @app.command("/ask")
    async def ask(ack: Any) -> None:
        await ack()

    async def fresh_trigger() -> str:
        async with socket_mode(slack, app):
            delivered = await slack.slash_command("U0BOB", "C0OPS", "/ask", "modal please")
        return str(delivered.payload["trigger_id"])

    view = {"type": "modal", "title": {"type": "plain_text", "text": "T"}, "blocks": []}
    assert await error_of(client.views_open(trigger_id="123.456.abc", view=view)) == (
        "invalid_trigger_id"
    )
    trigger = await fresh_trigger()
    long_title = {**view, "title": {"type": "plain_text", "text": "x" * 25}}
    assert await error_of(client.views_open(trigger_id=trigger, view=long_title)) == (
        "invalid_arguments"
    )
    opened = (await client.views_open(trigger_id=trigger, view=view))["view"]
    assert slack.views[-1].trigger_id == trigger and slack.views[-1].user == "U0BOB"
    assert await error_of(client.views_open(trigger_id=trigger, view=view)) == (
        "exchanged_trigger_id"
    )
    stale = client.views_update(view_id=opened["id"], hash="0.stale", view=view)
    assert await error_of(stale) == "hash_conflict"
    renamed = {**view, "title": {"type": "plain_text", "text": "Renamed"}}
    await client.views_update(view_id=opened["id"], hash=opened["hash"], view=renamed)
    assert slack.views[-1].view["title"]["text"] == "Renamed"
    assert await error_of(client.views_update(view_id="V0NOPE", view=view)) == "not_found"

    monkeypatch.setattr(views, "TRIGGER_LIFETIME", 0.0)  # instead of waiting 3 s
    late = await fresh_trigger()
    assert await error_of(client.views_open(trigger_id=late, view=view)) == "expired_trigger_id"


async def test_round_robin_retries_and_missing_acks(
    slack: SlackEmulator, client: AsyncWebClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    slack.ack_timeout = 0.3
    counts = [0, 0]

    def counting_app(index: int) -> AsyncApp:
        app = AsyncApp(client=client)

        @app.command("/ask")
        async def ask(ack: Any) -> None:
            counts[index] += 1
            await ack()

        return app

    apps = [counting_app(0), counting_app(1)]
    async with socket_mode(slack, apps[0]), socket_mode(slack, apps[1]):
        assert slack.socket_mode_connections == 2
        for _ in range(4):
            await slack.slash_command("U0ALICE", "C0OPS", "/ask", "x")
        assert counts == [2, 2]

        event = slack.deliveries[0].payload  # any payload works for a raw delivery
        retried = await slack.deliver("slash_commands", event, retry_num=1, retry_reason="timeout")
        assert retried.retry_num == 1 and retried.ack is not None

        # Bolt never acks what no listener handles (it answers 404 internally): Slack sees no ack.
        hostile = await slack.deliver("events_api", {"type": "event_callback", "event": {}})
        assert hostile.ack is None and hostile.error == "no ack within 0.3 s"

    monkeypatch.setattr(delivery_module, "CLIENT_WAIT", 0.05)
    with pytest.raises(ConnectionError, match="no Socket Mode client"):
        await slack.slash_command("U0ALICE", "C0OPS", "/ask", "x")


async def test_pings_and_reconnects(slack: SlackEmulator, client: AsyncWebClient) -> None:
    app = AsyncApp(client=client)

    @app.command("/ask")
    async def ask(ack: Any) -> None:
        await ack()

    handler = AsyncSocketModeHandler(app, slack.app_token, ping_interval=0.1)
    await handler.connect_async()
    try:
        await asyncio.sleep(0.5)  # several ping/pong rounds: a missed pong would reconnect
        opened = [c for c in slack.calls if c.method == "apps.connections.open"]
        assert len(opened) == 1 and slack.socket_mode_connections == 1
        await slack.send_disconnect()
        assert len([c for c in slack.calls if c.method == "apps.connections.open"]) == 2
        delivered = await slack.slash_command("U0ALICE", "C0OPS", "/ask", "after a refresh")
        assert delivered.ack is not None and slack.socket_mode_connections == 1
    finally:
        await asyncio.wait_for(handler.close_async(), 5)


async def test_response_urls(slack: SlackEmulator, client: AsyncWebClient) -> None:
    app = AsyncApp(client=client)

    @app.command("/ask")
    async def ask(ack: Any) -> None:
        await ack()

    @app.action("approve")
    async def approve(ack: Any) -> None:
        await ack()

    async with socket_mode(slack, app):
        command = (await slack.slash_command("U0ALICE", "C0OPS", "/ask", "x")).payload
        posted = await client.chat_postMessage(channel="C0OPS", text="?", blocks=APPROVAL_BLOCKS)
        clicked = (await slack.click("U0BOB", "C0OPS", posted["ts"], "approve")).payload

    respond = AsyncWebhookClient(command["response_url"])
    assert (await respond.send(text="for alice only")).status_code == 200
    assert (await respond.send(text="for all", response_type="in_channel")).status_code == 200
    assert [(e.user, e.text) for e in slack.ephemerals] == [("U0ALICE", "for alice only")]
    assert slack.messages("C0OPS")[-1].text == "for all"

    assert (
        await AsyncWebhookClient(clicked["response_url"]).send_dict({"delete_original": True})
    ).status_code == 200
    with pytest.raises(LookupError):
        slack.message("C0OPS", posted["ts"])
    unknown = await AsyncWebhookClient(slack.base_url + "response/nope").send(text="x")
    assert unknown.status_code == 404


# --- HTTP mode ---


@asynccontextmanager
async def http_bot(app: AsyncApp) -> AsyncIterator[str]:
    runner = web.AppRunner(app.web_app(path="/slack/events"))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
    finally:
        await runner.cleanup()


async def test_http_delivery(slack: SlackEmulator, client: AsyncWebClient) -> None:
    headers: list[dict[str, Any]] = []
    app = AsyncApp(client=client, signing_secret=SECRET, process_before_response=True)

    @app.event("app_mention")
    async def mention(request: AsyncBoltRequest, say: Any) -> None:
        headers.append(dict(request.headers))
        await say("hello over HTTP")

    @app.command("/ask")
    async def ask(ack: Any, command: dict[str, Any]) -> None:
        await ack(f"got {command['text']}")

    @app.action("approve")
    async def approve(ack: Any) -> None:
        await ack()

    async with http_bot(app) as url:
        slack.use_http(url, SECRET)
        await slack.post_user_message("U0ALICE", "C0OPS", "<@U0BOT> hi")
        event = slack.deliveries[-1]
        assert event.transport == "http" and event.ack is not None and event.ack.status == 200
        await slack.wait_for(
            lambda: any(m.text == "hello over HTTP" for m in slack.messages("C0OPS"))
        )
        assert "x-slack-retry-num" not in headers[-1]

        retried = await slack.deliver("events_api", event.payload, retry_num=1, retry_reason="x")
        assert retried.ack is not None and retried.ack.status == 200
        await slack.wait_for(lambda: len(headers) == 2)
        assert headers[-1]["x-slack-retry-num"] == ["1"]
        assert headers[-1]["x-slack-retry-reason"] == ["x"]

        asked = await slack.slash_command("U0ALICE", "C0OPS", "/ask", "scale")
        assert asked.ack is not None and asked.ack.body == "got scale"
        assert slack.ephemerals[-1].text == "got scale"

        posted = await client.chat_postMessage(channel="C0OPS", text="?", blocks=APPROVAL_BLOCKS)
        clicked = await slack.click("U0BOB", "C0OPS", posted["ts"], "approve")
        assert clicked.ack is not None and clicked.ack.status == 200

        slack.use_http(url, "not-the-secret")
        forged = await slack.slash_command("U0ALICE", "C0OPS", "/ask", "scale")
        assert forged.ack is not None and forged.ack.status == 401
