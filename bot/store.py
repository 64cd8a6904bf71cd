"""Approvals, runs in progress and event dedupe, in the bot's database; with the approvals'
listings (`bot.approval_reads`), the outbox (`bot.outbox_queue`) and the audit trail
(`bot.audit_trail`) it is the bot's `Store`. The approvals' row type is
`bot.approval_row.Approval`; the agent's execution journal is `bot.journal_store.SqlJournal`.

A decision is recorded by `claim`: one conditional UPDATE that only the first caller
can win, so twenty clicks on one button count once, committed together with its audit
record (docs/design.md, "A gated tool runs at most once, and only after a recorded
approval" and "A decision and its audit record commit together").
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from agent.policy import PolicySnapshot
from bot.approval_reads import ApprovalReads

# `X as X` marks a re-export: callers import these from here.
from bot.approval_row import ALL_STATUSES as ALL_STATUSES
from bot.approval_row import APPROVAL_COLUMNS
from bot.approval_row import DECIDED as DECIDED
from bot.approval_row import Approval as Approval
from bot.approval_row import Status as Status
from bot.audit_trail import AUDIT_WRITTEN, AuditTrail
from bot.audit_trail import AuditEntry as AuditEntry
from bot.audit_trail import audit_in as audit_in
from bot.db import Database, row_columns
from bot.journal_store import EXECUTION_COLUMNS, Execution
from bot.journal_store import SqlJournal as SqlJournal
from bot.outbox_queue import OutboxQueue

# A written approval comes back whole, in the columns `Approval.from_row` reads.
_RETURNING = f" RETURNING {APPROVAL_COLUMNS}"


class Store(ApprovalReads, OutboxQueue, AuditTrail):
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
        policy: PolicySnapshot,
        expires_at: float | None,
    ) -> tuple[Approval, bool]:
        """Record a pending call once per interrupt; returns (approval, created)."""
        approval_id = "ap_" + secrets.token_hex(8)
        created = await self.db.fetchall(
            "INSERT INTO approvals (id, interrupt_id, conversation, team_id, channel, thread_ts,"
            " tool_call_id, tool, args, description, requester, status, policy, created_at,"
            " expires_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,'pending',?,?,?)"
            " ON CONFLICT (interrupt_id) DO NOTHING" + _RETURNING,
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
                policy.model_dump_json(),
                time.time(),
                expires_at,
            ),
        )
        if created:
            return Approval.from_row(created[0]), True
        existing = await self.by_call_key(interrupt_id)
        assert existing is not None
        return existing, False

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
        return await self._where(
            "message_ts IS NOT NULL AND status <> 'pending'"
            " AND (card_status IS NULL OR card_status <> status) AND decided_at < ?"
            " ORDER BY decided_at, id",
            (decided_before,),
        )

    async def unposted(self, conversation: str) -> list[Approval]:
        """Pending approvals of this conversation whose card Slack has not taken yet."""
        return await self._where(
            "conversation = ? AND status = 'pending' AND message_ts IS NULL"
            " ORDER BY created_at, id",
            (conversation,),
        )

    async def knows(self, conversation: str) -> bool:
        """Whether any call was ever put to people in this conversation."""
        row = await self.db.fetchone(
            "SELECT 1 AS one FROM approvals WHERE conversation = ? LIMIT 1", (conversation,)
        )
        return row is not None

    async def by_call_key(self, call_key: str) -> Approval | None:
        found = await self._where("interrupt_id = ?", (call_key,))
        return found[0] if found else None

    async def execution(self, call_key: str) -> Execution | None:
        """The journal's entry of a gated call: the arguments that ran and the raw result."""
        row = await self.db.fetchone(
            f"SELECT {EXECUTION_COLUMNS} FROM executions WHERE call_key = ?", (call_key,)
        )
        return Execution.from_row(row) if row is not None else None

    async def get(self, approval_id: str) -> Approval | None:
        found = await self._where("id = ?", (approval_id,))
        return found[0] if found else None

    async def for_conversation(
        self, conversation: str, statuses: tuple[Status, ...] = ("pending",)
    ) -> list[Approval]:
        marks = ",".join("?" * len(statuses))
        return await self._where(
            f"conversation = ? AND status IN ({marks}) ORDER BY created_at, id",
            (conversation, *statuses),
        )

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
        before: float | None = None,
    ) -> Approval | None:
        """Decide a pending approval and audit it as `event` (default: the status), both or
        neither; the decided approval only for the one caller whose update landed. With
        `before`, the claim lands only if the approval's deadline is later than that."""
        deadline = " AND (expires_at IS NULL OR expires_at > ?)" if before is not None else ""
        update = (
            "UPDATE approvals SET status = ?, decided_by = ?, decided_at = ?, reason = ?,"
            " decision = ?, decided_event = ?, decided_detail = ?"
            " WHERE id = ? AND status = 'pending'" + deadline + _RETURNING
        )
        params = (
            status,
            by,
            time.time(),
            reason,
            json.dumps(decision) if decision is not None else None,
            event or status,
            detail,
            approval_id,
            *((before,) if before is not None else ()),
        )
        if self.db.dialect == "postgresql":
            # One statement, so one round trip instead of four (BEGIN, UPDATE, INSERT,
            # COMMIT) and as atomic: the audit record is written from the row the update
            # returns, so only when the update landed. Its columns are those `audit_in`
            # writes: the decision's time, actor and reason, the approval's arguments as
            # stored (the JSON text `audit_in` would write again).
            rows = await self.db.fetchall(
                f"WITH decided AS ({update}), audited AS (INSERT INTO audit ({AUDIT_WRITTEN})"
                " SELECT decided_at, decided_event, id, conversation, tool, args, decided_by,"
                f" reason, decided_detail FROM decided) SELECT {APPROVAL_COLUMNS} FROM decided",
                params,
            )
        else:
            # The same record, written by the trigger on this update (bot/migrations.py).
            rows = await self.db.fetchall(update, params)
        return Approval.from_row(rows[0]) if rows else None

    async def due_to_expire(self, now: float) -> list[Approval]:
        return await self._where(
            "status = 'pending' AND expires_at IS NOT NULL AND expires_at <= ?", (now,)
        )

    async def unresumed(self, conversation: str | None = None) -> list[Approval]:
        """Decided approvals whose decision has not yet been handed to the agent."""
        marks = ",".join("?" * len(DECIDED))
        condition = f"status IN ({marks}) AND resumed_at IS NULL"
        params: tuple[Any, ...] = DECIDED
        if conversation is not None:
            condition += " AND conversation = ?"
            params = (*params, conversation)
        return await self._where(condition + " ORDER BY decided_at, id", params)

    async def unsettled(self, conversation: str) -> tuple[list[Approval], list[Approval]]:
        """`for_conversation` and `unresumed` of one conversation in one read: its pending
        approvals, and its decided ones not yet handed to the agent."""
        rows = await self._where(
            "conversation = ? AND (status = 'pending' OR resumed_at IS NULL)"
            " ORDER BY created_at, id",
            (conversation,),
        )
        return [a for a in rows if a.status == "pending"], [
            a for a in rows if a.status != "pending"
        ]

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

    # runs in progress -------------------------------------------------------------------

    async def run_started(self, conversation: str, requester: str) -> None:
        await self.db.execute(
            "INSERT INTO runs (conversation, requester, started_at) VALUES (?, ?, ?)"
            " ON CONFLICT (conversation) DO UPDATE SET requester = excluded.requester,"
            " started_at = excluded.started_at",
            (conversation, requester, time.time()),
        )

    async def run_ended(self, conversation: str) -> None:
        await self.db.execute("DELETE FROM runs WHERE conversation = ?", (conversation,))

    async def last_requester(self, conversation: str) -> str | None:
        """Who a stopped run was for, or who asked for the conversation's last gated call."""
        row = await self.db.fetchone(
            "SELECT requester FROM runs WHERE conversation = ?", (conversation,)
        )
        if row is None:
            row = await self.db.fetchone(
                "SELECT requester FROM approvals WHERE conversation = ?"
                " ORDER BY created_at DESC, id DESC LIMIT 1",
                (conversation,),
            )
        return str(row["requester"]) if row else None

    async def to_recover(self) -> list[str]:
        """Conversations a stopped process may have left half done, oldest work first."""
        rows = await self.db.fetchall(
            "SELECT conversation FROM runs"
            " UNION SELECT conversation FROM approvals WHERE status = 'pending'"
            " AND message_ts IS NULL"
            " UNION SELECT conversation FROM approvals WHERE status <> 'pending'"
            " AND resumed_at IS NULL"
            " UNION SELECT a.conversation" + _UNREPORTED + " UNION SELECT conversation FROM outbox",
            _OUTCOME_EVENTS,
        )
        return sorted({str(r["conversation"]) for r in rows})

    async def unreported(self, conversation: str) -> list[tuple[Approval, Execution]]:
        """Gated calls that finished with nobody left to report them: (approval, journal)."""
        rows = await self.db.fetchall(
            f"SELECT a.id AS approval_id, {row_columns(Execution, 'j')}"
            + _UNREPORTED
            + " AND a.conversation = ? ORDER BY j.finished_at",
            (*_OUTCOME_EVENTS, conversation),
        )
        found = []
        for row in rows:
            approval = await self.get(str(row["approval_id"]))
            if approval is not None:
                found.append((approval, Execution.from_row(row)))
        return found

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


_OUTCOME_EVENTS = ("executed", "failed", "not_run", "outcome_unknown")
_UNREPORTED = (
    " FROM executions j JOIN approvals a ON a.interrupt_id = j.call_key"
    " WHERE j.status = 'finished' AND NOT EXISTS (SELECT 1 FROM audit u"
    " WHERE u.approval_id = a.id AND u.event IN (?, ?, ?, ?))"
)
