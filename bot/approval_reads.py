"""Reads of the approvals table: the lookups `bot.store.Store` is built on, and the listings
of the Home tab, a team's own agent (`agent.hitl.CallKeys`) and the benchmarks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.approval_row import APPROVAL_COLUMNS, Approval
from bot.db import Database


class ApprovalReads:
    db: Database

    async def pending_newest(self, limit: int) -> list[Approval]:
        """Pending approvals, newest first."""
        return await self._where(
            "status = 'pending' ORDER BY created_at DESC, id LIMIT ?", (limit,)
        )

    async def requested_by(self, user: str, limit: int) -> list[Approval]:
        """`user`'s own requests, newest first, whatever their status."""
        return await self._where(
            "requester = ? ORDER BY created_at DESC, id LIMIT ?", (user, limit)
        )

    async def posted_pending(self) -> list[Approval]:
        """Pending approvals whose card is in Slack, oldest first."""
        return await self._where(
            "status = 'pending' AND message_ts IS NOT NULL ORDER BY created_at, id", ()
        )

    async def call_key_for(self, thread_id: str, tool_call_id: str) -> str | None:
        """The key of the newest approval for this tool call id in the conversation: a model
        may reuse ids across turns, but a conversation runs one turn at a time, and the call
        running now is the latest one asked for (agent.hitl.CallKeys)."""
        row = await self.db.fetchone(
            "SELECT interrupt_id FROM approvals WHERE conversation = ? AND tool_call_id = ?"
            " ORDER BY created_at DESC LIMIT 1",
            (thread_id, tool_call_id),
        )
        return str(row["interrupt_id"]) if row is not None else None

    async def approval_id_for(self, call_key: str) -> str | None:
        row = await self.db.fetchone("SELECT id FROM approvals WHERE interrupt_id = ?", (call_key,))
        return str(row["id"]) if row is not None else None

    async def _where(self, condition: str, params: Sequence[Any]) -> list[Approval]:
        """The approvals matching `condition` (SQL after WHERE, with any ORDER BY)."""
        rows = await self.db.fetchall(
            f"SELECT {APPROVAL_COLUMNS} FROM approvals WHERE {condition}", params
        )
        return [Approval.from_row(r) for r in rows]
