"""What the bot keeps for a team's own agent, in its database: the LangGraph Server thread
of each conversation (so every replica drives the same one), and the approval key of a
tool call (a team's graph does not put it on the call's result)."""

from __future__ import annotations

import time

from bot.db import Database


class SqlThreadIds:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, conversation: str) -> str | None:
        row = await self.db.fetchone(
            "SELECT thread_id FROM server_threads WHERE conversation = ?", (conversation,)
        )
        return str(row["thread_id"]) if row is not None else None

    async def put(self, conversation: str, thread_id: str) -> str:
        await self.db.execute(
            "INSERT INTO server_threads (conversation, thread_id, created_at) VALUES (?, ?, ?)"
            " ON CONFLICT (conversation) DO NOTHING",
            (conversation, thread_id, time.time()),
        )
        kept = await self.get(conversation)
        assert kept is not None
        return kept


class SqlCallKeys:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def call_key_for(self, thread_id: str, tool_call_id: str) -> str | None:
        """The key of the newest approval for this tool call id in the conversation: a model
        may reuse ids across turns, but a conversation runs one turn at a time, and the call
        running now is the latest one asked for."""
        row = await self.db.fetchone(
            "SELECT interrupt_id FROM approvals WHERE conversation = ? AND tool_call_id = ?"
            " ORDER BY created_at DESC LIMIT 1",
            (thread_id, tool_call_id),
        )
        return str(row["interrupt_id"]) if row is not None else None

    async def approval_id_for(self, call_key: str) -> str | None:
        row = await self.db.fetchone("SELECT id FROM approvals WHERE interrupt_id = ?", (call_key,))
        return str(row["id"]) if row is not None else None
