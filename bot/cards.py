"""Approval cards in Slack: posted once per approval, redrawn as votes and the outcome land.

A card that Slack would not take is posted again by the sweeper as soon as Slack answers
(`Runner.retry_waiting`); a card that fell behind its approval (a stop, or an outage that
outlasted the retries) is redrawn by `redraw_behind`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot import blocks
from bot.batches import BatchCards
from bot.conversation import Conversation
from bot.home import Home
from bot.outbox import UNREACHABLE, ThreadMessages
from bot.routing import Routing, update_card
from bot.store import Approval, Store
from bot.tasks import Background, local_lock

log = logging.getLogger(__name__)

# chat.update errors that mean the card will never be updated again.
CARD_GONE = frozenset(
    {"message_not_found", "channel_not_found", "cant_update_message", "is_archived"}
)
# How long an approved card waits for its tool to start before it is drawn anyway.
CARD_AFTER_TOOL_S = 0.25


@dataclasses.dataclass(eq=False)
class Cards:
    store: Store
    messages: ThreadMessages
    background: Background
    # Copies of each card where its approvers are, and their Home tabs (bot/routing.py,
    # bot/home.py): posted after the thread's card, redrawn with it.
    routing: Routing
    home: Home
    client: AsyncWebClient = dataclasses.field(init=False)
    batches: BatchCards = dataclasses.field(init=False)
    _locks: dict[str, asyncio.Lock] = dataclasses.field(init=False, default_factory=dict)
    _held: dict[str, asyncio.Event] = dataclasses.field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.client = self.messages.client
        self.batches = BatchCards(self.store.db, self.client)

    async def post(self, conv: Conversation, approval: Approval) -> bool:
        """Post the card of a pending approval; False when Slack did not take it (the
        approval is recorded, and the card is posted again later)."""
        try:
            ts = await self._post(conv, blocks.card_text(approval), blocks.approval_card(approval))
        except UNREACHABLE as exc:
            log.warning("could not post the card for %s; will try again: %s", approval.id, exc)
            return False
        await self.store.set_message(approval.id, ts)
        await self._route(conv, dataclasses.replace(approval, message_ts=ts))
        return True

    async def _post(self, conv: Conversation, text: str, card: list[blocks.Block]) -> str:
        """Post a card in the conversation's thread (or its main view); the card's ts."""
        posted = await self.client.chat_postMessage(
            channel=conv.channel, thread_ts=conv.reply_thread_ts, text=text, blocks=card
        )
        return str(posted["ts"])

    async def _route(self, conv: Conversation, approval: Approval) -> None:
        """Take the request to its approvers and onto their Home tabs (under the
        conversation's lock, as the post is)."""
        try:
            notice = await self.routing.send(conv, approval)
        except Exception:
            # The thread's card works either way; the copies are a convenience on top.
            log.exception("could not route %s to its approvers", approval.id)
            notice = None
        if notice:
            await self.messages.say(conv, notice)
        self.background.spawn(self.home.refresh_for(approval), what=f"home {approval.id}")

    async def post_batch(self, conv: Conversation, approvals: list[Approval]) -> None:
        try:
            ts = await self._post(conv, blocks.batch_text(approvals), blocks.batch_card(approvals))
        except UNREACHABLE:
            log.exception("could not post the batch card in %s", conv.key)
            return
        await self.batches.record(conv.channel, ts, approvals)

    async def post_unposted(self, conv: Conversation) -> int:
        """Post the cards of this conversation that Slack did not take before; returns how
        many are still not posted."""
        left = 0
        for approval in await self.store.unposted(conv.key):
            if not await self.post(conv, approval):
                left += 1
        return left

    async def links(self, approvals: list[Approval]) -> list[str]:
        """Permalinks of these approvals' cards, for people pointed at them."""
        found = []
        for approval in approvals:
            if approval.message_ts is None:
                continue
            try:
                response = await self.client.chat_getPermalink(
                    channel=approval.channel, message_ts=approval.message_ts
                )
            except UNREACHABLE:
                continue
            found.append(f"<{response['permalink']}|`{blocks.escape(approval.tool)}`>")
        return found

    def redraw(self, approval: Approval) -> None:
        """Update a card in the background."""
        self.background.spawn(self.update(approval), what=f"card {approval.id}")

    def redraw_after_start(self, approval: Approval) -> None:
        """Update the card of an approved call once its tool has started (`release`), or
        after `CARD_AFTER_TOOL_S`: drawn earlier, it competed with the resume for the event
        loop and the database and delayed the tool by about 2 ms. By then the journal entry,
        a durable commit, has made the decision durable too (README, "Durability")."""
        started = self._held.setdefault(approval.interrupt_id, asyncio.Event())
        self.background.spawn(self._after(started, approval), what=f"card {approval.id}")

    async def _after(self, started: asyncio.Event, approval: Approval) -> None:
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CARD_AFTER_TOOL_S):
                    await started.wait()
        finally:
            if self._held.get(approval.interrupt_id) is started:
                del self._held[approval.interrupt_id]
        await self.update(approval)

    def release(self, call_key: str) -> None:
        """The call's tool has started (or its run is over): draw its card now."""
        held = self._held.get(call_key)
        if held is not None:
            held.set()

    async def redraw_behind(self, *, decided_before: float) -> None:
        """Redraw, in the background, the cards that still show a decided approval pending."""
        for approval in await self.store.cards_behind(decided_before):
            if approval.id not in self._locks:  # not being drawn right now
                self.redraw(approval)

    async def update(self, approval: Approval) -> None:
        """Redraw a card: progress while pending, the outcome (no buttons) once decided.
        One draw per card at a time, each from the approval as it is now, so the last one
        sent shows the latest state."""
        async with local_lock(self._locks, approval.id):
            # A decision is final: an approval already decided is as fresh as a reload.
            fresh = (
                approval
                if approval.status != "pending"
                else await self.store.get(approval.id) or approval
            )
            if fresh.message_ts is None:
                return
            votes = await self.store.votes(fresh.id) if fresh.policy.needs_quorum else []
            route, copies = await self.routing.with_copies(fresh.id)
            card = self.routing.card(
                fresh,
                blocks.approval_card(fresh, votes)
                if fresh.status == "pending"
                else blocks.decided_card(fresh, votes),
                route,
            )
            try:
                await update_card(self.client, fresh.channel, fresh.message_ts, fresh, card)
            except UNREACHABLE as exc:
                error = exc.response.get("error") if isinstance(exc, SlackApiError) else None
                if error not in CARD_GONE:
                    log.warning("could not update the card of %s; will retry: %s", fresh.id, exc)
                    return
                # Deleted, or in an archived channel: trying again every sweep would only
                # repeat the error. The decision itself is on record either way.
                log.warning("the card of %s can no longer be updated (%s)", fresh.id, error)
            copies_drawn = await self.routing.redraw_copies(fresh, card, route, copies)
            if fresh.status != "pending":
                if copies_drawn:
                    await self.store.set_card_status(fresh.id, fresh.status)
                await self.batches.redraw_for(fresh)
                self.background.spawn(self.home.refresh_for(fresh), what=f"home {fresh.id}")
