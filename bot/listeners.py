"""Bolt listeners. Each one acks at once and hands the work to the runner (docs/design.md,
"Acks first").

Nothing here awaits the model, a tool, the database or a Slack call before the ack:
parsing is in memory (`bot.interactions`), and everything else happens in a background task.

The two requests that come in bursts, Approve clicks and `/ask`, are also taken by the
intake's fast path (`register`'s return value, `bot.intake`) ahead of Bolt's dispatch: the
same parsing and the same hand-off as their listeners here, which Bolt still runs for every
such request the fast path leaves to it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from langchain_core.tools import BaseTool
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot import blocks, listener_tasks
from bot.conversation import MAIN_VIEW, Conversation
from bot.decisions import Choice, Decisions
from bot.edit_form import EditError, parse_edit
from bot.help import ask_help, wants_help
from bot.home import HOME_APPROVE_ACTION, HOME_DENY_ACTION
from bot.intake import FastPath, Handoff
from bot.interactions import Click, HomeClick, SlashCommand, Submission, UserMessage, slack_id
from bot.runner import Runner, is_cancel

log = logging.getLogger(__name__)

ClickListener = Callable[[AsyncAck, dict[str, Any]], Awaitable[None]]


def register(
    app: AsyncApp,
    runner: Runner,
    decisions: Decisions,
    bot_user_id: str,
    tools: Mapping[str, BaseTool],
    team_id: str,
) -> FastPath:
    """Add the listeners to `app`; returns the fast path for the bot's workspace `team_id`."""
    mention_token = re.compile(rf"<@{re.escape(bot_user_id)}(\|[^>]*)?>")
    # Built once: the policy is fixed for the life of the process, and the ack must be quick.
    help_text, help_blocks = ask_help(runner.policy, tools)

    def asked(command: SlashCommand, respond: AsyncRespond) -> Handoff:
        if wants_help(command.text):
            return Handoff(reply={"text": help_text, "blocks": help_blocks})
        return Handoff(
            start=lambda: runner.spawn(listener_tasks.ask(runner, command, respond), what="/ask")
        )

    @app.command("/ask")
    async def ask(ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond) -> None:
        parsed = SlashCommand.parse(command)
        if parsed is None:
            await ack()
            log.warning("ignoring a malformed /ask command")
            return
        handoff = asked(parsed, respond)
        await ack(**handoff.reply)
        handoff.start()

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
        in_main_view = listener_tasks.is_dm(channel) and not event.get("thread_ts")
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

    async def acked_click(
        ack: AsyncAck, body: dict[str, Any], what: str, *, trigger: bool = False
    ) -> Click | None:
        """Ack, then the click parsed; None, with a warning, when it is malformed (or lacks
        the trigger id a modal needs)."""
        await ack()
        parsed = Click.parse(body)
        if parsed is None or (trigger and parsed.trigger_id is None):
            log.warning("ignoring a malformed %s click", what)
            return None
        return parsed

    def approved(click: Click) -> Handoff:
        return Handoff(
            start=lambda: decide_later(
                click.value,
                "approve",
                click.user,
                channel=click.channel,
                message_ts=click.message_ts,
            )
        )

    @app.action(blocks.APPROVE_ACTION)
    async def approve(ack: AsyncAck, body: dict[str, Any]) -> None:
        parsed = await acked_click(ack, body, "approve")
        if parsed is not None:
            approved(parsed).start()

    def open_modal(kind: listener_tasks.Modal) -> ClickListener:
        async def open_it(ack: AsyncAck, body: dict[str, Any]) -> None:
            parsed = await acked_click(ack, body, kind, trigger=True)
            if parsed is None or parsed.trigger_id is None:
                return
            runner.spawn(
                listener_tasks.open_modal(
                    runner, decisions, tools, parsed, parsed.trigger_id, kind
                ),
                what=f"{kind} modal {parsed.value}",
            )

        return open_it

    app.action(blocks.DENY_ACTION)(open_modal("deny"))
    app.action(blocks.EDIT_ACTION)(open_modal("edit"))

    @app.action(blocks.SHOW_ARGS_ACTION)
    async def show_args(ack: AsyncAck, body: dict[str, Any]) -> None:
        parsed = await acked_click(ack, body, "show-arguments", trigger=True)
        if parsed is None or parsed.trigger_id is None:
            return
        runner.spawn(
            listener_tasks.show_args(runner, parsed, parsed.trigger_id),
            what=f"arguments of {parsed.value}",
        )

    def decide_all(choice: Choice) -> ClickListener:
        async def decide_them(ack: AsyncAck, body: dict[str, Any]) -> None:
            parsed = await acked_click(ack, body, f"{choice}-all")
            if parsed is None:
                return
            thread_ts = parsed.thread_ts
            if thread_ts is None and isinstance(body.get("message"), dict):
                thread_ts = MAIN_VIEW if listener_tasks.is_dm(parsed.channel) else None
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

        return decide_them

    app.action(blocks.APPROVE_ALL_ACTION)(decide_all("approve"))
    app.action(blocks.DENY_ALL_ACTION)(decide_all("reject"))

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

    async def acked_home_click(ack: AsyncAck, body: dict[str, Any]) -> HomeClick | None:
        await ack()
        parsed = HomeClick.parse(body)
        if parsed is None:
            log.warning("ignoring a malformed Home tab click")
        return parsed

    @app.action(HOME_APPROVE_ACTION)
    async def home_approve(ack: AsyncAck, body: dict[str, Any]) -> None:
        if (parsed := await acked_home_click(ack, body)) is None:
            return
        runner.spawn(
            decide_from_home(parsed.value, "approve", parsed.user), what=f"approve {parsed.value}"
        )

    @app.action(HOME_DENY_ACTION)
    async def home_deny(ack: AsyncAck, body: dict[str, Any]) -> None:
        if (parsed := await acked_home_click(ack, body)) is None:
            return
        runner.spawn(
            listener_tasks.deny_from_home(runner, decisions, parsed), what=f"deny {parsed.value}"
        )

    @app.error
    async def on_error(error: Exception, body: dict[str, Any]) -> None:
        log.error("unhandled error in a listener (%s): %s", body.get("type"), error, exc_info=error)

    responder = app.client

    def fast_path(body: Mapping[str, Any]) -> Handoff | None:
        """An Approve click or an /ask from the bot's own workspace, well formed, as its
        listener above would take it; None leaves the request to Bolt (which also logs and
        refuses the malformed ones)."""
        if not _ours(body, team_id):
            return None
        if body.get("command") == "/ask" and "ssl_check" not in body:
            command = SlashCommand.parse(body)
            if command is None:
                return None
            # As Bolt builds `respond` for a listener, from its app's client.
            respond = _respond(responder, command.response_url)
            return asked(command, respond)
        actions = body.get("actions")
        if (
            body.get("type") == "block_actions"
            and isinstance(actions, list)
            and len(actions) == 1
            and isinstance(actions[0], Mapping)
            and actions[0].get("action_id") == blocks.APPROVE_ACTION
            and actions[0].get("type") == "button"
        ):
            click = Click.parse(body)
            return None if click is None else approved(click)
        return None

    return fast_path


def _ours(body: Mapping[str, Any], team_id: str) -> bool:
    """From the workspace the bot was installed in, not through an org-wide install: what
    `authorize` (one installation) covers without a question."""
    team = body.get("team")  # an interaction's; a command has `team_id`
    sender = team.get("id") if isinstance(team, Mapping) else body.get("team_id")
    return (
        sender == team_id
        and not body.get("enterprise")
        and not body.get("enterprise_id")
        and body.get("is_enterprise_install") in (None, False, "false")
    )


def _respond(client: AsyncWebClient, response_url: str) -> AsyncRespond:
    return AsyncRespond(response_url=response_url, proxy=client.proxy, ssl=client.ssl)
