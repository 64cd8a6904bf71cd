"""The agent's execution journal in the bot's database."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agent.gate import Recorded
from agent.journal import JournalEntry
from agent.policy import PolicySnapshot
from bot.db import Database, RowType, row_columns


@dataclass(frozen=True)
class Execution(RowType):
    """A gated call's journal entry as the bot reports it: the arguments that ran (as the
    JSON text written) and the tool's raw result."""

    args: str
    status: str
    result: str | None
    result_status: str | None


EXECUTION_COLUMNS = row_columns(Execution)


class SqlJournal:
    """The agent's execution journal (agent.journal.Journal) and the gate's approval records
    (agent.gate.ApprovalRecords), in the bot's database."""

    def __init__(self, db: Database, on_begin: Callable[[str], None] | None = None) -> None:
        self._db = db
        # Told each call key once its entry is committed, just before the tool starts.
        self._on_begin = on_begin

    async def approval_for(self, call_key: str) -> Recorded | None:
        row = await self._db.fetchone(
            "SELECT id, policy FROM approvals WHERE interrupt_id = ?", (call_key,)
        )
        if row is None:
            return None
        return Recorded.under(str(row["id"]), PolicySnapshot.model_validate_json(row["policy"]))

    async def begin(
        self, key: str, thread_id: str, tool_call_id: str, name: str, args: dict[str, Any]
    ) -> JournalEntry | None:
        # The one durable commit before a gated tool starts: a power loss after it cannot
        # make the call look never started, so it is never run twice.
        inserted = await self._db.execute_durable(
            "INSERT INTO executions (call_key, thread_id, tool_call_id, tool, args, status,"
            " started_at) VALUES (?,?,?,?,?,'started',?) ON CONFLICT (call_key) DO NOTHING",
            (key, thread_id, tool_call_id, name, json.dumps(args, default=str), time.time()),
        )
        if self._on_begin is not None:
            self._on_begin(key)
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
