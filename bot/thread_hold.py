"""What a run says when a thread is waiting on approvals and someone writes in it: where the
cards are, or, for `cancel` from the requester, the withdrawal."""

from __future__ import annotations

from bot import blocks
from bot.cards import Cards
from bot.conversation import Conversation
from bot.outbox import ThreadMessages
from bot.store import Store


class ThreadHold:
    """The held-thread part of `bot.runner.Runner`."""

    store: Store
    messages: ThreadMessages
    cards: Cards

    async def _hold(self, conv: Conversation, user: str) -> None:
        approvals = await self.store.for_conversation(conv.key)
        carded = [a for a in approvals if a.message_ts is not None]
        requesters = sorted({a.requester for a in approvals}) or [user]
        who = " or ".join(blocks.mention(r) for r in requesters)
        waiting = blocks.count(len(carded) or len(approvals), "approval")
        if not carded:
            # No card is in the thread yet (Slack did not take it): nothing is "above".
            text = (
                f":raised_hand: This thread is waiting on {waiting}; the cards are posted as "
                f"soon as Slack takes them. {who} can say `cancel` to withdraw."
            )
        else:
            links = await self.cards.links(carded)
            text = (
                f":raised_hand: This thread is waiting on {waiting} above: "
                f"{', '.join(links) or 'see the cards'}. Decide first, or {who} can say "
                "`cancel` to withdraw."
            )
        await self.messages.say(conv, text)

    async def _withdraw(self, conv: Conversation, user: str) -> bool:
        approvals = await self.store.for_conversation(conv.key)
        mine = [a for a in approvals if a.requester == user]
        if not mine:
            requesters = sorted({a.requester for a in approvals})
            who = " or ".join(blocks.mention(r) for r in requesters) or "the person who asked"
            await self.messages.say(
                conv, f":no_entry_sign: Only {who} (who asked) can withdraw these calls."
            )
            return False
        withdrawn = 0
        for approval in mine:
            decided = await self.store.claim(approval.id, "withdrawn", by=user)
            if decided is not None:
                withdrawn += 1
                self.cards.redraw(decided)
        await self.messages.say(
            conv,
            f":leftwards_arrow_with_hook: Withdrew {blocks.count(withdrawn, 'pending call')}.",
        )
        return withdrawn > 0
