"""The audit trail: one record per decision, execution and notice, written in the caller's
transaction where it must commit with what it records, and read back as `AuditRecord`s
(`slack-approvals audit` formats them in `bot.audit`)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.db import Database, RowType, Statements, row_columns

if TYPE_CHECKING:
    from bot.store import Approval


@dataclass(frozen=True)
class AuditEntry:
    """One line of the audit trail. `args` are the arguments that ran, where they differ
    from the approval's."""

    event: str
    approval: Approval | None = None
    actor: str | None = None
    reason: str | None = None
    detail: str | None = None
    conversation: str | None = None
    tool: str | None = None
    args: dict[str, Any] | None = None


@dataclass(frozen=True)
class AuditRecord(RowType):
    """A line of the audit trail as stored: `args` is the JSON text written."""

    seq: int
    at: float
    event: str
    approval_id: str | None
    conversation: str | None
    tool: str | None
    args: str | None
    actor: str | None
    reason: str | None
    detail: str | None


AUDIT_COLUMNS = row_columns(AuditRecord)


class AuditTrail:
    """The audit part of `bot.store.Store`."""

    db: Database

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
        await audit_in(
            self.db, AuditEntry(event, approval, actor, reason, detail, conversation, tool)
        )

    async def audit_log(
        self, *, since: float | None = None, tool: str | None = None, user: str | None = None
    ) -> list[AuditRecord]:
        return await read_audit(self.db, since=since, tool=tool, actor=user)


async def read_audit(
    db: Statements,
    *,
    since: float | None = None,
    tool: str | None = None,
    actor: str | None = None,
) -> list[AuditRecord]:
    """The audit records as written, oldest first."""
    clauses: list[str] = []
    params: list[Any] = []
    for clause, value in (("at >= ?", since), ("tool = ?", tool), ("actor = ?", actor)):
        if value is not None:
            clauses.append(clause)
            params.append(value)
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    rows = await db.fetchall(f"SELECT {AUDIT_COLUMNS} FROM audit{where} ORDER BY seq", params)
    return [AuditRecord.from_row(row) for row in rows]


# What a new audit record is written with, in this order (`audit_values`).
AUDIT_WRITTEN = "at, event, approval_id, conversation, tool, args, actor, reason, detail"
AUDIT_INSERT = f"INSERT INTO audit ({AUDIT_WRITTEN}) VALUES (?,?,?,?,?,?,?,?,?)"


def audit_values(entry: AuditEntry) -> tuple[Any, ...]:
    """The parameters of `AUDIT_INSERT` for this entry."""
    approval = entry.approval
    args = entry.args if entry.args is not None else approval.args if approval else None
    return (
        time.time(),
        entry.event,
        approval.id if approval else None,
        approval.conversation if approval else entry.conversation,
        approval.tool if approval else entry.tool,
        json.dumps(args, default=str) if args is not None else None,
        entry.actor,
        entry.reason,
        entry.detail,
    )


async def audit_in(where: Statements, entry: AuditEntry) -> None:
    """An audit record in the caller's transaction."""
    await where.execute(AUDIT_INSERT, audit_values(entry))
