"""Bolt listeners. Each one acks at once and hands the work to the runner (docs/design.md,
"Acks first").

Nothing here awaits the model, a tool, the database or a Slack call before the ack:
parsing is in memory (`bot.interactions`), and everything else happens in a background task.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any, Literal

from langchain_core.tools import BaseTool
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.errors import SlackApiError

from bot import blocks
from bot.conversation import MAIN_VIEW, Conversation
from bot.decisions import Choice, Decisions
from bot.edit_form import EditError, edit_modal, parse_edit
from bot.help import ask_help, wants_help
from bot.home import HOME_APPROVE_ACTION, HOME_DENY_ACTION
from bot.interactions import Click, HomeClick, SlashCommand, Submission, UserMessage, slack_id
from bot.runner import Runner, is_cancel

log = logging.getLogger(__name__)

Modal = Literal["deny", "edit"]


def register(
    app: AsyncApp,
    runner: Runner,
    decisions: Decisions,
    bot_user_id: str,
    tools: Mapping[str, BaseTool],
) -> None:
    mention_token = re.compile(rf"<@{re.escape(bot_user_id)}(\|[^>]*)?>")
    # Built once: the policy is fixed for the life of the process, and the ack must be quick.
    help_text, help_blocks = ask_help(runner.policy, tools)

    @app.command("/ask")
    async def ask(ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond) -> None:
        parsed = SlashCommand.parse(command)
        if parsed is None:
            await ack()
            log.warning("ignoring a malformed /ask command")
            return
        if wants_help(parsed.text):
            await ack(text=help_text, blocks=help_blocks)
            return
        await ack()
        runner.spawn(_ask(runner, parsed, respond), what="/ask")

    async def incoming(event: dict[str, Any], team_id: str | None, kind: str) -> None:
        message = UserMessage.parse(event, team_id)
        if message is None:
            log.warning("ignoring a malformed %s event", kind)
            return
        team, channel, user = message.team, message.channel, message.user
        # Slack may deliver one message as both app_mention and message.im, and retries it.
        if not await runner.store.first_sighting(f"msg:{team}:{channel}:{message.ts}"):
            return
        text = mention_token.sub("", message.text).strip()
        # By channel id, not event kind: a mention in a DM also comes as app_mention.
        in_main_view = _is_dm(channel) and not event.get("thread_ts")
        # ... and is answered where the person writes, not in a thread.
        conv = Conversation(team, channel, MAIN_VIEW if in_main_view else message.thread_ts)
        if kind == "message" and not await runner.store.knows(conv.key):
            return  # a `cancel` in some thread the bot never worked in
        if wants_help(text):
            await runner.say(conv, help_text)
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
        parsed = Click.parse(body)
        if parsed is None:
            log.warning("ignoring a malformed %s click", choice)
            return
        decide_later(
            parsed.value,
            choice,
            parsed.user,
            channel=parsed.channel,
            message_ts=parsed.message_ts,
        )

    @app.action(blocks.APPROVE_ACTION)
    async def approve(ack: AsyncAck, body: dict[str, Any]) -> None:
        await click(ack, body, "approve")

    async def open_modal(ack: AsyncAck, body: dict[str, Any], kind: Modal) -> None:
        await ack()
        parsed = Click.parse(body)
        if parsed is None or parsed.trigger_id is None:
            log.warning("ignoring a malformed %s click", kind)
            return
        runner.spawn(
            _open_modal(runner, decisions, tools, parsed, parsed.trigger_id, kind),
            what=f"{kind} modal {parsed.value}",
        )

    @app.action(blocks.DENY_ACTION)
    async def deny(ack: AsyncAck, body: dict[str, Any]) -> None:
        await open_modal(ack, body, "deny")

    @app.action(blocks.EDIT_ACTION)
    async def edit(ack: AsyncAck, body: dict[str, Any]) -> None:
        await open_modal(ack, body, "edit")

    @app.action(blocks.SHOW_ARGS_ACTION)
    async def show_args(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        parsed = Click.parse(body)
        if parsed is None or parsed.trigger_id is None:
            log.warning("ignoring a malformed show-arguments click")
            return
        runner.spawn(
            _show_args(runner, parsed, parsed.trigger_id), what=f"arguments of {parsed.value}"
        )

    async def decide_all(ack: AsyncAck, body: dict[str, Any], choice: Choice) -> None:
        await ack()
        parsed = Click.parse(body)
        if parsed is None:
            log.warning("ignoring a malformed %s-all click", choice)
            return
        thread_ts = parsed.thread_ts
        if thread_ts is None and isinstance(body.get("message"), dict) and _is_dm(parsed.channel):
            thread_ts = MAIN_VIEW
        if thread_ts is None:
            log.warning("ignoring a %s-all click outside a thread", choice)
            return
        runner.spawn(
            decisions.decide_all(
                approval_ids=parsed.value.split(",")[: blocks.BATCH_LIMIT],
                choice=choice,
                user=parsed.user,
                channel=parsed.channel,
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
        parsed = Submission.parse(body, view)
        if parsed is None:
            log.warning("ignoring a malformed deny submission")
            return
        reason = (parsed.text("reason", "reason") or "").strip() or None
        decide_later(parsed.approval_id, "reject", parsed.user, reason=reason)

    @app.view("edit_args")
    async def edit_submitted(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        parsed = Submission.parse(body, view)
        if parsed is None:
            await ack()
            log.warning("ignoring a malformed edit submission")
            return
        user, approval_id, values = parsed.user, parsed.approval_id, dict(parsed.values)
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

    @app.view_closed(re.compile("deny_reason|edit_args|show_args"))
    async def modal_closed(ack: AsyncAck) -> None:
        await ack()
        log.debug("a decision modal was closed without a decision")

    @app.event("app_home_opened")
    async def home_opened(event: dict[str, Any]) -> None:
        user = slack_id(event.get("user"))
        if event.get("tab") != "home" or user is None:
            log.debug("ignoring an app_home_opened event for another tab")
            return
        runner.spawn(runner.cards.home.opened(user), what="home tab")

    async def decide_from_home(approval_id: str, choice: Choice, user: str) -> None:
        approval = await runner.store.get(approval_id)
        refusal = runner.cards.home.refusal(approval) if approval else None
        if approval is not None and refusal is not None:
            await decisions.refuse(approval, user, refusal)
        else:
            await decisions.decide(approval_id=approval_id, choice=choice, user=user)
        await runner.cards.home.publish(user)  # what is left for them, with this one gone

    @app.action(HOME_APPROVE_ACTION)
    async def home_approve(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        parsed = HomeClick.parse(body)
        if parsed is None:
            log.warning("ignoring a malformed Home tab click")
            return
        runner.spawn(
            decide_from_home(parsed.value, "approve", parsed.user), what=f"approve {parsed.value}"
        )

    @app.action(HOME_DENY_ACTION)
    async def home_deny(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        parsed = HomeClick.parse(body)
        if parsed is None:
            log.warning("ignoring a malformed Home tab click")
            return
        runner.spawn(_deny_from_home(runner, decisions, parsed), what=f"deny {parsed.value}")

    @app.error
    async def on_error(error: Exception, body: dict[str, Any]) -> None:
        log.error("unhandled error in a listener (%s): %s", body.get("type"), error, exc_info=error)


def _is_dm(channel: str) -> bool:
    return channel.startswith("D")


async def _ask(runner: Runner, command: SlashCommand, respond: AsyncRespond) -> None:
    team, channel, user, text = command.team, command.channel, command.user, command.text
    # Slack never re-sends a slash command; the same trigger again is a replayed request.
    if not await runner.store.first_sighting(f"trigger:{command.trigger_id}"):
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
    # In a DM the answer stays in the main view, under the "asked" line, as a chat does.
    conv = Conversation(team, channel, MAIN_VIEW if _is_dm(channel) else str(root["ts"]))
    await runner.on_message(conv, user, text)


async def _deny_from_home(runner: Runner, decisions: Decisions, click: HomeClick) -> None:
    """Deny asks for a reason, as on a card; what cannot be denied is refused by the decision
    path, which says why."""
    if not await runner.store.first_sighting(f"trigger:{click.trigger_id}"):
        log.warning("ignoring a replayed Home tab deny of %s by %s", click.value, click.user)
        return
    approval = await runner.store.get(click.value)
    refusal = runner.cards.home.refusal(approval) if approval else None
    if approval is not None and refusal is not None:
        await decisions.refuse(approval, click.user, refusal)
        return
    if approval is not None and approval.status == "pending":
        try:
            await runner.client.views_open(
                trigger_id=click.trigger_id, view=blocks.deny_modal(approval)
            )
            return
        except SlackApiError as exc:
            log.warning("could not open the deny modal: %s", exc.response.get("error"))
    await decisions.decide(approval_id=click.value, choice="reject", user=click.user)
    await runner.cards.home.publish(click.user)


async def _show_args(runner: Runner, click: Click, trigger_id: str) -> None:
    """Everything the card could not show; only to someone who sees the card it belongs to
    (in its thread, or a copy of it)."""
    approval = await runner.store.get(click.value)
    if approval is None or not await runner.cards.routing.belongs(
        approval, click.channel, click.message_ts
    ):
        log.warning("refused to show the arguments of %r to %s", click.value[:100], click.user)
        return
    try:
        await runner.client.views_open(trigger_id=trigger_id, view=blocks.args_modal(approval))
    except SlackApiError as exc:
        log.warning(
            "could not show the arguments of %s: %s", click.value, exc.response.get("error")
        )


async def _open_modal(
    runner: Runner,
    decisions: Decisions,
    tools: Mapping[str, BaseTool],
    click: Click,
    trigger_id: str,
    kind: Modal,
) -> None:
    """Open the Deny or Edit modal; the trigger id lives 3 s, so nothing slow comes first."""
    approval_id, user, channel, message_ts = (
        click.value,
        click.user,
        click.channel,
        click.message_ts,
    )
    # A replayed click would find its trigger used or expired, and the fallback below would
    # then deny on the replayer's word: a trigger is honoured once.
    if not await runner.store.first_sighting(f"trigger:{trigger_id}"):
        log.warning("ignoring a replayed %s click on %s by %s", kind, approval_id, user)
        return
    approval = await runner.store.get(approval_id)
    if (
        approval is None
        or not await runner.cards.routing.belongs(approval, channel, message_ts)
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
