"""Reminding approvers of a request nobody decided, and escalating it to more people.

Both are swept like expiry: the due times are in `approval_routes` (`bot.route_store`), a
sweep claims each with one conditional UPDATE committed with its audit record (`reminded`,
`escalated`), so a due reminder is sent by one replica, once, and one that fell due while no
bot ran is sent at the next start. Only a request still pending and not yet past its own
deadline is claimed: expiry wins. A stop between the claim and the posts loses that reminder
(at most once).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from slack_sdk.errors import SlackApiError

from bot import blocks
from bot.conversation import Conversation
from bot.home import ago
from bot.route_store import DueColumn
from bot.routing import who
from bot.runner import Runner
from bot.store import Approval

log = logging.getLogger(__name__)

SWEEP_INTERVAL_S = 1.0


class Reminders:
    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.routing = runner.cards.routing
        self.records = runner.cards.routing.records
        self.client = runner.client
        # Due times are measured like expiry's, so that expiry wins at its own deadline.
        self.clock = runner.clock

    async def sweep(self) -> int:
        """Send what is due; returns how many reminders and escalations this process sent."""
        return await self.remind_due() + await self.escalate_due()

    async def sweep_forever(self, interval: float = SWEEP_INTERVAL_S) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:
                log.exception("reminder sweep failed")
            await asyncio.sleep(interval)

    async def _claim_due(self, column: DueColumn) -> AsyncIterator[tuple[Approval, float]]:
        """Each due reminder (or escalation) this process wins, with when it claimed it; one
        another replica sent, or of a request just decided, is passed over."""
        claim = (
            self.records.claim_reminder if column == "remind_at" else self.records.claim_escalation
        )
        for route in await self.records.due(column, self.clock.now()):
            now = self.clock.now()
            approval = await claim(route.approval_id, now)
            if approval is not None:
                yield approval, now

    async def remind_due(self) -> int:
        sent = 0
        async for approval, now in self._claim_due("remind_at"):
            sent += 1
            waiting = ago(now - approval.created_at)
            text = (
                f":alarm_clock: Reminder: `{blocks.escape(approval.tool)}` requested by "
                f"{blocks.mention(approval.requester)} has waited {waiting} for "
                f"{who(await self.routing.approvers_of(approval))}."
            )
            # In the background: a thread message waits for the conversation's run, and one
            # busy conversation must not hold up every other reminder.
            self.runner.spawn(self._reply_everywhere(approval, text), what=f"remind {approval.id}")
        return sent

    async def escalate_due(self) -> int:
        sent = 0
        async for approval, now in self._claim_due("escalate_at"):
            sent += 1
            added = list(approval.policy.escalate_to)
            self.runner.spawn(self._escalate(approval, added, now), what=f"escalate {approval.id}")
        return sent

    async def _escalate(self, approval: Approval, added: list[str], now: float) -> None:
        before = await self.routing.people(approval.policy.approvers)
        newcomers = [p for p in await self.routing.deciders(approval) if p not in before]
        route = await self.routing.route(approval.id)
        await self.routing.send_to_people(approval, newcomers, route.permalink if route else None)
        # The thread's card and every copy now say it was escalated, and to whom.
        self.runner.cards.redraw(approval)
        await self.runner.say(
            Conversation.from_key(approval.conversation),
            f":arrow_double_up: Nobody decided within {ago(now - approval.created_at)}: "
            f"escalated to {who(added)}, who may now approve too.",
        )
        self.runner.spawn(self.runner.cards.home.refresh(newcomers), what=f"home {approval.id}")

    async def _reply_everywhere(self, approval: Approval, text: str) -> None:
        """A reply under the thread's card and under each copy: a nudge, not a new message
        in any channel."""
        await self.runner.say(Conversation.from_key(approval.conversation), text)
        for copy in await self.routing.copies(approval.id):
            try:
                await self.client.chat_postMessage(
                    channel=copy.channel,
                    thread_ts=copy.message_ts,
                    text=blocks.cut(text, 3000),
                    blocks=blocks.notice(text),
                )
            except SlackApiError as exc:
                log.warning("could not remind in %s: %s", copy.channel, exc.response["error"])
