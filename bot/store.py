"""Approvals, event dedupe, the execution journal and the audit trail, in the bot's database.

A decision is recorded by `claim`: one conditional UPDATE that only the first caller
can win, so twenty clicks on one button count once, committed together with its audit
record (docs/design.md, "I2. A gated tool runs at most once, and only after a recorded
approval" and "I5. A decision and its audit record commit together").
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from typing import Any, Literal

from agent.journal import JournalEntry
from bot.db import Database, Row, Statements

Status = Literal["pending", "approved", "rejected", "withdrawn", "expired"]
DECIDED: tuple[Status, ...] = ("approved", "rejected", "withdrawn", "expired")
ALL_STATUSES: tuple[Status, ...] = ("pending", *DECIDED)


@dataclass(frozen=True)
class Approval:
    id: str
    interrupt_id: str
    conversation: str
    team_id: str
    channel: str
    thread_ts: str
    message_ts: str | None
    tool_call_id: str
    tool: str
    args: dict[str, Any]
    description: str
    requester: str
    status: Status
    policy: dict[str, Any]
    created_at: float
    expires_at: float | None
    decided_by: str | None
    decided_at: float | None
    reason: str | None
    decision: dict[str, Any] | None
    resumed_at: float | None
    card_status: Status | None
    """The status the Slack card shows, once it has been drawn."""

    @classmethod
    def from_row(cls, row: Row) -> Approval:
        values = dict(row)
        for key in ("args", "policy", "decision"):
            if values[key] is not None:
                values[key] = json.loads(values[key])
        return cls(**values)


class Store:
    def __init__(self, db: Database) -> None:
        self.db = db

    # approvals ---------------------------------------------------------------------------

    async def create_approval(
        self,
        *,
        interrupt_id: str,
        conversation: str,
        team_id: str,
        channel: str,
        thread_ts: str,
        tool_call_id: str,
        tool: str,
        args: dict[str, Any],
        description: str,
        requester: str,
        policy: dict[str, Any],
        expires_at: float | None,
    ) -> tuple[Approval, bool]:
        """Record a pending call once per interrupt; returns (approval, created)."""
        approval_id = "ap_" + secrets.token_hex(8)
        created = await self.db.fetchall(
            "INSERT INTO approvals (id, interrupt_id, conversation, team_id, channel, thread_ts,"
            " tool_call_id, tool, args, description, requester, status, policy, created_at,"
            " expires_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,'pending',?,?,?)"
            " ON CONFLICT (interrupt_id) DO NOTHING RETURNING *",
            (
                approval_id,
                interrupt_id,
                conversation,
                team_id,
                channel,
                thread_ts,
                tool_call_id,
                tool,
                json.dumps(args, default=str),
                description,
                requester,
                json.dumps(policy),
                time.time(),
                expires_at,
            ),
        )
        if created:
            return Approval.from_row(created[0]), True
        row = await self.db.fetchone(
            "SELECT * FROM approvals WHERE interrupt_id = ?", (interrupt_id,)
        )
        assert row is not None
        return Approval.from_row(row), False

    async def set_message(self, approval_id: str, message_ts: str) -> None:
        await self.db.execute(
            "UPDATE approvals SET message_ts = ?, card_status = 'pending' WHERE id = ?",
            (message_ts, approval_id),
        )

    async def set_card_status(self, approval_id: str, shown: Status) -> None:
        await self.db.execute(
            "UPDATE approvals SET card_status = ? WHERE id = ?", (shown, approval_id)
        )

    async def cards_behind(self, decided_before: float) -> list[Approval]:
        """Posted cards that still show an approval as pending after it was decided."""
        rows = await self.db.fetchall(
            "SELECT * FROM approvals WHERE message_ts IS NOT NULL AND status <> 'pending'"
            " AND (card_status IS NULL OR card_status <> status) AND decided_at < ?"
            " ORDER BY decided_at, id",
            (decided_before,),
        )
        return [Approval.from_row(r) for r in rows]

    async def get(self, approval_id: str) -> Approval | None:
        row = await self.db.fetchone("SELECT * FROM approvals WHERE id = ?", (approval_id,))
        return Approval.from_row(row) if row else None

    async def for_conversation(
        self, conversation: str, statuses: tuple[Status, ...] = ("pending",)
    ) -> list[Approval]:
        marks = ",".join("?" * len(statuses))
        rows = await self.db.fetchall(
            f"SELECT * FROM approvals WHERE conversation = ? AND status IN ({marks})"
            " ORDER BY created_at, id",
            (conversation, *statuses),
        )
        return [Approval.from_row(r) for r in rows]

    async def claim(
        self,
        approval_id: str,
        status: Status,
        *,
        by: str | None,
        reason: str | None = None,
        decision: dict[str, Any] | None = None,
        event: str | None = None,
        detail: str | None = None,
    ) -> Approval | None:
        """Decide a pending approval and audit it as `event` (default: the status), both or
        neither; the decided approval only for the one caller whose update landed."""
        async with self.db.transaction() as tx:
            rows = await tx.fetchall(
                "UPDATE approvals SET status = ?, decided_by = ?, decided_at = ?, reason = ?,"
                " decision = ? WHERE id = ? AND status = 'pending' RETURNING *",
                (
                    status,
                    by,
                    time.time(),
                    reason,
                    json.dumps(decision) if decision is not None else None,
                    approval_id,
                ),
            )
            if not rows:
                return None
            decided = Approval.from_row(rows[0])
            await _audit(
                tx, event or status, approval=decided, actor=by, reason=reason, detail=detail
            )
        return decided

    async def unresumed(self, conversation: str | None = None) -> list[Approval]:
        """Decided approvals whose decision has not yet been handed to the agent."""
        marks = ",".join("?" * len(DECIDED))
        sql = f"SELECT * FROM approvals WHERE status IN ({marks}) AND resumed_at IS NULL"
        params: tuple[Any, ...] = DECIDED
        if conversation is not None:
            sql += " AND conversation = ?"
            params = (*params, conversation)
        rows = await self.db.fetchall(sql + " ORDER BY decided_at, id", params)
        return [Approval.from_row(r) for r in rows]

    async def mark_resumed(self, approval_ids: list[str]) -> None:
        if not approval_ids:
            return
        marks = ",".join("?" * len(approval_ids))
        await self.db.execute(
            f"UPDATE approvals SET resumed_at = ? WHERE id IN ({marks}) AND resumed_at IS NULL",
            (time.time(), *approval_ids),
        )

    async def add_vote(self, approval_id: str, user: str) -> bool:
        """Count `user` toward a quorum; False if they had already approved."""
        added = await self.db.execute(
            "INSERT INTO votes (approval_id, user_id, at) VALUES (?, ?, ?)"
            " ON CONFLICT (approval_id, user_id) DO NOTHING",
            (approval_id, user, time.time()),
        )
        return added == 1

    async def votes(self, approval_id: str) -> list[str]:
        rows = await self.db.fetchall(
            "SELECT user_id FROM votes WHERE approval_id = ? ORDER BY at, user_id", (approval_id,)
        )
        return [r["user_id"] for r in rows]

    # dedupe ------------------------------------------------------------------------------

    async def first_sighting(self, key: str) -> bool:
        """True the first time `key` is seen: Slack retries and double deliveries repeat it."""
        inserted = await self.db.execute(
            "INSERT INTO seen_events (key, seen_at) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
            (key, time.time()),
        )
        return inserted == 1

    async def forget_seen(self, before: float) -> int:
        """Drop dedupe keys first seen before `before`; returns how many."""
        return await self.db.execute("DELETE FROM seen_events WHERE seen_at < ?", (before,))

    # outbox ------------------------------------------------------------------------------

    async def outbox_put(
        self,
        conversation: str,
        text: str,
        *,
        audit_event: str | None = None,
        approval: Approval | None = None,
        detail: str | None = None,
    ) -> int:
        """Keep a thread message until it is posted; with `audit_event`, the audit record of
        what the message reports is committed with it."""
        insert = (
            "INSERT INTO outbox (conversation, text, created_at) VALUES (?, ?, ?) RETURNING seq"
        )
        params = (conversation, text, time.time())
        if audit_event is None:
            [row] = await self.db.fetchall(insert, params)
            return int(row["seq"])
        async with self.db.transaction() as tx:
            [row] = await tx.fetchall(insert, params)
            await _audit(tx, audit_event, approval=approval, actor=None, reason=None, detail=detail)
        return int(row["seq"])

    async def outbox_done(self, seq: int) -> None:
        await self.db.execute("DELETE FROM outbox WHERE seq = ?", (seq,))

    async def outbox_left(self, conversation: str) -> list[Row]:
        """Messages a stopped process was posting in this conversation, oldest first."""
        return await self.db.fetchall(
            "SELECT seq, text FROM outbox WHERE conversation = ? ORDER BY seq", (conversation,)
        )

    # audit -------------------------------------------------------------------------------

    async def audit(
        self,
        event: str,
        *,
        approval: Approval | None = None,
        actor: str | None = None,
        reason: str | None = None,
        detail: str | None = None,
        conversation: str | None = None,
        tool: str | None = None,
    ) -> None:
        await _audit(
            self.db,
            event,
            approval=approval,
            actor=actor,
            reason=reason,
            detail=detail,
            conversation=conversation,
            tool=tool,
        )

    async def audit_log(
        self, *, since: float | None = None, tool: str | None = None, user: str | None = None
    ) -> list[Row]:
        clauses, params = [], []
        for clause, value in (("at >= ?", since), ("tool = ?", tool), ("actor = ?", user)):
            if value is not None:
                clauses.append(clause)
                params.append(value)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        return await self.db.fetchall(f"SELECT * FROM audit{where} ORDER BY seq", params)


async def _audit(
    where: Statements,
    event: str,
    *,
    approval: Approval | None,
    actor: str | None,
    reason: str | None,
    detail: str | None,
    conversation: str | None = None,
    tool: str | None = None,
) -> None:
    await where.execute(
        "INSERT INTO audit (at, event, approval_id, conversation, tool, args, actor, reason,"
        " detail) VALUES (?,?,?,?,?,?,?,?,?)",
        (
            time.time(),
            event,
            approval.id if approval else None,
            approval.conversation if approval else conversation,
            approval.tool if approval else tool,
            json.dumps(approval.args, default=str) if approval else None,
            actor,
            reason,
            detail,
        ),
    )


class SqlJournal:
    """The agent's execution journal (agent.journal.Journal) in the bot's database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def begin(
        self, thread_id: str, tool_call_id: str, name: str, args: dict[str, Any]
    ) -> JournalEntry | None:
        inserted = await self._db.execute(
            "INSERT INTO journal (thread_id, tool_call_id, tool, args, status, started_at)"
            " VALUES (?,?,?,?,'started',?) ON CONFLICT (thread_id, tool_call_id) DO NOTHING",
            (thread_id, tool_call_id, name, json.dumps(args, default=str), time.time()),
        )
        if inserted == 1:
            return None
        row = await self._db.fetchone(
            "SELECT status, result, result_status FROM journal"
            " WHERE thread_id = ? AND tool_call_id = ?",
            (thread_id, tool_call_id),
        )
        assert row is not None
        return JournalEntry(row["status"], row["result"], row["result_status"])

    async def finish(self, thread_id: str, tool_call_id: str, result: str, status: str) -> None:
        await self._db.execute(
            "UPDATE journal SET status = 'finished', result = ?, result_status = ?,"
            " finished_at = ? WHERE thread_id = ? AND tool_call_id = ?",
            (result, status, time.time(), thread_id, tool_call_id),
        )
