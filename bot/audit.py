"""Reading the audit trail for `slack-approvals audit`.

Kept apart from the store so the command loads only the database layer: it must answer in
well under a second, and the agent's libraries take longer than that just to import.
"""

from __future__ import annotations

import json
import time
from typing import Any

from bot.db import Database, Row

# Audit event names written before the vocabulary was made one (Deny/Denied everywhere);
# rows already in a database keep their old name and are read under the new one.
RENAMED_EVENTS = {"rejected": "denied"}


def event_name(stored: str) -> str:
    return RENAMED_EVENTS.get(stored, stored)


async def read(
    db: Database,
    *,
    since: float | None = None,
    tool: str | None = None,
    actor: str | None = None,
    as_written: bool = False,
) -> list[Row]:
    """The audit records, oldest first; old event names under their new one unless
    `as_written`."""
    clauses, params = [], []
    for clause, value in (("at >= ?", since), ("tool = ?", tool), ("actor = ?", actor)):
        if value is not None:
            clauses.append(clause)
            params.append(value)
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    rows = await db.fetchall(f"SELECT * FROM audit{where} ORDER BY seq", params)
    if not as_written:
        for row in rows:
            row["event"] = event_name(row["event"])
    return rows


def as_json(row: Row) -> str:
    """One line of JSON; the arguments as an object, not a string holding JSON."""
    record: dict[str, Any] = dict(row)
    if record.get("args") is not None:
        record["args"] = _json_or_text(record["args"])
    return json.dumps(record, ensure_ascii=False)


def as_text(row: Row) -> str:
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(row["at"]))
    parts = [when, row["event"], row["tool"] or "-", row["args"] or "", row["actor"] or "-"]
    if row["reason"]:
        parts.append(f"reason={row['reason']}")
    if row["detail"]:
        parts.append(row["detail"][:200])
    return "  ".join(parts)


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text
