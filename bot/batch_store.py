"""Where each "Approve all / Deny all" card was posted, in the bot's database (`batch_cards`,
one row per call on it), so that it is redrawn as its calls are decided (bot/batches.py)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.approval_row import Approval
from bot.db import Database, RowType, row_columns


@dataclass(frozen=True)
class BatchCard(RowType):
    channel: str
    message_ts: str


BATCH_CARD_COLUMNS = row_columns(BatchCard)


class BatchCardStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def record(self, card: BatchCard, approval_ids: list[str]) -> None:
        """The card holds these calls; a call already on a card stays on that one."""
        for approval_id in approval_ids:
            await self.db.execute(
                "INSERT INTO batch_cards (approval_id, channel, message_ts) VALUES (?, ?, ?)"
                " ON CONFLICT (approval_id) DO NOTHING",
                (approval_id, card.channel, card.message_ts),
            )

    async def card_of(self, approval_id: str) -> BatchCard | None:
        row = await self.db.fetchone(
            f"SELECT {BATCH_CARD_COLUMNS} FROM batch_cards WHERE approval_id = ?", (approval_id,)
        )
        return BatchCard.from_row(row) if row is not None else None

    async def approvals_on(self, card: BatchCard) -> list[Approval]:
        """The calls on the card, in the order they were asked for."""
        rows = await self.db.fetchall(
            f"SELECT {row_columns(Approval, 'a')} FROM approvals a"
            " JOIN batch_cards b ON b.approval_id = a.id"
            " WHERE b.channel = ? AND b.message_ts = ? ORDER BY a.created_at, a.id",
            (card.channel, card.message_ts),
        )
        return [Approval.from_row(r) for r in rows]
