"""Where approval requests were routed, in the bot's database: one `approval_routes` row per
routed request (the link to its thread, the reminder and escalation due times, who it was
escalated to) and one `approval_copies` row per copy of its card (bot/routing.py,
bot/reminders.py).

A due reminder or escalation is claimed with one conditional UPDATE (the due time is set to
NULL) committed with its audit record, so one replica sends it, once; only a request still
pending and not yet past its own deadline is claimed: expiry wins.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from bot.approval_row import Approval, approval_in
from bot.audit_trail import AuditEntry, audit_in
from bot.db import Database, Row, RowType, Statements, row_columns, row_values

DueColumn = Literal["remind_at", "escalate_at"]


@dataclass(frozen=True)
class Route:
    approval_id: str
    permalink: str | None
    remind_at: float | None
    escalate_at: float | None
    escalated_to: list[str]
    reminded_at: float | None
    escalated_at: float | None

    @classmethod
    def from_row(cls, row: Row) -> Route:
        values = row_values(cls, row)
        values["escalated_to"] = json.loads(values["escalated_to"] or "[]")
        return cls(**values)


ROUTE_COLUMNS = row_columns(Route)


@dataclass(frozen=True)
class Copy(RowType):
    channel: str
    message_ts: str
    kind: str  # "dm" or "channel"


COPY_COLUMNS = row_columns(Copy)

# A request that can still be decided: the sweeps never act on one expiry is about to take.
_STILL_OPEN = (
    " AND approval_id IN (SELECT id FROM approvals WHERE status = 'pending'"
    " AND (expires_at IS NULL OR expires_at > ?))"
)


class RouteStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def route(self, approval_id: str) -> Route | None:
        row = await self.db.fetchone(
            f"SELECT {ROUTE_COLUMNS} FROM approval_routes WHERE approval_id = ?", (approval_id,)
        )
        return Route.from_row(row) if row else None

    async def routes(self, approval_ids: list[str]) -> dict[str, Route]:
        if not approval_ids:
            return {}
        marks = ",".join("?" * len(approval_ids))
        rows = await self.db.fetchall(
            f"SELECT {ROUTE_COLUMNS} FROM approval_routes WHERE approval_id IN ({marks})",
            approval_ids,
        )
        return {str(r["approval_id"]): Route.from_row(r) for r in rows}

    async def open_route(
        self,
        approval_id: str,
        permalink: str | None,
        remind_at: float | None,
        escalate_at: float | None,
    ) -> bool:
        """Record where a request is routed; False if it already was (nothing is changed)."""
        claimed = await self.db.execute(
            "INSERT INTO approval_routes (approval_id, permalink, remind_at, escalate_at)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (approval_id) DO NOTHING",
            (approval_id, permalink, remind_at, escalate_at),
        )
        return claimed > 0

    async def copies(self, approval_id: str) -> list[Copy]:
        rows = await self.db.fetchall(
            f"SELECT {COPY_COLUMNS} FROM approval_copies WHERE approval_id = ? ORDER BY message_ts",
            (approval_id,),
        )
        return [Copy.from_row(r) for r in rows]

    async def with_copies(self, approval_id: str) -> tuple[Route | None, list[Copy]]:
        """A request's route and the copies of its card, in one read (for a card's redraw).
        A copy is only recorded once its request's route is (`Routing.send` claims the route
        first), so a request without a route has no copies."""
        rows = await self.db.fetchall(
            f"SELECT {row_columns(Route, 'r')}, {row_columns(Copy, 'c')} FROM approval_routes r"
            " LEFT JOIN approval_copies c ON c.approval_id = r.approval_id"
            " WHERE r.approval_id = ? ORDER BY c.message_ts",
            (approval_id,),
        )
        if not rows:
            return None, []
        return Route.from_row(rows[0]), [Copy.from_row(r) for r in rows if r["channel"]]

    async def is_copy(self, approval_id: str, channel: str, message_ts: str) -> bool:
        row = await self.db.fetchone(
            "SELECT 1 AS found FROM approval_copies WHERE approval_id = ? AND channel = ?"
            " AND message_ts = ?",
            (approval_id, channel, message_ts),
        )
        return row is not None

    async def add_copy(self, approval_id: str, copy: Copy) -> None:
        """Record a posted copy; the first one in a channel is kept."""
        await self.db.execute(
            "INSERT INTO approval_copies (approval_id, channel, message_ts, kind)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (approval_id, channel) DO NOTHING",
            (approval_id, copy.channel, copy.message_ts, copy.kind),
        )

    async def due(self, column: DueColumn, now: float) -> list[Route]:
        """Routes whose reminder (or escalation) is due, of requests that can still be decided."""
        rows = await self.db.fetchall(
            f"SELECT {ROUTE_COLUMNS} FROM approval_routes"
            f" WHERE {column} IS NOT NULL AND {column} <= ?" + _STILL_OPEN + f" ORDER BY {column}",
            (now, now),
        )
        return [Route.from_row(r) for r in rows]

    async def claim_reminder(self, approval_id: str, now: float) -> Approval | None:
        """Take the due reminder of a request, audited as `reminded`; the request for the one
        caller whose claim landed, None for anyone else or a request decided meanwhile."""
        async with self.db.transaction() as tx:
            won = await tx.execute(
                "UPDATE approval_routes SET remind_at = NULL, reminded_at = ?"
                " WHERE approval_id = ? AND remind_at IS NOT NULL" + _STILL_OPEN,
                (now, approval_id, now),
            )
            if not won:
                return None
            approval = await _recorded(tx, approval_id)
            await audit_in(tx, AuditEntry("reminded", approval=approval))
        return approval

    async def claim_escalation(self, approval_id: str, now: float) -> Approval | None:
        """Take the due escalation of a request, widening its approvers by its policy's
        `escalate_to`, audited as `escalated`; as `claim_reminder`, the request or None."""
        async with self.db.transaction() as tx:
            approval = await _recorded(tx, approval_id)
            added = list(approval.policy.escalate_to)
            won = await tx.execute(
                "UPDATE approval_routes SET escalate_at = NULL, escalated_at = ?,"
                " escalated_to = ? WHERE approval_id = ? AND escalate_at IS NOT NULL" + _STILL_OPEN,
                (now, json.dumps(added), approval_id, now),
            )
            if not won:
                return None
            await audit_in(tx, AuditEntry("escalated", approval=approval, detail=", ".join(added)))
        return approval


async def _recorded(tx: Statements, approval_id: str) -> Approval:
    approval = await approval_in(tx, approval_id)
    assert approval is not None  # routes are made for recorded approvals only
    return approval
