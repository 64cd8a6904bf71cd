"""The sandbox page's server side: files, snapshots, the event stream and the endpoints the page
posts to, driven over HTTP with a Bolt app on the other end, no browser."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.sandbox.emulator import SlackEmulator
from tests.support.bolt_app import FORM_MESSAGE, form_app, option
from tests.support.socket_mode import socket_mode


@pytest.fixture
def slack(mentions_and_dms: SlackEmulator) -> SlackEmulator:
    return mentions_and_dms


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


class Page:
    """What the page's script does over HTTP."""

    def __init__(self, slack: SlackEmulator, http: aiohttp.ClientSession, user: str) -> None:
        self.slack, self.http, self.user = slack, http, user

    async def post(self, path: str, body: Any, status: int = 200) -> dict[str, Any]:
        if isinstance(body, dict):
            body = {"user": self.user, **body}
        async with self.http.post(f"{self.slack.base_url}sandbox/ui/{path}", json=body) as answer:
            data = await answer.json()
        assert answer.status == status, data
        assert data["ok"] is (status == 200)
        return dict(data)

    async def state(self, user: str | None = None) -> dict[str, Any]:
        url = f"{self.slack.base_url}sandbox/ui/state?user={user or self.user}"
        async with self.http.get(url) as answer:
            return dict(await answer.json())


async def next_state(stream: aiohttp.ClientResponse) -> dict[str, Any]:
    data: dict[str, Any] | None = None
    async with asyncio.timeout(5):
        async for raw in stream.content:
            line = raw.decode().rstrip("\r\n")
            if line.startswith("data: "):
                data = json.loads(line.removeprefix("data: "))
            elif not line and data is not None:
                return data
    raise AssertionError("the event stream ended")


async def test_page_and_its_files(slack: SlackEmulator, http: aiohttp.ClientSession) -> None:
    async with http.get(slack.base_url) as page:
        html = await page.text()
        assert page.status == 200 and page.content_type == "text/html"
    assert '<script src="/static/app.js"' in html and "/static/style.css" in html
    for name, kind in (("app.js", "javascript"), ("style.css", "text/css")):
        async with http.get(f"{slack.base_url}static/{name}") as served:
            assert served.status == 200 and kind in served.content_type
            assert served.headers["Cache-Control"] == "no-cache"
    for missing in ("static/nope.js", "static/..%2Fweb.py", "static/%2E%2E%2Fstate.py"):
        async with http.get(slack.base_url + missing) as answer:
            assert answer.status == 404, missing


async def test_a_snapshot_is_what_one_user_sees(
    slack: SlackEmulator, client: AsyncWebClient, http: aiohttp.ClientSession
) -> None:
    slack.sandbox_info = {"model": "the offline rule-based model"}
    root = await client.chat_postMessage(channel="C0OPS", text="*card*", blocks=FORM_MESSAGE)
    await client.chat_postMessage(channel="C0OPS", text="in the thread", thread_ts=root["ts"])
    await client.chat_postMessage(channel="U0ALICE", text="for alice")
    await client.chat_postMessage(channel="U0BOB", text="for bob")
    await client.chat_postEphemeral(channel="C0OPS", user="U0CAROL", text="only carol")
    await client.chat_update(channel="C0OPS", ts=root["ts"], text="updated")

    alice = await Page(slack, http, "U0ALICE").state()
    assert alice["me"] == "U0ALICE" and alice["info"] == {"model": "the offline rule-based model"}
    assert alice["bot"] == {"id": "U0BOT", "name": "approvals"}
    assert [(c["id"], c["name"], c["is_im"]) for c in alice["channels"]] == [
        ("C0OPS", "ops", False),
        ("C0GENERAL", "general", False),
        ("D0ALICE", "approvals", True),
    ]
    assert {u["name"]: u["role"] for u in alice["users"]} == {
        "alice": "asks; not on call",
        "bob": "on call: approves, @sreoncall",
        "carol": "not on call: refused",
        "dave": "on call: approves, @sreoncall",
    }
    assert alice["usergroups"] == {
        "S0SREONCALL": {"handle": "sreoncall", "members": ["U0BOB", "U0DAVE"]}
    }
    card, reply = alice["messages"]["C0OPS"]
    assert card["bot"] and card["user"] == "U0BOT" and card["edited"] and card["text"] == "updated"
    assert card["blocks"][1]["elements"][0]["action_id"] == "open_form"
    assert reply["thread_ts"] == card["ts"] and reply["reactions"] == []
    assert [m["text"] for m in alice["messages"]["D0ALICE"]] == ["for alice"]
    assert "D0BOB" not in alice["messages"] and alice["ephemerals"] == []
    assert alice["view"] is None

    carol = await Page(slack, http, "U0CAROL").state()
    assert [(e["channel"], e["text"], e["thread_ts"]) for e in carol["ephemerals"]] == [
        ("C0OPS", "only carol", None)
    ]
    # A page that remembers a user this workspace does not have is shown the first user.
    assert (await Page(slack, http, "U0GONE").state())["me"] == "U0ALICE"


async def test_the_event_stream_pushes_every_change(
    slack: SlackEmulator, client: AsyncWebClient, http: aiohttp.ClientSession
) -> None:
    alice = Page(slack, http, "U0ALICE")
    url = f"{slack.base_url}sandbox/ui/events?user=U0ALICE"
    async with http.get(url) as stream:
        assert stream.content_type == "text/event-stream"
        first = await next_state(stream)
        assert first["me"] == "U0ALICE" and first["messages"]["C0OPS"] == []

        # A plain channel message is delivered to no app, so this needs no app running.
        said = await alice.post("say", {"channel": "C0OPS", "text": "morning all"})
        pushed = await next_state(stream)
        assert [(m["ts"], m["text"]) for m in pushed["messages"]["C0OPS"]] == [
            (said["ts"], "morning all")
        ]
        posted = await client.chat_postMessage(channel="C0OPS", text="on it")
        await client.reactions_add(channel="C0OPS", timestamp=posted["ts"], name="eyes")
        latest = await next_state(stream)
        while not latest["messages"]["C0OPS"][-1]["reactions"]:
            latest = await next_state(stream)
        assert latest["messages"]["C0OPS"][-1]["reactions"] == [
            {"name": "eyes", "count": 1, "mine": False}
        ]

        # Stopping the emulator ends open streams at once instead of stalling the shutdown.
        async with asyncio.timeout(1.5):
            await slack.stop()
        with pytest.raises(AssertionError, match="ended"):
            await next_state(stream)


async def test_say_delivers_what_slack_would(
    slack: SlackEmulator, client: AsyncWebClient, http: aiohttp.ClientSession
) -> None:
    seen: list[dict[str, Any]] = []
    bob = Page(slack, http, "U0BOB")
    async with socket_mode(slack, form_app(client, seen)):
        typed = "@bot can @alice & @Dave check #ops <now>? mail a@b.io @nobody @U0CAROL"
        said = await bob.post("say", {"channel": "C0GENERAL", "text": typed})
        mention = await slack.wait_for(lambda: seen and seen[-1])
        assert mention["type"] == "app_mention" and mention["ts"] == said["ts"]
        assert mention["text"] == (
            "<@U0BOT> can <@U0ALICE> &amp; <@U0DAVE> check <#C0OPS|ops> &lt;now&gt;? "
            "mail a@b.io @nobody <@U0CAROL>"
        )

        said = await bob.post(
            "say", {"channel": "C0GENERAL", "text": "and @approvals?", "thread_ts": said["ts"]}
        )
        await slack.wait_for(lambda: len(seen) == 2)
        assert seen[-1]["thread_ts"] == mention["ts"] and seen[-1]["text"] == "and <@U0BOT>?"

        await bob.post("say", {"channel": "D0BOB", "text": "hello there"})
        await slack.wait_for(lambda: len(seen) == 3)
        assert (seen[-1]["type"], seen[-1]["channel_type"]) == ("message", "im")

        asked = await bob.post("say", {"channel": "C0OPS", "text": " /ask scale down @bob "})
        assert asked["delivery"]["acked"] and asked["delivery"]["status"] == 200
        command = seen[-1]
        # Slash commands arrive as typed: the manifest's /ask does not escape.
        assert (command["command"], command["text"], command["user_id"]) == (
            "/ask",
            "scale down @bob",
            "U0BOB",
        )

    for bad in (
        {"channel": "C0OPS"},
        {"channel": "C0NOPE", "text": "hi"},
        {"channel": "D0ALICE", "text": "not my DM"},
    ):
        await bob.post("say", bad, status=400)
    await bob.post("say", ["not", "an", "object"], status=400)


async def test_clicks_and_modals(
    slack: SlackEmulator, client: AsyncWebClient, http: aiohttp.ClientSession
) -> None:
    seen: list[dict[str, Any]] = []
    alice = Page(slack, http, "U0ALICE")
    card = await client.chat_postMessage(channel="C0OPS", text="form", blocks=FORM_MESSAGE)
    async with socket_mode(slack, form_app(client, seen)):
        click = {"channel": "C0OPS", "ts": card["ts"], "action_id": "open_form", "value": "form-1"}
        clicked = await alice.post("click", click)
        assert clicked["delivery"]["acked"] and seen[-1]["type"] == "block_actions"
        await slack.wait_for(lambda: slack.views)
        view = (await alice.state())["view"]
        assert view["view"]["title"]["text"] == "Request access"
        assert view["view"]["private_metadata"] == "form-1"
        assert (await alice.state("U0BOB"))["view"] is None  # a modal is its user's alone

        values: dict[str, Any] = {
            "title": {"title_input": {"type": "plain_text_input", "value": "x"}},
            "notes": {"notes_input": {"type": "plain_text_input", "value": None}},
            "size": {"size_select": {"type": "static_select", "selected_option": None}},
        }
        refused = await alice.post("submit", {"view_id": view["id"], "values": values})
        assert refused["errors"] == {"title": "Too short"}
        assert (await alice.state())["view"]["id"] == view["id"]  # still open, showing errors

        values["title"]["title_input"]["value"] = "Read access"
        values["size"]["size_select"]["selected_option"] = option("large")
        accepted = await alice.post("submit", {"view_id": view["id"], "values": values})
        assert accepted["errors"] is None and accepted["delivery"]["status"] == 200
        assert seen[-1]["view"]["state"]["values"] == values
        assert (await alice.state())["view"] is None

        await alice.post("click", click)
        again = await slack.wait_for(lambda: slack.views[-1].is_open and slack.views[-1])
        closed = await alice.post("close", {"view_id": again.id})
        assert closed["delivery"]["acked"] and seen[-1]["type"] == "view_closed"

        # Without notify_on_close, Slack closes the modal and tells the app nothing.
        await alice.post("click", {**click, "action_id": "open_quiet_form", "value": None})
        quiet = await slack.wait_for(lambda: slack.views[-1].is_open and slack.views[-1])
        deliveries = len(slack.deliveries)
        silent = await alice.post("close", {"view_id": quiet.id})
        assert silent["delivery"] is None and len(slack.deliveries) == deliveries
        assert (await alice.state())["view"] is None

        await alice.post("submit", {"view_id": again.id, "values": values}, status=400)
        await alice.post("submit", {"view_id": "V0NOPE", "values": values}, status=400)
        await alice.post("submit", {"view_id": again.id, "values": {"a": "b"}}, status=400)
        missing = {**click, "action_id": "nope"}
        assert "no button nope" in (await alice.post("click", missing, status=400))["error"]


async def test_reactions_people_add(
    slack: SlackEmulator, client: AsyncWebClient, http: aiohttp.ClientSession
) -> None:
    alice, bob = Page(slack, http, "U0ALICE"), Page(slack, http, "U0BOB")
    ts = (await client.chat_postMessage(channel="C0OPS", text="working"))["ts"]
    await client.reactions_add(channel="C0OPS", timestamp=ts, name="hourglass_flowing_sand")

    where = {"channel": "C0OPS", "ts": ts}
    shown = await alice.post("react", {**where, "name": ":hourglass_flowing_sand:"})
    assert shown["reactions"] == [{"name": "hourglass_flowing_sand", "count": 2, "mine": True}]
    shown = await bob.post("react", {**where, "name": "+1"})
    assert shown["reactions"] == [
        {"name": "hourglass_flowing_sand", "count": 2, "mine": False},
        {"name": "+1", "count": 1, "mine": True},
    ]
    # People's reactions are the page's own: the app's reactions.add/remove are unaffected.
    await client.reactions_remove(channel="C0OPS", timestamp=ts, name="hourglass_flowing_sand")
    shown = await alice.post("react", {**where, "name": "hourglass_flowing_sand"})  # toggles off
    assert shown["reactions"] == [{"name": "+1", "count": 1, "mine": False}]
    message = (await alice.state())["messages"]["C0OPS"][0]
    assert message["reactions"] == shown["reactions"]

    await alice.post("react", {**where, "name": "<img>"}, status=400)
    await alice.post("react", {"channel": "C0OPS", "ts": "1.000001", "name": "x"}, status=400)
    dm = (await client.chat_postMessage(channel="U0BOB", text="hi"))["ts"]
    await alice.post("react", {"channel": "D0BOB", "ts": dm, "name": "x"}, status=400)
