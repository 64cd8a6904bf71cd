"""The "Approve all / Deny all" card of a turn that asked for several calls, kept in step with
its calls: where it was posted is recorded, and it is redrawn whenever one of them is decided,
so a finished batch never keeps live buttons."""

from __future__ import annotations

import asyncio
import logging

from slack_sdk.web.async_client import AsyncWebClient

from bot import blocks
from bot.batch_store import BatchCard, BatchCardStore
from bot.db import Database
from bot.outbox import UNREACHABLE
from bot.store import Approval

log = logging.getLogger(__name__)


class BatchCards:
    def __init__(self, db: Database, client: AsyncWebClient) -> None:
        self.records = BatchCardStore(db)
        self.client = client
        # One draw of a batch card at a time, each reading its calls once it holds the lock:
        # calls decided together must not leave an older picture drawn last.
        self._locks: dict[BatchCard, asyncio.Lock] = {}

    async def record(self, channel: str, message_ts: str, approvals: list[Approval]) -> None:
        await self.records.record(BatchCard(channel, message_ts), [a.id for a in approvals])

    async def redraw_for(self, approval: Approval) -> None:
        """Redraw the batch card `approval` is on, if any, from its calls as they are now."""
        card = await self.records.card_of(approval.id)
        if card is None:
            return
        lock = self._locks.setdefault(card, asyncio.Lock())
        try:
            async with lock:
                await self._draw(card)
        finally:
            if not lock.locked() and not lock._waiters:
                self._locks.pop(card, None)

    async def _draw(self, card: BatchCard) -> None:
        approvals = await self.records.approvals_on(card)
        try:
            await self.client.chat_update(
                channel=card.channel,
                ts=card.message_ts,
                text=blocks.batch_text(approvals),
                blocks=blocks.batch_card(approvals),
            )
        except UNREACHABLE as exc:
            log.warning("could not redraw the batch card %s: %s", card.message_ts, exc)
