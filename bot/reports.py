"""Read-only questions about the approvals as a whole, asked from outside any conversation:
the `/metrics` gauges and the benchmarks' counts. The approval store (`store.py`) owns every
write."""

from __future__ import annotations

from bot.db import Statements


async def approvals_by_status(db: Statements) -> dict[str, int]:
    """How many approvals are in each status; statuses with none are absent."""
    rows = await db.fetchall("SELECT status, COUNT(*) AS n FROM approvals GROUP BY status")
    return {str(row["status"]): int(row["n"]) for row in rows}


async def waiting_for_slack(db: Statements) -> dict[str, int]:
    """What Slack has not taken yet: thread messages in the outbox, and pending approvals
    whose card was never posted."""
    messages = await db.fetchone("SELECT COUNT(*) AS n FROM outbox")
    cards = await db.fetchone(
        "SELECT COUNT(*) AS n FROM approvals WHERE status = 'pending' AND message_ts IS NULL"
    )
    return {
        "message": int(messages["n"]) if messages else 0,
        "card": int(cards["n"]) if cards else 0,
    }
