"""The LangGraph Server thread of each conversation, in the bot's database, so every replica
drives the same one (`agent.server_session.ThreadIds`). The approval key of a tool call, which
a team's graph does not put on the call's result, is read from the approvals
(`Store.call_key_for`, `agent.hitl.CallKeys`)."""

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
