"""Recording a person's decision on an approval, and expiring the ones nobody decided.

The order (docs/design.md, "From a click to the tool"): load → check it belongs to this
message → check the clicker may decide, under the request's policy and the current one →
claim atomically, before the deadline, with its audit record → resume in the background,
the card updated once an approved call's tool has started (`Cards.redraw_after_start`). Only
the caller whose claim lands goes further; everyone else is told why.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any, Literal

from slack_sdk.errors import SlackApiError

from agent.policy import Policy
from bot import blocks
from bot.conversation import Conversation, reply_thread_ts
from bot.runner import Runner
from bot.store import Approval, Status

log = logging.getLogger(__name__)

Choice = Literal["approve", "reject", "edit"]

# How often, and how long after a decision, a card still showing it pending is redrawn.
CARD_CATCH_UP_S = 30.0
# Slack redelivers an event for about an hour at most; its dedupe key is kept a day.
SEEN_KEPT_S = 86_400


class Decisions:
    def __init__(self, runner: Runner, policy: Policy) -> None:
        self.runner = runner
        self.clock = runner.clock
        self.cards = runner.cards
        self.store = runner.store
        self.client = runner.client
        self.directory = runner.directory
        self.policy = policy

    async def decide(
        self,
        *,
        approval_id: str,
        choice: Choice,
        user: str,
        channel: str | None = None,
        message_ts: str | None = None,
        reason: str | None = None,
        edited_args: dict[str, Any] | None = None,
    ) -> None:
        """One person's click or modal submission on one approval."""
        approval = await self.store.get(approval_id)
        if approval is None:
            log.warning("refused %s by %s: no approval %r", choice, user, approval_id[:100])
            if channel:
                await self._tell(channel, user, "This approval request does not exist (any more).")
            return
        # The card in the thread or any copy of it (bot/routing.py): a button value copied
        # into another message must not decide anything.
        if channel is not None and not await self.cards.routing.belongs(
            approval, channel, message_ts
        ):
            await self._refused(approval, user, "button from another message")
            await self._tell(channel, user, "That button does not belong to this request.")
            return
        if await self._check(approval, user, choice, channel) and await self._apply(
            approval, choice, user, reason, edited_args
        ):
            await self.runner.resume_decided(Conversation.from_key(approval.conversation))

    async def decide_all(
        self, *, approval_ids: list[str], choice: Choice, user: str, channel: str, thread_ts: str
    ) -> None:
        """ "Approve all" / "Deny all": only if `user` may decide every one still pending.

        Only the calls of the thread the batch card is in count: ids copied onto another
        message decide nothing.
        """
        found = [await self.store.get(i) for i in approval_ids]
        approvals = [
            a for a in found if a is not None and a.channel == channel and a.thread_ts == thread_ts
        ]
        pending = [a for a in approvals if a.status == "pending"]
        if not pending:
            log.info("%s all by %s: none of %d ids is pending here", choice, user, len(found))
            await self._tell(channel, user, "Nothing left to decide here.", thread_ts)
            return
        refusals = [(a, await self.refusal(a, user) or _not_offered(a, choice)) for a in pending]
        refused = [(a, why) for a, why in refusals if why is not None]
        if refused:
            for approval, why in refused:
                await self._refused(approval, user, why)
            names = ", ".join(f"`{a.tool}`" for a, _ in refused)
            await self._tell(
                channel,
                user,
                f"You can't decide all of these ({names}); nothing was changed.",
                pending[0].thread_ts,
            )
            return
        decided = [a for a in pending if await self._apply(a, choice, user, None, None)]
        for key in sorted({a.conversation for a in decided}):
            await self.runner.resume_decided(Conversation.from_key(key))

    async def _check(
        self, approval: Approval, user: str, choice: Choice, channel: str | None = None
    ) -> bool:
        """Still pending, and `user` may decide it this way; otherwise tell them why not
        (where they clicked: a copy's channel is not the thread's)."""
        if approval.status != "pending":
            await self._tell_decided(approval, user)
            return False
        refusal = await self.refusal(approval, user)
        if refusal is None:
            refusal = _not_offered(approval, choice)
        if refusal is not None:
            await self._refused(approval, user, refusal)
            if channel is not None and channel != approval.channel:
                await self._tell(channel, user, refusal)
            else:
                await self._tell(approval.channel, user, refusal, approval.thread_ts)
            return False
        return True

    async def _apply(
        self,
        approval: Approval,
        choice: Choice,
        user: str,
        reason: str | None,
        edited_args: dict[str, Any] | None,
    ) -> bool:
        """Record the decision; True when it settled the approval (so a resume is due)."""
        if approval.expires_at is not None and approval.expires_at <= self.clock.now():
            await self._expire_now(approval, user)
            return False
        needed = self._needed(approval)
        if choice == "approve" and needed > 1:
            if not await self.store.add_vote(approval.id, user):
                await self._tell(
                    approval.channel,
                    user,
                    "You already approved this one; it needs approvals from other people too.",
                    approval.thread_ts,
                )
                return False
            votes = await self.store.votes(approval.id)
            await self.store.audit(
                "vote", approval=approval, actor=user, detail=f"{len(votes)} of {needed}"
            )
            if len(votes) < needed:
                await self.cards.update(approval)
                return False
        decision = None
        if choice == "edit":
            decision = {
                "type": "edit",
                "edited_action": {"name": approval.tool, "args": edited_args or {}},
            }
        status: Status = "rejected" if choice == "reject" else "approved"
        decided = await self.store.claim(
            approval.id,
            status,
            by=user,
            reason=reason,
            decision=decision,
            event={"edit": "edited", "reject": "denied"}.get(choice, status),
            detail=json.dumps(edited_args) if edited_args is not None else None,
            before=self.clock.now(),
        )
        if decided is None:
            fresh = await self._reload(approval)
            if fresh.status == "pending":  # the deadline passed between the check and the claim
                await self._expire_now(fresh, user)
            else:
                await self._tell_decided(fresh, user)
            return False
        # The card is redrawn after the decision rather than before it: the claim already
        # stops other clicks, and a card left behind by a stop is caught up later.
        if decided.status == "approved":
            self.cards.redraw_after_start(decided)
        else:
            self.cards.redraw(decided)
        return True

    async def refuse(self, approval: Approval, user: str, why: str) -> None:
        """Refuse a decision before it reaches the checks (audited), and say why."""
        await self._refused(approval, user, why)
        await self._tell(approval.channel, user, why, approval.thread_ts)

    async def _refused(self, approval: Approval, user: str, why: str) -> None:
        """Audit a refused decision, and log it: forged or replayed payloads show up here."""
        log.warning("refused a decision on %s by %s: %s", approval.id, user, why)
        await self.store.audit("refused", approval=approval, actor=user, detail=why)

    def _needed(self, approval: Approval) -> int:
        """The quorum: the request's, or the current policy's if that asks for more."""
        return max(
            approval.policy.approvals_needed,
            self.policy.for_tool(approval.tool).approvals_needed,
        )

    async def refusal(self, approval: Approval, user: str) -> str | None:
        """Why `user` may not decide this approval, or None if they may. Both the policy the
        request was made under and the current one must allow it: revoking an approver takes
        effect on pending calls, and loosening a policy never applies backwards. Group
        membership is looked up afresh for each decision."""
        now = self.policy.for_tool(approval.tool)
        self_approval = approval.policy.allow_self_approval and now.allow_self_approval
        if not self_approval and user == approval.requester:
            return "You asked for this call, so someone else has to decide it."
        # An escalation (bot/reminders.py) widens both lists: the request's by whom it was
        # escalated to, the current policy's by its own escalate_to. It never narrows
        # "anyone" (no approvers), so where both lists are empty its route is not read.
        current = list(now.approvers)
        route = (
            await self.cards.routing.route(approval.id)
            if approval.policy.approvers or current
            else None
        )
        then = await self.cards.routing.approvers_of(approval, route)
        if route is not None and route.escalated_to and current:
            current += [p for p in now.escalate_to if p not in current]
        try:
            refusing = await self.directory.refusing(user, [then, current], fresh=True)
        except SlackApiError as exc:
            log.error("cannot resolve approvers %s: %s", then, exc.response.get("error"))
            return "I could not check who may approve this (Slack error); try again shortly."
        if refusing is None:
            return None
        who = ", ".join(
            f"<!subteam^{a}>" if a.startswith("S") else blocks.mention(a) for a in refusing
        )
        return f"You can't approve this; allowed: {who}."

    async def _expire_now(self, approval: Approval, user: str) -> None:
        """A decision that came after the deadline: the call expires instead."""
        log.info("%s by %s came after the deadline of %s", "decision", user, approval.id)
        decided = await self.store.claim(approval.id, "expired", by=None)
        if decided is not None:
            self.cards.redraw(decided)
            self.runner.spawn(
                self.runner.resume_decided(Conversation.from_key(decided.conversation)),
                what=f"expire {approval.id}",
            )
        await self._tell_decided(decided or await self._reload(approval), user)

    async def expire_due(self) -> int:
        """Reject as expired every pending approval past its deadline; returns how many."""
        expired = 0
        for approval in await self.store.due_to_expire(self.clock.now()):
            decided = await self.store.claim(approval.id, "expired", by=None)
            if decided is None:
                continue
            expired += 1
            self.cards.redraw(decided)
            self.runner.spawn(
                self.runner.resume_decided(Conversation.from_key(decided.conversation)),
                what=f"expire {approval.id}",
            )
        return expired

    async def sweep_forever(self, interval: float = 2.0) -> None:
        """Expire what is due; now and then, tidy up (`housekeeping`)."""
        tidied = time.monotonic()
        while True:
            try:
                await self.expire_due()
            except Exception:
                log.exception("expiry sweep failed")
            if time.monotonic() - tidied >= CARD_CATCH_UP_S:
                tidied = time.monotonic()
                try:
                    await self.housekeeping()
                except Exception:
                    log.exception("housekeeping failed")
            try:
                await self.runner.retry_waiting()
            except Exception:
                log.exception("posting what Slack did not take failed")
            await asyncio.sleep(interval)

    async def housekeeping(self) -> None:
        """Redraw cards that fell behind their approval (a Slack outage outlasting the
        retries, a replica that stopped mid-update), and forget dedupe keys too old for
        Slack to deliver again."""
        now = self.clock.now()
        await self.cards.redraw_behind(decided_before=now - CARD_CATCH_UP_S)
        forgotten = await self.store.forget_seen(before=now - SEEN_KEPT_S)
        if forgotten:
            log.info("forgot %d dedupe keys older than %d s", forgotten, SEEN_KEPT_S)

    async def _reload(self, approval: Approval) -> Approval:
        fresh = await self.store.get(approval.id)
        assert fresh is not None
        return fresh

    async def _tell_decided(self, approval: Approval, user: str) -> None:
        log.info("%s was already %s when %s decided", approval.id, approval.status, user)
        await self._tell(
            approval.channel,
            user,
            f"Already decided — {blocks.outcome_line(approval)}",
            approval.thread_ts,
        )

    async def _tell(self, channel: str, user: str, text: str, thread_ts: str | None = None) -> None:
        try:
            await self.client.chat_postEphemeral(
                channel=channel,
                user=user,
                text=text,
                thread_ts=reply_thread_ts(thread_ts) if thread_ts else None,
            )
        except SlackApiError as exc:
            error = exc.response.get("error")
            if error not in ("user_not_in_channel", "channel_not_found"):
                log.warning("could not tell %s: %s", user, error)
                return
            # Decided from a place outside the request's conversation (the Home tab, a DM
            # copy): the bot's DM with them is where they can read it.
            try:
                await self.client.chat_postMessage(channel=user, text=text)
            except SlackApiError as again:
                log.warning("could not tell %s: %s", user, again.response.get("error"))


_WORDS = {"approve": "approve", "reject": "deny", "edit": "edit"}


def _not_offered(approval: Approval, choice: Choice) -> str | None:
    if approval.policy.offers(choice):
        return None
    return f"The policy does not allow '{_WORDS[choice]}' for `{approval.tool}`."
