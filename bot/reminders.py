"""Reminding approvers of a request nobody decided, and escalating it to more people.

Both are swept like expiry: the due times are in `approval_routes`, a sweep claims each with
one conditional UPDATE committed with its audit record (`reminded`, `escalated`), so a due
reminder is sent by one replica, once, and one that fell due while no bot ran is sent at the
next start. Only a request still pending and not yet past its own deadline is claimed:
expiry wins. A stop between the claim and the posts loses that reminder (at most once).
"""

from __future__ import annotations

import asyncio
import json
import logging

from slack_sdk.errors import SlackApiError

from bot import blocks
from bot.conversation import Conversation
from bot.db import Statements
from bot.home import ago
from bot.routing import Route, who
from bot.runner import Runner
from bot.store import Approval, AuditEntry, audit_in

log = logging.getLogger(__name__)

SWEEP_INTERVAL_S = 1.0

# A request that can still be decided: the sweeps never act on one expiry is about to take.
_STILL_OPEN = (
    " AND approval_id IN (SELECT id FROM approvals WHERE status = 'pending'"
    " AND (expires_at IS NULL OR expires_at > ?))"
)


class Reminders:
    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.routing = runner.cards.routing
        self.store = runner.store
        self.db = runner.store.db
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

    async def _due(self, column: str) -> list[Route]:
        now = self.clock.now()
        rows = await self.db.fetchall(
            f"SELECT * FROM approval_routes WHERE {column} IS NOT NULL AND {column} <= ?"
            + _STILL_OPEN
            + f" ORDER BY {column}",
            (now, now),
        )
        return [Route.from_row(r) for r in rows]

    async def remind_due(self) -> int:
        sent = 0
        for route in await self._due("remind_at"):
            now = self.clock.now()
            approval: Approval | None = None
            async with self.db.transaction() as tx:
                won = await tx.execute(
                    "UPDATE approval_routes SET remind_at = NULL, reminded_at = ?"
                    " WHERE approval_id = ? AND remind_at IS NOT NULL" + _STILL_OPEN,
                    (now, route.approval_id, now),
                )
                if won:
                    approval = await _approval(tx, route.approval_id)
                    await audit_in(tx, AuditEntry("reminded", approval=approval))
            if approval is None:
                continue  # another replica sent it, or the request was just decided
            sent += 1
            waiting = ago(now - approval.created_at)
            text = (
                f":alarm_clock: Reminder: `{blocks.escape(approval.tool)}` requested by "
                f"{blocks.mention(approval.requester)} has waited {waiting} for "
                f"{who(await self.routing.approvers_of(approval))}."
            )
            # In the background: a thread message waits for the conversation's run, and one
            # busy conversation must not hold up every other reminder.
            self.runner.spawn(
                self._reply_everywhere(approval, text), what=f"remind {approval.id}"
            )
        return sent

    async def escalate_due(self) -> int:
        sent = 0
        for route in await self._due("escalate_at"):
            now = self.clock.now()
            async with self.db.transaction() as tx:
                approval = await _approval(tx, route.approval_id)
                added = list(approval.policy.escalate_to)
                won = await tx.execute(
                    "UPDATE approval_routes SET escalate_at = NULL, escalated_at = ?,"
                    " escalated_to = ? WHERE approval_id = ? AND escalate_at IS NOT NULL"
                    + _STILL_OPEN,
                    (now, json.dumps(added), route.approval_id, now),
                )
                if won:
                    await audit_in(
                        tx, AuditEntry("escalated", approval=approval, detail=", ".join(added))
                    )
            if not won:
                continue
            sent += 1
            self.runner.spawn(self._escalate(approval, added, now), what=f"escalate {approval.id}")
        return sent

    async def _escalate(self, approval: Approval, added: list[str], now: float) -> None:
        before = await self.routing.people(approval.policy.approvers)
        newcomers = [p for p in await self.routing.deciders(approval) if p not in before]
        route = await self.routing.route(approval.id)
        await self.routing.send_to_people(
            approval, newcomers, route.permalink if route else None
        )
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



async def _approval(tx: Statements, approval_id: str) -> Approval:
    row = await tx.fetchone("SELECT * FROM approvals WHERE id = ?", (approval_id,))
    assert row is not None  # routes are made for recorded approvals only
    return Approval.from_row(row)
