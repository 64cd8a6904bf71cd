"""Showing the audit trail for `slack-approvals audit`.

Kept apart from the store so the command loads only the database layer: it must answer in
well under a second, and the agent's libraries take longer than that just to import.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, replace
from typing import Any

from bot.audit_trail import AuditRecord

# Audit event names written before the vocabulary was made one (Deny/Denied everywhere);
# rows already in a database keep their old name and are read under the new one.
RENAMED_EVENTS = {"rejected": "denied"}


def event_name(stored: str) -> str:
    return RENAMED_EVENTS.get(stored, stored)


def under_current_names(records: list[AuditRecord]) -> list[AuditRecord]:
    """The records with old event names under their new one."""
    return [replace(record, event=event_name(record.event)) for record in records]


def as_json(record: AuditRecord) -> str:
    """One line of JSON; the arguments as an object, not a string holding JSON."""
    fields: dict[str, Any] = asdict(record)
    if record.args is not None:
        fields["args"] = _json_or_text(record.args)
    return json.dumps(fields, ensure_ascii=False)


def as_text(record: AuditRecord) -> str:
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(record.at))
    parts = [when, record.event, record.tool or "-", record.args or "", record.actor or "-"]
    if record.reason:
        parts.append(f"reason={record.reason}")
    if record.detail:
        parts.append(record.detail[:200])
    return "  ".join(parts)


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text
