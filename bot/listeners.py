"""Bolt listeners. Each one acks at once and hands the work to the runner (invariant I1).

Nothing here awaits the model, a tool, the database or a Slack call before the ack:
parsing is in memory, and everything else happens in a background task.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.errors import SlackApiError

from bot import blocks
from bot.conversation import Conversation
from bot.decisions import Choice, Decisions
from bot.runner import Runner

log = logging.getLogger(__name__)

ASK_USAGE = "Usage: `/ask <what you want done>`, e.g. `/ask scale down cl-001 to 2`"


def register(app: AsyncApp, runner: Runner, decisions: Decisions, bot_user_id: str) -> None:
    mention_token = re.compile(rf"<@{re.escape(bot_user_id)}(\|[^>]*)?>")

    @app.command("/ask")
    async def ask(ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond) -> None:
        text = str(command.get("text") or "").strip()
        if not text:
            await ack(ASK_USAGE)
            return
        await ack()
        runner.spawn(_ask(runner, command, text, respond), what="/ask")

    async def incoming(event: dict[str, Any], team_id: str | None) -> None:
        channel, ts, user = event.get("channel"), event.get("ts"), event.get("user")
        if not (isinstance(channel, str) and isinstance(ts, str) and isinstance(user, str)):
            log.warning("ignoring a message event without channel, ts or user")
            return
        team = str(team_id or event.get("team") or "")
        # Slack may deliver one message as both app_mention and message.im, and retries it.
        if not await runner.store.first_sighting(f"msg:{team}:{channel}:{ts}"):
            return
        text = mention_token.sub("", str(event.get("text") or "")).strip()
        conv = Conversation(team, channel, str(event.get("thread_ts") or ts))
        if not text:
            await runner.say(conv, blocks.escape("Tell me what to do, e.g. `list clusters`."))
            return
        await runner.on_message(conv, user, text)

    @app.event("app_mention")
    async def on_mention(event: dict[str, Any], context: dict[str, Any]) -> None:
        runner.spawn(incoming(event, context.get("team_id")), what="app_mention")

    @app.event("message")
    async def on_message(event: dict[str, Any], context: dict[str, Any]) -> None:
        if event.get("channel_type") != "im" or event.get("subtype") or event.get("bot_id"):
            return
        runner.spawn(incoming(event, context.get("team_id")), what="message.im")

    async def click(ack: AsyncAck, body: dict[str, Any], choice: Choice) -> None:
        await ack()
        parsed = _click_of(body)
        if parsed is None:
            log.warning("ignoring a malformed %s click", choice)
            return
        approval_id, user, channel, message_ts = parsed
        runner.spawn(
            decisions.decide(
                approval_id=approval_id,
                choice=choice,
                user=user,
                channel=channel,
                message_ts=message_ts,
            ),
            what=f"{choice} {approval_id}",
        )

    @app.action(blocks.APPROVE_ACTION)
    async def approve(ack: AsyncAck, body: dict[str, Any]) -> None:
        await click(ack, body, "approve")

    @app.action(blocks.DENY_ACTION)
    async def deny(ack: AsyncAck, body: dict[str, Any]) -> None:
        await click(ack, body, "reject")

    @app.error
    async def on_error(error: Exception, body: dict[str, Any]) -> None:
        log.error("unhandled error in a listener (%s): %s", body.get("type"), error)


def _click_of(body: dict[str, Any]) -> tuple[str, str, str, str] | None:
    """(approval id, user, channel, message ts) from a block_actions payload, or None."""
    try:
        actions = body["actions"]
        value, user = actions[0]["value"], body["user"]["id"]
        channel = body["channel"]["id"] if body.get("channel") else body["container"]["channel_id"]
        message_ts = body["container"]["message_ts"]
    except (KeyError, IndexError, TypeError):
        return None
    parts = (value, user, channel, message_ts)
    return parts if all(isinstance(p, str) and p for p in parts) else None


async def _ask(runner: Runner, command: dict[str, Any], text: str, respond: AsyncRespond) -> None:
    channel, user = str(command.get("channel_id")), str(command.get("user_id"))
    try:
        root = await runner.client.chat_postMessage(
            channel=channel, text=f"{blocks.mention(user)} asked: {blocks.escape(text)}"
        )
    except SlackApiError as exc:
        error = exc.response.get("error")
        log.warning("cannot start a thread in %s: %s", channel, error)
        await respond(
            f"I can't post in this channel ({error}). Invite me with `/invite` or DM me.",
            response_type="ephemeral",
        )
        return
    conv = Conversation(str(command.get("team_id")), channel, str(root["ts"]))
    await runner.on_message(conv, user, text)
