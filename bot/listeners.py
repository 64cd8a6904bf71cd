"""Bolt listeners. Each one acks at once and hands the work to the runner (docs/design.md,
"Ack first, within Slack's 3 seconds").

Nothing here awaits the model, a tool, the database or a Slack call before the ack:
parsing is in memory, and everything else happens in a background task.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from langchain_core.tools import BaseTool
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.errors import SlackApiError

from bot import blocks
from bot.conversation import Conversation
from bot.decisions import Choice, Decisions
from bot.edit_form import EditError, edit_modal, parse_edit
from bot.runner import Runner, is_cancel

log = logging.getLogger(__name__)

ASK_USAGE = "Usage: `/ask <what you want done>`, e.g. `/ask scale down cl-001 to 2`"

# What Slack's ids and message timestamps look like. Slack signs what it sends, so a payload
# that breaks these is forged or broken: it is refused, never guessed at.
_SLACK_ID = re.compile(r"[A-Z0-9]{2,40}")
_TS = re.compile(r"[0-9]{1,12}\.[0-9]{1,9}")


def register(
    app: AsyncApp,
    runner: Runner,
    decisions: Decisions,
    bot_user_id: str,
    tools: Mapping[str, BaseTool],
) -> None:
    mention_token = re.compile(rf"<@{re.escape(bot_user_id)}(\|[^>]*)?>")

    @app.command("/ask")
    async def ask(ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond) -> None:
        text = command.get("text") or ""
        team, channel, user = (_id(command.get(k)) for k in ("team_id", "channel_id", "user_id"))
        trigger_id, response_url = command.get("trigger_id"), command.get("response_url")
        if not (
            team
            and channel
            and user
            and isinstance(text, str)
            and isinstance(trigger_id, str)
            and trigger_id
            and isinstance(response_url, str)
            and response_url
        ):
            await ack()
            log.warning("ignoring a malformed /ask command")
            return
        if not text.strip():
            await ack(ASK_USAGE)
            return
        await ack()
        runner.spawn(
            _ask(runner, team, channel, user, text.strip(), trigger_id, respond), what="/ask"
        )

    async def incoming(event: dict[str, Any], team_id: str | None, kind: str) -> None:
        channel, user, ts = _id(event.get("channel")), _id(event.get("user")), _ts(event.get("ts"))
        thread_ts = _ts(event.get("thread_ts") or ts)
        raw_text = event.get("text") or ""
        if not (channel and user and ts and thread_ts and isinstance(raw_text, str)):
            log.warning("ignoring a malformed %s event", kind)
            return
        team = str(team_id or event.get("team") or "")
        # Slack may deliver one message as both app_mention and message.im, and retries it.
        if not await runner.store.first_sighting(f"msg:{team}:{channel}:{ts}"):
            return
        text = mention_token.sub("", raw_text).strip()
        conv = Conversation(team, channel, thread_ts)
        if kind == "message" and not await runner.store.knows(conv.key):
            return  # a `cancel` in some thread the bot never worked in
        if not text:
            await runner.say(conv, blocks.escape("Tell me what to do, e.g. `list clusters`."))
            return
        await runner.on_message(conv, user, text)

    @app.event("app_mention")
    async def on_mention(event: dict[str, Any], context: dict[str, Any]) -> None:
        runner.spawn(incoming(event, context.get("team_id"), "app_mention"), what="app_mention")

    @app.event("message")
    async def on_message(event: dict[str, Any], context: dict[str, Any]) -> None:
        if event.get("subtype") or event.get("bot_id"):
            # Edits, deletions and bots: routine, hence only at debug level.
            log.debug("ignoring a message event that is not a person's")
            return
        if event.get("channel_type") == "im":
            runner.spawn(incoming(event, context.get("team_id"), "message.im"), what="message.im")
            return
        text = event.get("text")
        # In a channel only a plain `cancel` in a thread is ours: the requester withdrawing
        # without an @mention. Mentions arrive as app_mention, everything else is people
        # talking among themselves.
        if event.get("thread_ts") and isinstance(text, str) and is_cancel(text):
            runner.spawn(incoming(event, context.get("team_id"), "message"), what="cancel")
        else:
            log.debug("ignoring a channel message that is not a `cancel` in a thread")

    def decide_later(approval_id: str, choice: Choice, user: str, **details: Any) -> None:
        runner.spawn(
            decisions.decide(approval_id=approval_id, choice=choice, user=user, **details),
            what=f"{choice} {approval_id}",
        )

    async def click(ack: AsyncAck, body: dict[str, Any], choice: Choice) -> None:
        await ack()
        parsed = _click_of(body)
        if parsed is None:
            log.warning("ignoring a malformed %s click", choice)
            return
        approval_id, user, channel, message_ts = parsed
        decide_later(approval_id, choice, user, channel=channel, message_ts=message_ts)

    @app.action(blocks.APPROVE_ACTION)
    async def approve(ack: AsyncAck, body: dict[str, Any]) -> None:
        await click(ack, body, "approve")

    async def open_modal(ack: AsyncAck, body: dict[str, Any], kind: str) -> None:
        await ack()
        parsed = _click_of(body)
        trigger_id = body.get("trigger_id")
        if parsed is None or not isinstance(trigger_id, str):
            log.warning("ignoring a malformed %s click", kind)
            return
        runner.spawn(
            _open_modal(runner, decisions, tools, parsed, trigger_id, kind),
            what=f"{kind} modal {parsed[0]}",
        )

    @app.action(blocks.DENY_ACTION)
    async def deny(ack: AsyncAck, body: dict[str, Any]) -> None:
        await open_modal(ack, body, "deny")

    @app.action(blocks.EDIT_ACTION)
    async def edit(ack: AsyncAck, body: dict[str, Any]) -> None:
        await open_modal(ack, body, "edit")

    async def decide_all(ack: AsyncAck, body: dict[str, Any], choice: Choice) -> None:
        await ack()
        parsed = _click_of(body)
        if parsed is None:
            log.warning("ignoring a malformed %s-all click", choice)
            return
        ids, user, channel, _ = parsed
        message = body.get("message")
        thread_ts = _ts(message.get("thread_ts")) if isinstance(message, dict) else None
        if thread_ts is None:
            log.warning("ignoring a %s-all click outside a thread", choice)
            return
        runner.spawn(
            decisions.decide_all(
                approval_ids=ids.split(",")[: blocks.BATCH_LIMIT],
                choice=choice,
                user=user,
                channel=channel,
                thread_ts=thread_ts,
            ),
            what=f"{choice} all",
        )

    @app.action(blocks.APPROVE_ALL_ACTION)
    async def approve_all(ack: AsyncAck, body: dict[str, Any]) -> None:
        await decide_all(ack, body, "approve")

    @app.action(blocks.DENY_ALL_ACTION)
    async def deny_all(ack: AsyncAck, body: dict[str, Any]) -> None:
        await decide_all(ack, body, "reject")

    @app.view("deny_reason")
    async def deny_submitted(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        await ack()
        user = _submitter(body)
        approval_id = view.get("private_metadata")
        if not (user and isinstance(approval_id, str) and approval_id):
            log.warning("ignoring a malformed deny submission")
            return
        reason = _state_value(view, "reason", "reason")
        decide_later(approval_id, "reject", user, reason=reason.strip() or None if reason else None)

    @app.view("edit_args")
    async def edit_submitted(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        user = _submitter(body)
        approval_id = view.get("private_metadata")
        state = view.get("state")
        values = state.get("values") if isinstance(state, dict) else None
        if not (user and isinstance(approval_id, str) and approval_id and isinstance(values, dict)):
            await ack()
            log.warning("ignoring a malformed edit submission")
            return
        # Validation needs the approval (a local read) so errors can stay in the modal;
        # who may decide is checked after the ack, as for every other decision path.
        approval = await runner.store.get(approval_id)
        if approval is None:
            await ack()
            log.warning("ignoring an edit submission for no approval %r", approval_id[:100])
            return
        try:
            args = parse_edit(approval, tools.get(approval.tool), values)
        except EditError as exc:
            await ack(response_action="errors", errors=exc.errors)
            log.info("edit of %s by %s sent back: %s", approval_id, user, exc)
            return
        await ack()
        decide_later(approval_id, "edit", user, edited_args=args)

    @app.view_closed(re.compile("deny_reason|edit_args"))
    async def modal_closed(ack: AsyncAck) -> None:
        await ack()
        log.debug("a decision modal was closed without a decision")

    @app.error
    async def on_error(error: Exception, body: dict[str, Any]) -> None:
        log.error("unhandled error in a listener (%s): %s", body.get("type"), error, exc_info=error)


def _id(value: object) -> str | None:
    return value if isinstance(value, str) and _SLACK_ID.fullmatch(value) else None


def _ts(value: object) -> str | None:
    return value if isinstance(value, str) and _TS.fullmatch(value) else None


def _submitter(body: dict[str, Any]) -> str | None:
    user = body.get("user")
    return _id(user.get("id")) if isinstance(user, dict) else None


def _click_of(body: dict[str, Any]) -> tuple[str, str, str, str] | None:
    """(approval id, user, channel, message ts) from a block_actions payload, or None."""
    try:
        actions = body["actions"]
        value, user = actions[0]["value"], body["user"]["id"]
        channel = body["channel"]["id"] if body.get("channel") else body["container"]["channel_id"]
        message_ts = body["container"]["message_ts"]
    except (KeyError, IndexError, TypeError):
        return None
    if not (isinstance(value, str) and value and _id(user) and _id(channel) and _ts(message_ts)):
        return None
    return value, user, channel, message_ts


async def _ask(
    runner: Runner,
    team: str,
    channel: str,
    user: str,
    text: str,
    trigger_id: str,
    respond: AsyncRespond,
) -> None:
    # Slack never re-sends a slash command; the same trigger again is a replayed request.
    if not await runner.store.first_sighting(f"trigger:{trigger_id}"):
        log.warning("ignoring a replayed /ask from %s in %s", user, channel)
        return
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
    conv = Conversation(team, channel, str(root["ts"]))
    await runner.on_message(conv, user, text)


def _state_value(view: dict[str, Any], block_id: str, action_id: str) -> str | None:
    try:
        value = view["state"]["values"][block_id][action_id].get("value")
    except (KeyError, TypeError, AttributeError):
        return None
    return value if isinstance(value, str) else None


async def _open_modal(
    runner: Runner,
    decisions: Decisions,
    tools: Mapping[str, BaseTool],
    click: tuple[str, str, str, str],
    trigger_id: str,
    kind: str,
) -> None:
    """Open the Deny or Edit modal; the trigger id lives 3 s, so nothing slow comes first."""
    approval_id, user, channel, message_ts = click
    # A replayed click would find its trigger used or expired, and the fallback below would
    # then deny on the replayer's word: a trigger is honoured once.
    if not await runner.store.first_sighting(f"trigger:{trigger_id}"):
        log.warning("ignoring a replayed %s click on %s by %s", kind, approval_id, user)
        return
    approval = await runner.store.get(approval_id)
    if (
        approval is None
        or approval.channel != channel
        or approval.message_ts != message_ts
        or approval.status != "pending"
    ):
        await decisions.decide(
            approval_id=approval_id,
            choice="reject",
            user=user,
            channel=channel,
            message_ts=message_ts,
        )  # refuses, and says why
        return
    view = (
        blocks.deny_modal(approval)
        if kind == "deny"
        else edit_modal(approval, tools.get(approval.tool))
    )
    try:
        await runner.client.views_open(trigger_id=trigger_id, view=view)
    except SlackApiError as exc:
        log.warning("could not open the %s modal: %s", kind, exc.response.get("error"))
        if kind == "deny":
            # The person asked to deny; failing to ask for a reason must not block that.
            await decisions.decide(
                approval_id=approval_id,
                choice="reject",
                user=user,
                channel=channel,
                message_ts=message_ts,
            )
