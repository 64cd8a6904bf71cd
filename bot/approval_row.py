"""The approvals table's row: `Approval`, the statuses it moves through, and the one column
list every read of the table selects (`APPROVAL_COLUMNS`), kept beside `from_row` so the two
cannot drift."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from agent.policy import PolicySnapshot
from bot.db import Row, Statements, row_columns, row_values

Status = Literal["pending", "approved", "rejected", "withdrawn", "expired", "dropped"]
# `dropped`: the graph no longer waits on the call (the agent moved on without it), so it
# can never be decided; it was not run.
DECIDED: tuple[Status, ...] = ("approved", "rejected", "withdrawn", "expired", "dropped")
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
    policy: PolicySnapshot
    created_at: float
    expires_at: float | None
    decided_by: str | None
    decided_at: float | None
    reason: str | None
    decision: dict[str, Any] | None
    resumed_at: float | None
    card_status: Status | None
    """The status the Slack card shows, once it has been drawn."""
    decided_event: str | None
    """The event of the decision's audit record (`approved`, `denied`, `edited`…)."""
    decided_detail: str | None
    """Its audit record's detail: an edit's arguments, as JSON."""

    @classmethod
    def from_row(cls, row: Row) -> Approval:
        values = row_values(cls, row)
        for key in ("args", "decision"):
            if values[key] is not None:
                values[key] = json.loads(values[key])
        values["policy"] = PolicySnapshot.model_validate_json(values["policy"])
        return cls(**values)


APPROVAL_COLUMNS = row_columns(Approval)


async def approval_in(where: Statements, approval_id: str) -> Approval | None:
    """One approval, read in the caller's transaction (or in autocommit)."""
    row = await where.fetchone(
        f"SELECT {APPROVAL_COLUMNS} FROM approvals WHERE id = ?", (approval_id,)
    )
    return Approval.from_row(row) if row is not None else None
