"""The emulator against the real slack-sdk and slack-bolt clients, over loopback."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot.sandbox.emulator import SlackEmulator
from tests.support.bolt_app import APPROVAL_BLOCKS, approval_app, error_of
from tests.support.socket_mode import socket_mode

TS = re.compile(r"^\d{10}\.\d{6}$")


@pytest.fixture
def slack(mentions_and_dms: SlackEmulator) -> SlackEmulator:
    return mentions_and_dms


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


async def test_wait_for_timeout_is_explained(slack: SlackEmulator) -> None:
    def never() -> bool:
        return False

    with pytest.raises(TimeoutError, match=r"wait_for\(.*never\) was still false after 0.1 s"):
        await slack.wait_for(never, timeout=0.1)


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
