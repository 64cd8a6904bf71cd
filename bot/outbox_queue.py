"""The outbox: thread messages kept in the database until Slack has taken them, so a
restart or a Slack outage loses none."""

from __future__ import annotations

import time

from bot.audit_trail import AuditEntry, audit_in
from bot.db import Database, Row


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

    async def outbox_left(self, conversation: str) -> list[Row]:
        """Messages not yet posted in this conversation, oldest first."""
        return await self.db.fetchall(
            "SELECT seq, text, attempts, next_at FROM outbox WHERE conversation = ? ORDER BY seq",
            (conversation,),
        )

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
