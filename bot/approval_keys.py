"""The approval a running call was let through by, for its idempotency key
(agent.idempotency.ApprovalIds, in the bot's database)."""

from __future__ import annotations

from bot.db import Database


class SqlApprovalIds:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def approved(self, thread_id: str, tool_call_id: str) -> str | None:
        row = await self._db.fetchone(
            "SELECT id FROM approvals WHERE conversation = ? AND tool_call_id = ?"
            " AND status = 'approved' ORDER BY decided_at DESC LIMIT 1",
            (thread_id, tool_call_id),
        )
        return str(row["id"]) if row else None
