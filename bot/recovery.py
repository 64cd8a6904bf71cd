"""At startup: finish what a stopped process left half done, on any replica.

Decided cards still showing buttons are redrawn. Each affected conversation is settled under
its lease, so a live replica's run is never raced: messages that were on their way are
posted, the approvals table is reconciled with what the graph has pending (cards never posted
are posted), decisions are handed to the agent (a call that started but never finished comes
back from the journal as "outcome unknown"), calls that finished with nobody left to report
them are reported, and a run that stopped between two steps carries on to the model's answer.
"""

from __future__ import annotations

import logging

from agent.session import ToolOutcome
from bot.conversation import Conversation
from bot.runner import Runner

log = logging.getLogger(__name__)


class Recovery:
    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.store = runner.store
        self.session = runner.session

    async def recover(self) -> None:
        # The stop may have come before a decided card was redrawn.
        await self.runner.cards.redraw_behind(decided_before=self.runner.clock.now())
        for key in await self.store.to_recover():
            conv = Conversation.from_key(key)
            self.runner.spawn(self.settle(conv), what=f"recover {key}")

    async def settle(self, conv: Conversation) -> None:
        runner = self.runner
        async with runner.lock(conv.key):
            await runner.messages.flush(conv)
            requester = await self.store.last_requester(conv.key)
            if requester is not None:
                pending = await self.session.pending(conv.key)
                await runner.reconcile(conv, pending, requester=requester)
        await runner.resume_decided(conv)
        async with runner.lock(conv.key):
            for approval, entry in await self.store.unreported(conv.key):
                await runner.outcomes.report_gated(
                    conv,
                    approval,
                    ToolOutcome(
                        tool_call_id=approval.tool_call_id,
                        name=approval.tool,
                        content=entry.result or "",
                        status="success" if entry.result_status == "success" else "error",
                        ran=True,
                        call_key=approval.interrupt_id,
                    ),
                )
            requester = await self.store.last_requester(conv.key)
            # Stopped after a step (a tool's, or before the model answered) with more to do.
            if requester is not None and await self.session.stopped_part_way(conv.key):
                log.warning("carrying on the run of %s that stopped part-way", conv.key)
                await runner.carry_on(conv, requester)
            else:
                await self.store.run_ended(conv.key)
