"""Helpers shared by the security tests: raw signed HTTP requests, forged payloads, state."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_sdk.signature import SignatureVerifier

from bot.sandbox import payloads
from bot.sandbox.delivery import _encode as encode_delivery
from bot.sandbox.emulator import Message, SlackEmulator, View
from bot.sandbox.records import DeliveryKind
from bot.service import RunningBot
from tests.conftest import Harness
from tests.fakes.openai_server import reply_text, reply_tool_calls

SECRET = "security-test-signing-secret"
FORM = "application/x-www-form-urlencoded"

# scale_down may be edited and only Bob may decide it; delete_cluster is open to anyone.
BOB_ONLY_POLICY = """\
tools:
  list_clusters: {approval: never}
  scale_down: {approvers: [U0BOB], decisions: [approve, reject, edit]}
  delete_cluster: {}
"""


def http_settings() -> dict[str, Any]:
    return {
        "slack_app_token": None,
        "slack_signing_secret": SECRET,
        "host": "127.0.0.1",
        "port": 0,
    }


@dataclass(frozen=True)
class HttpCard:
    """A bot in HTTP mode, and the card it posted for one gated call."""

    bot: RunningBot
    url: str
    thread: str
    card: Message


@asynccontextmanager
async def card_over_http(
    harness: Harness, ask: str, call: tuple[str, dict[str, Any]], answer: str
) -> AsyncIterator[HttpCard]:
    """`ask` in #ops makes the model `call` a gated tool (and then say `answer`); yields once
    its card is posted, with Slack delivering signed requests to the bot."""
    harness.model.script(reply_tool_calls(call), reply_text(answer))
    async with harness.bot(**http_settings()) as bot:
        url = events_url(bot)
        harness.slack.use_http(url, SECRET)
        thread = await harness.ask(ask)
        [card] = await harness.wait_cards("C0OPS", thread)
        yield HttpCard(bot, url, thread, card)


def events_url(bot: RunningBot) -> str:
    return f"http://127.0.0.1:{bot.http_port}/slack/events"


def signed_headers(
    body: bytes | str,
    *,
    content_type: str = FORM,
    timestamp: int | None = None,
    secret: str = SECRET,
) -> dict[str, str]:
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=stamp, body=body)
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": signature or "",
    }


async def post(url: str, body: bytes | str, headers: Mapping[str, str]) -> tuple[int, str]:
    data = body.encode() if isinstance(body, str) else body
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=data, headers=dict(headers)) as response,
    ):
        return response.status, await response.text()


def form_body(kind: DeliveryKind, payload: dict[str, Any]) -> tuple[str, str]:
    """(body, content type) exactly as the emulator, like Slack, posts each kind."""
    return encode_delivery(kind, payload)


def signed_interaction(payload: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """An interactivity payload as Slack posts it over HTTP: the body and valid headers."""
    body, content_type = form_body("interactive", payload)
    return body, signed_headers(body, content_type=content_type)


def click_payload(
    slack: SlackEmulator,
    user: str,
    message: Message,
    action_id: str,
    *,
    value: str | None = None,
) -> dict[str, Any]:
    """A block_actions payload for a button of `message`, as Slack would send it; `value`
    forges the button's value (an approval id copied from elsewhere)."""
    ws = slack.workspace
    button = next(b for b in message.buttons() if b.action_id == action_id)
    if value is not None:
        button = type(button)(button.action_id, value, button.text, button.style, button.block_id)
    return payloads.block_actions(
        ws,
        user=user,
        message=message,
        button=button,
        response_url=slack.base_url + "response/unused",
        trigger_id=ws.new_trigger(user),
    )


def submission_payload(
    slack: SlackEmulator, user: str, view: View, values: dict[str, Any]
) -> dict[str, Any]:
    """A view_submission of `view` as sent for `user`, whoever the modal was opened for."""
    ws = slack.workspace
    return payloads.view_submission(
        ws, user=user, view=view, values=values, trigger_id=ws.new_trigger(user)
    )


def deny_values(reason: str | None = None) -> dict[str, Any]:
    return {"reason": {"reason": {"type": "plain_text_input", "value": reason}}}


def edit_values(cluster_id: str, replicas: str) -> dict[str, Any]:
    text = {"type": "plain_text_input"}
    return {
        "arg:cluster_id": {"value": {**text, "value": cluster_id}},
        "arg:replicas": {"value": {**text, "value": replicas}},
    }


async def open_view(harness: Harness, user: str, card_ts: str, action_id: str) -> View:
    opened = len(harness.slack.views)
    await harness.slack.click(user, "C0OPS", card_ts, action_id)
    return await harness.slack.wait_for(
        lambda: len(harness.slack.views) > opened and harness.slack.views[-1]
    )


async def approvals(bot: RunningBot) -> list[dict[str, Any]]:
    return await bot.store.db.fetchall("SELECT * FROM approvals ORDER BY id")


async def audit_events(bot: RunningBot) -> list[tuple[str, str | None]]:
    return [(r.event, r.actor) for r in await bot.store.audit_log()]


def ephemerals_for(harness: Harness, user: str) -> list[str]:
    return [e.text for e in harness.slack.ephemerals if e.user == user]


async def ask_escaped(harness: Harness, text: str) -> str:
    """`/ask` with text that the root message shows escaped (Harness.ask looks for it raw)."""
    before = {m.ts for m in harness.slack.messages("C0OPS")}
    await harness.slack.slash_command("U0ALICE", "C0OPS", "/ask", text)
    root = await harness.slack.wait_for(
        lambda: next(
            (
                m
                for m in harness.slack.messages("C0OPS")
                if m.ts not in before and m.bot_id and "asked:" in m.text
            ),
            None,
        )
    )
    return root.ts
