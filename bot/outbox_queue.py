"""The outbox: thread messages kept in the database until Slack has taken them, so a
restart or a Slack outage loses none."""

from __future__ import annotations

import time
from dataclasses import dataclass

from bot.audit_trail import AuditEntry, audit_in
from bot.db import Database, RowType, row_columns


@dataclass(frozen=True)
class OutboxMessage(RowType):
    """A thread message not yet posted; `next_at`: when to try again after Slack refused it."""

    seq: int
    text: str
    attempts: int
    next_at: float | None


OUTBOX_MESSAGE_COLUMNS = row_columns(OutboxMessage)


class OutboxQueue:
    """The outbox part of `bot.store.Store`."""

    db: Database

    async def outbox_put(
        self, conversation: str, text: str, audit: AuditEntry | None = None
    ) -> int:
        """Keep a thread message until it is posted; with `audit`, the audit record of what
        the message reports is committed with it."""
        insert = (
            "INSERT INTO outbox (conversation, text, created_at) VALUES (?, ?, ?) RETURNING seq"
        )
        params = (conversation, text, time.time())
        if audit is None:
            [row] = await self.db.fetchall(insert, params)
            return int(row["seq"])
        async with self.db.transaction() as tx:
            [row] = await tx.fetchall(insert, params)
            await audit_in(tx, audit)
        return int(row["seq"])

    async def outbox_done(self, seq: int) -> None:
        await self.db.execute("DELETE FROM outbox WHERE seq = ?", (seq,))

    async def outbox_later(self, seq: int, attempts: int, next_at: float) -> None:
        await self.db.execute(
            "UPDATE outbox SET attempts = ?, next_at = ? WHERE seq = ?", (attempts, next_at, seq)
        )

    async def outbox_left(self, conversation: str) -> list[OutboxMessage]:
        """Messages not yet posted in this conversation, oldest first."""
        rows = await self.db.fetchall(
            f"SELECT {OUTBOX_MESSAGE_COLUMNS} FROM outbox WHERE conversation = ? ORDER BY seq",
            (conversation,),
        )
        return [OutboxMessage.from_row(row) for row in rows]

    async def waiting_for_slack(self, *, due_before: float) -> list[str]:
        """Conversations with a message or a card that Slack has not taken yet and that is
        due to be tried again."""
        rows = await self.db.fetchall(
            "SELECT conversation FROM outbox WHERE next_at IS NOT NULL AND next_at <= ?"
            " UNION SELECT conversation FROM approvals WHERE status = 'pending'"
            " AND message_ts IS NULL AND created_at <= ?",
            (due_before, due_before),
        )
        return sorted({str(r["conversation"]) for r in rows})
