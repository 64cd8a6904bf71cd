"""What the listeners start after their ack, as the runner's background tasks: the /ask
thread, and the modals a click opens (docs/design.md, "Acks first")."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Literal

from langchain_core.tools import BaseTool
from slack_bolt.async_app import AsyncRespond
from slack_sdk.errors import SlackApiError

from bot import blocks
from bot.conversation import MAIN_VIEW, Conversation
from bot.decisions import Decisions
from bot.edit_form import edit_modal
from bot.interactions import Click, HomeClick, SlashCommand
from bot.runner import Runner

log = logging.getLogger(__name__)

Modal = Literal["deny", "edit"]


def is_dm(channel: str) -> bool:
    return channel.startswith("D")


async def ask(runner: Runner, command: SlashCommand, respond: AsyncRespond) -> None:
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
    conv = Conversation(team, channel, MAIN_VIEW if is_dm(channel) else str(root["ts"]))
    await runner.on_message(conv, user, text)


async def deny_from_home(runner: Runner, decisions: Decisions, click: HomeClick) -> None:
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


async def show_args(runner: Runner, click: Click, trigger_id: str) -> None:
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


async def open_modal(
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

    async def deny() -> None:
        await decisions.decide(
            approval_id=approval_id,
            choice="reject",
            user=user,
            channel=channel,
            message_ts=message_ts,
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
        await deny()  # refuses, and says why
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
            await deny()
