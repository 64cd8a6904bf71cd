"""The outbox: thread messages kept in the database until Slack has taken them, so a
restart or a Slack outage loses none."""

from __future__ import annotations

import time
from dataclasses import dataclass

from bot.audit_trail import AUDIT_INSERT, AuditEntry, audit_in, audit_values
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
    ) -> list[OutboxMessage]:
        """Keep a thread message until it is posted; with `audit`, the audit record of what
        the message reports is committed with it. Returns the conversation's messages not
        yet posted, this one last (`outbox_left`), to be posted in that order."""
        insert = "INSERT INTO outbox (conversation, text, created_at) VALUES (?, ?, ?)"
        params = (conversation, text, time.time())
        if self.db.dialect == "postgresql":
            # One statement, one round trip (instead of BEGIN, two INSERTs, COMMIT and then
            # a SELECT of what waits): the older messages are read in the insert's snapshot,
            # which does not hold the new row, so it is added from RETURNING.
            audited, audit_params = (
                (f", audited AS ({AUDIT_INSERT})", audit_values(audit)) if audit else ("", ())
            )
            rows = await self.db.fetchall(
                f"WITH kept AS ({insert} RETURNING {OUTBOX_MESSAGE_COLUMNS}){audited}"
                f" SELECT {OUTBOX_MESSAGE_COLUMNS} FROM outbox WHERE conversation = ?"
                f" UNION ALL SELECT {OUTBOX_MESSAGE_COLUMNS} FROM kept ORDER BY seq",
                (*params, *audit_params, conversation),
            )
            return [OutboxMessage.from_row(row) for row in rows]
        if audit is None:
            await self.db.execute(insert, params)
        else:
            async with self.db.transaction() as tx:
                await tx.execute(insert, params)
                await audit_in(tx, audit)
        return await self.outbox_left(conversation)

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
