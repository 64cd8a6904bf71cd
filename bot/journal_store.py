"""The agent's execution journal in the bot's database."""

from __future__ import annotations

import json
import time
from typing import Any

from agent.journal import JournalEntry
from bot.db import Database


class SqlJournal:
    """The agent's execution journal (agent.journal.Journal) and the gate's approval records
    (agent.gate.ApprovalRecords), in the bot's database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def approval_for(self, call_key: str) -> str | None:
        row = await self._db.fetchone(
            "SELECT id FROM approvals WHERE interrupt_id = ?", (call_key,)
        )
        return str(row["id"]) if row else None

    async def begin(
        self, key: str, thread_id: str, tool_call_id: str, name: str, args: dict[str, Any]
    ) -> JournalEntry | None:
        inserted = await self._db.execute(
            "INSERT INTO executions (call_key, thread_id, tool_call_id, tool, args, status,"
            " started_at) VALUES (?,?,?,?,?,'started',?) ON CONFLICT (call_key) DO NOTHING",
            (key, thread_id, tool_call_id, name, json.dumps(args, default=str), time.time()),
        )
        if inserted == 1:
            return None
        row = await self._db.fetchone(
            "SELECT status, result, result_status FROM executions WHERE call_key = ?", (key,)
        )
        assert row is not None
        return JournalEntry(row["status"], row["result"], row["result_status"])

    async def finish(self, key: str, result: str, status: str) -> None:
        await self._db.execute(
            "UPDATE executions SET status = 'finished', result = ?, result_status = ?,"
            " finished_at = ? WHERE call_key = ?",
            (result, status, time.time(), key),
        )
