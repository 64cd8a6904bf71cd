"""The emulator against the real slack-sdk and slack-bolt clients, over loopback."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.sandbox import delivery as delivery_module
from bot.sandbox import views
from bot.sandbox.emulator import SlackEmulator
from tests.support.socket_mode import socket_mode

SECRET = "sandbox-signing-secret"
TS = re.compile(r"^\d{10}\.\d{6}$")
APPROVAL_BLOCKS: list[dict[str, Any]] = [
    {"type": "section", "text": {"type": "mrkdwn", "text": "Run `scale_down`?"}},
    {
        "type": "actions",
        "block_id": "decision",
        "elements": [
            {
                "type": "button",
                "action_id": "approve",
                "value": "appr-1",
                "style": "primary",
                "text": {"type": "plain_text", "text": "Approve"},
            },
            {
                "type": "button",
                "action_id": "deny",
                "value": "appr-1",
                "style": "danger",
                "text": {"type": "plain_text", "text": "Deny"},
                "confirm": {"title": {"type": "plain_text", "text": "Sure?"}},
            },
        ],
    },
]


@pytest.fixture
def slack(mentions_and_dms: SlackEmulator) -> SlackEmulator:
    return mentions_and_dms


async def error_of(call: Any) -> str:
    with pytest.raises(SlackApiError) as raised:
        await call
    return str(raised.value.response["error"])


# --- Web API ---


async def test_auth(slack: SlackEmulator, client: AsyncWebClient) -> None:
    me = await client.auth_test()
    assert (me["user_id"], me["team_id"], me["bot_id"]) == ("U0BOT", "T0SANDBOX", "B0SANDBOX")
    assert me["is_enterprise_install"] is False and me["url"]

    assert await error_of(AsyncWebClient(base_url=slack.api_url).auth_test()) == "not_authed"
    wrong = AsyncWebClient(token="xoxb-wrong", base_url=slack.api_url)
    assert await error_of(wrong.auth_test()) == "invalid_auth"
    app_token = AsyncWebClient(token=slack.app_token, base_url=slack.api_url)
    assert await error_of(app_token.auth_test()) == "not_allowed_token_type"
    assert await error_of(client.apps_connections_open(app_token="xoxb-sandbox")) == (
        "not_allowed_token_type"
    )
    assert await error_of(client.api_call("chat.nonsense")) == "unknown_method"
    opened = await client.apps_connections_open(app_token=slack.app_token)
    assert opened["url"].startswith(slack.base_url.replace("http", "ws") + "socket-mode?ticket=")
    assert [c.status for c in slack.calls] == [200] * 7


async def test_messages_threads_and_updates(slack: SlackEmulator, client: AsyncWebClient) -> None:
    root = await client.chat_postMessage(channel="C0OPS", text="approve?", blocks=APPROVAL_BLOCKS)
    assert TS.match(root["ts"]) and root["channel"] == "C0OPS"
    assert root["message"]["bot_id"] == "B0SANDBOX" and root["message"]["user"] == "U0BOT"
    reply = await client.chat_postMessage(channel="C0OPS", text="details", thread_ts=root["ts"])
    nested = await client.chat_postMessage(channel="C0OPS", text="more", thread_ts=reply["ts"])
    assert root["ts"] < reply["ts"] < nested["ts"]
    assert nested["message"]["thread_ts"] == root["ts"]  # a reply to a reply joins the thread

    stored = slack.message("C0OPS", root["ts"])
    assert stored.user is None and stored.bot_id == "B0SANDBOX" and not stored.edited
    assert stored.blocks[0]["block_id"]  # generated, as Slack does
    buttons = stored.buttons()
    assert [(b.action_id, b.value, b.text, b.style) for b in buttons] == [
        ("approve", "appr-1", "Approve", "primary"),
        ("deny", "appr-1", "Deny", "danger"),
    ]

    updated = await client.chat_update(channel="C0OPS", ts=root["ts"], text="Approved by bob")
    assert updated["ts"] == root["ts"]
    after = slack.message("C0OPS", root["ts"])
    assert after.text == "Approved by bob" and after.edited and after.buttons()  # blocks kept
    await client.chat_update(channel="C0OPS", ts=root["ts"], text="done", blocks=[])
    assert slack.message("C0OPS", root["ts"]).buttons() == []

    assert [m.text for m in slack.messages("C0OPS")] == ["done", "details", "more"]
    assert [m.ts for m in slack.thread("C0OPS", root["ts"])] == [
        root["ts"],
        reply["ts"],
        nested["ts"],
    ]
    dm = await client.chat_postMessage(channel="U0ALICE", text="hello")
    assert dm["channel"] == slack.dm_channel("U0ALICE") == "D0ALICE"
    with pytest.raises(LookupError):
        slack.message("C0OPS", "1.000000")


async def test_form_encoded_calls(slack: SlackEmulator) -> None:
    form = {"token": slack.bot_token, "channel": "C0OPS", "blocks": json.dumps(APPROVAL_BLOCKS)}
    async with (
        aiohttp.ClientSession() as http,
        http.post(slack.api_url + "chat.postMessage", data=form) as response,
    ):
        body = await response.json()
    assert response.status == 200 and body["ok"] is True
    assert slack.calls[-1].params["blocks"][1]["block_id"] == "decision"  # decoded, token dropped
    assert "token" not in slack.calls[-1].params
    assert slack.message("C0OPS", body["ts"]).buttons()[0].action_id == "approve"


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing")
async def test_message_errors(slack: SlackEmulator, client: AsyncWebClient) -> None:
    post = client.chat_postMessage
    assert await error_of(post(channel="C0NOPE", text="x")) == "channel_not_found"
    assert await error_of(post(channel="C0OPS")) == "no_text"
    assert await error_of(post(channel="C0OPS", blocks=[{"text": "no type"}])) == "invalid_blocks"
    assert await error_of(post(channel="C0OPS", blocks="not json")) == "invalid_blocks"
    long_section = {"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}
    with pytest.raises(SlackApiError) as raised:
        await post(channel="C0OPS", blocks=[long_section])
    assert "3001" in raised.value.response["response_metadata"]["messages"][0]
    twice = [{"type": "divider", "block_id": "a"}, {"type": "divider", "block_id": "a"}]
    assert await error_of(post(channel="C0OPS", blocks=twice)) == "invalid_blocks"

    update = client.chat_update
    assert await error_of(update(channel="C0OPS", ts="1.000001", text="x")) == "message_not_found"
    user_ts = await slack.post_user_message("U0ALICE", "C0OPS", "a human message")
    assert await error_of(update(channel="C0OPS", ts=user_ts, text="x")) == "cant_update_message"


async def test_ephemerals_reactions_people(slack: SlackEmulator, client: AsyncWebClient) -> None:
    sent = await client.chat_postEphemeral(channel="C0OPS", user="U0CAROL", text="not yours")
    assert TS.match(sent["message_ts"])
    assert [(e.channel, e.user, e.text) for e in slack.ephemerals] == [
        ("C0OPS", "U0CAROL", "not yours")
    ]
    assert await error_of(client.chat_postEphemeral(channel="D0ALICE", user="U0BOB", text="x")) == (
        "user_not_in_channel"
    )

    ts = (await client.chat_postMessage(channel="C0OPS", text="working"))["ts"]
    await client.reactions_add(channel="C0OPS", timestamp=ts, name="eyes")
    assert slack.reactions("C0OPS", ts) == ["eyes"]
    add_again = client.reactions_add(channel="C0OPS", timestamp=ts, name="eyes")
    assert await error_of(add_again) == "already_reacted"
    await client.reactions_remove(channel="C0OPS", timestamp=ts, name="eyes")
    remove_again = client.reactions_remove(channel="C0OPS", timestamp=ts, name="eyes")
    assert await error_of(remove_again) == "no_reaction"
    missing = client.reactions_add(channel="C0OPS", timestamp="1.000001", name="x")
    assert await error_of(missing) == "message_not_found"

    bob = (await client.users_info(user="U0BOB"))["user"]
    assert (bob["name"], bob["tz"], bob["is_bot"]) == ("bob", "UTC", False)
    assert bob["profile"]["display_name"] == "bob" and bob["real_name"] == "Bob"
    assert await error_of(client.users_info(user="U0NOBODY")) == "user_not_found"
    group = await client.usergroups_users_list(usergroup="S0SREONCALL")
    assert group["users"] == ["U0BOB", "U0DAVE"]
    assert await error_of(client.usergroups_users_list(usergroup="S0NOPE")) == "no_such_subteam"
    assert (await client.conversations_info(channel="C0OPS"))["channel"]["name"] == "ops"
    dm = (await client.conversations_info(channel="D0ALICE"))["channel"]
    assert dm["is_im"] is True and dm["user"] == "U0ALICE"
    status = {"channel_id": "D0ALICE", "thread_ts": ts, "status": "is thinking..."}
    await client.assistant_threads_setStatus(**status)
    assert slack.calls[-1].method == "assistant.threads.setStatus"
    assert slack.calls[-1].params == status


async def test_injected_faults(slack: SlackEmulator, client: AsyncWebClient) -> None:
    slack.inject_fault("chat.postMessage", "ratelimited", retry_after=7)
    with pytest.raises(SlackApiError) as raised:
        await client.chat_postMessage(channel="C0OPS", text="x")
    assert raised.value.response.status_code == 429
    assert raised.value.response.headers["Retry-After"] == "7"
    assert raised.value.response["error"] == "ratelimited"

    slack.inject_fault("chat.update", "error", times=2, status=503, error="service_unavailable")
    for _ in range(2):
        assert await error_of(client.chat_update(channel="C0OPS", ts="1.1", text="x")) == (
            "service_unavailable"
        )
    assert [c.status for c in slack.calls[-2:]] == [503, 503]
    assert await error_of(client.chat_update(channel="C0OPS", ts="1.1", text="x")) == (
        "message_not_found"
    )

    slack.inject_fault("auth.test", "delay", delay=0.2)
    started = asyncio.get_running_loop().time()
    await client.auth_test()
    assert asyncio.get_running_loop().time() - started >= 0.2

    slack.inject_fault("chat.postMessage", "ratelimited", retry_after=0)
    patient = AsyncWebClient(
        token=slack.bot_token,
        base_url=slack.api_url,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=2)],
    )
    posted = await patient.chat_postMessage(channel="C0OPS", text="eventually")
    assert posted["ok"] and [m.text for m in slack.messages("C0OPS")] == ["eventually"]
    assert [c.status for c in slack.calls if c.method == "chat.postMessage"] == [429, 429, 200]


async def test_a_fault_is_met_only_by_calls_in_its_scope(
    slack: SlackEmulator, client: AsyncWebClient
) -> None:
    one = (await client.chat_postMessage(channel="C0OPS", text="one"))["ts"]
    two = (await client.chat_postMessage(channel="C0OPS", text="two"))["ts"]
    card = (await client.chat_postMessage(channel="C0OPS", text="card", thread_ts=one))["ts"]
    slack.inject_fault("chat.postMessage", "error", times=2, error="held", thread_ts=one)
    slack.inject_fault("chat.update", "error", error="held", thread_ts=one)
    slack.inject_fault("chat.postMessage", "error", error="elsewhere", channel="C0GENERAL")

    # Another thread's and another channel's calls, and a new top-level post, go through.
    await client.chat_postMessage(channel="C0OPS", text="in two", thread_ts=two)
    await client.chat_update(channel="C0OPS", ts=two, text="two, edited")
    await client.chat_postMessage(channel="C0OPS", text="three")
    assert slack.faults_left("chat.postMessage", thread_ts=one) == 2
    assert slack.faults_left("chat.postMessage") == 3

    # A post in the thread, and an update of a message in it (its thread found by its ts).
    replies = [client.chat_postMessage(channel="C0OPS", text="r", thread_ts=one) for _ in "ab"]
    assert [await error_of(r) for r in replies] == ["held", "held"]
    assert await error_of(client.chat_update(channel="C0OPS", ts=card, text="x")) == "held"
    await client.chat_postMessage(channel="C0OPS", text="r", thread_ts=one)
    assert slack.faults_left("chat.postMessage", thread_ts=one) == 0
    assert await error_of(client.chat_postMessage(channel="C0GENERAL", text="x")) == "elsewhere"
    assert slack.faults_left("chat.postMessage") == 0


# --- Socket Mode with a real Bolt app ---


def approval_app(client: AsyncWebClient, seen: list[dict[str, Any]]) -> AsyncApp:
    app = AsyncApp(client=client, process_before_response=True)

    @app.command("/ask")
    async def ask(ack: Any, command: dict[str, Any], say: Any) -> None:
        await ack("Asking the agent…")
        seen.append(command)
        await say(text=f"<@{command['user_id']}> asked: {command['text']}", blocks=APPROVAL_BLOCKS)

    @app.event("app_mention")
    async def mention(event: dict[str, Any], say: Any) -> None:
        seen.append(event)
        await say(text="on it", thread_ts=event.get("thread_ts") or event["ts"])

    @app.event("message")
    async def direct(event: dict[str, Any]) -> None:
        seen.append(event)

    @app.action("approve")
    async def approve(ack: Any, body: dict[str, Any], respond: Any) -> None:
        await ack()
        seen.append(body)
        await respond(text=f"Approved by <@{body['user']['id']}>", replace_original=True)

    @app.action("deny")
    async def deny(ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        seen.append(body)
        await client.views_open(
            trigger_id=body["trigger_id"],
            view={
                "type": "modal",
                "callback_id": "deny_reason",
                "notify_on_close": True,
                "private_metadata": body["actions"][0]["value"],
                "title": {"type": "plain_text", "text": "Deny"},
                "submit": {"type": "plain_text", "text": "Deny"},
                "blocks": [
                    {
                        "type": "input",
                        "block_id": "reason",
                        "label": {"type": "plain_text", "text": "Why?"},
                        "element": {"type": "plain_text_input", "action_id": "text"},
                    }
                ],
            },
        )

    @app.view("deny_reason")
    async def deny_reason(ack: Any, view: dict[str, Any]) -> None:
        reason = view["state"]["values"]["reason"]["text"]["value"]
        if not reason:
            await ack(response_action="errors", errors={"reason": "Say why"})
            return
        await ack()
        seen.append(view)

    @app.view_closed("deny_reason")
    async def closed(ack: Any, view: dict[str, Any]) -> None:
        await ack()
        seen.append(view)

    return app


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


async def test_wait_for_timeout_is_explained(slack: SlackEmulator) -> None:
    def never() -> bool:
        return False

    with pytest.raises(TimeoutError, match=r"wait_for\(.*never\) was still false after 0.1 s"):
        await slack.wait_for(never, timeout=0.1)


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


# --- sandbox endpoints ---


async def test_sandbox_endpoints(slack: SlackEmulator, client: AsyncWebClient) -> None:
    async def call(method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with http.request(method, slack.base_url + path, json=body) as response:
            return response.status, await response.json()

    seen: list[dict[str, Any]] = []
    async with (
        aiohttp.ClientSession() as http,
        socket_mode(slack, approval_app(client, seen)),
    ):
        say = {"user": "U0ALICE", "channel": "C0OPS", "text": "/ask scale down cl-001 to 2"}
        status, asked = await call("POST", "sandbox/say", say)
        assert status == 200 and asked["ok"] and asked["delivery"]["acked"]
        assert seen[-1]["text"] == "scale down cl-001 to 2"

        status, listing = await call("GET", "sandbox/messages?channel=C0OPS")
        assert status == 200
        root = listing["messages"][0]
        assert root["bot"] and [b["action_id"] for b in root["buttons"]] == ["approve", "deny"]
        assert listing["ephemerals"][0]["text"] == "Asking the agent…"

        chat = {"user": "U0BOB", "channel": "C0OPS", "text": "<@U0BOT> hi", "thread_ts": root["ts"]}
        status, said = await call("POST", "sandbox/say", chat)
        assert status == 200 and slack.message("C0OPS", said["ts"]).thread_ts == root["ts"]

        click = {"user": "U0BOB", "channel": "C0OPS", "ts": root["ts"], "action_id": "approve"}
        status, clicked = await call("POST", "sandbox/click", click)
        assert status == 200 and clicked["delivery"]["status"] == 200

        for bad in (
            {"channel": "C0OPS", "text": "hi"},
            {"user": "U0ALICE", "channel": "C0NOPE", "text": "hi"},
            ["not", "an", "object"],
        ):
            status, error = await call("POST", "sandbox/say", bad)
            assert status == 400 and error["ok"] is False and error["error"]
        status, error = await call("POST", "sandbox/click", click)  # the buttons are gone now
        assert status == 400 and "no button approve" in error["error"]
        status, error = await call("GET", "sandbox/messages?channel=C0NOPE")
        assert status == 400 and "unknown channel" in error["error"]
