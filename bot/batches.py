"""The "Approve all / Deny all" card of a turn that asked for several calls, kept in step with
its calls: where it was posted is recorded, and it is redrawn whenever one of them is decided,
so a finished batch never keeps live buttons."""

from __future__ import annotations

import asyncio
import logging

from slack_sdk.web.async_client import AsyncWebClient

from bot import blocks
from bot.db import Database
from bot.outbox import UNREACHABLE
from bot.store import Approval

log = logging.getLogger(__name__)


class BatchCards:
    def __init__(self, db: Database, client: AsyncWebClient) -> None:
        self.db = db
        self.client = client
        # One draw of a batch card at a time, each reading its calls once it holds the lock:
        # calls decided together must not leave an older picture drawn last.
        self._locks: dict[str, asyncio.Lock] = {}

    async def record(self, channel: str, message_ts: str, approvals: list[Approval]) -> None:
        for approval in approvals:
            await self.db.execute(
                "INSERT INTO batch_cards (approval_id, channel, message_ts) VALUES (?, ?, ?)"
                " ON CONFLICT (approval_id) DO NOTHING",
                (approval.id, channel, message_ts),
            )

    async def redraw_for(self, approval: Approval) -> None:
        """Redraw the batch card `approval` is on, if any, from its calls as they are now."""
        row = await self.db.fetchone(
            "SELECT channel, message_ts FROM batch_cards WHERE approval_id = ?", (approval.id,)
        )
        if row is None:
            return
        key = f"{row['channel']}:{row['message_ts']}"
        lock = self._locks.setdefault(key, asyncio.Lock())
        try:
            async with lock:
                await self._draw(row["channel"], row["message_ts"])
        finally:
            if not lock.locked() and not lock._waiters:
                self._locks.pop(key, None)

    async def _draw(self, channel: str, message_ts: str) -> None:
        rows = await self.db.fetchall(
            "SELECT a.* FROM approvals a JOIN batch_cards b ON b.approval_id = a.id"
            " WHERE b.channel = ? AND b.message_ts = ? ORDER BY a.created_at, a.id",
            (channel, message_ts),
        )
        approvals = [Approval.from_row(r) for r in rows]
        try:
            await self.client.chat_update(
                channel=channel,
                ts=message_ts,
                text=blocks.batch_text(approvals),
                blocks=blocks.batch_card(approvals),
            )
        except UNREACHABLE as exc:
            log.warning("could not redraw the batch card %s: %s", message_ts, exc)
