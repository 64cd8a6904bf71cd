"""The bot's tables: approvals, votes, event dedupe, the execution journal, the audit trail, the
conversation leases, the outbox of thread messages and the LangGraph Server threads.

Each statement is written once, in SQLite's words, and `statements()` renders it for the
backend: on PostgreSQL `REAL` becomes `DOUBLE PRECISION` (a 4-byte float cannot hold epoch
seconds) and the autoincrement key an identity column. A new table is one more entry in
`TABLES`; a new column goes in its table and in `ADDED_COLUMNS`, for databases made before.
"""

from __future__ import annotations

import re
from typing import Literal

Dialect = Literal["sqlite", "postgresql"]

TABLES: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS approvals (
    id TEXT PRIMARY KEY,
    interrupt_id TEXT NOT NULL UNIQUE,
    conversation TEXT NOT NULL,
    team_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    thread_ts TEXT NOT NULL,
    message_ts TEXT,
    tool_call_id TEXT NOT NULL,
    tool TEXT NOT NULL,
    args TEXT NOT NULL,
    description TEXT NOT NULL,
    requester TEXT NOT NULL,
    status TEXT NOT NULL,
    policy TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL,
    decided_by TEXT,
    decided_at REAL,
    reason TEXT,
    decision TEXT,
    resumed_at REAL,
    card_status TEXT
)""",
    "CREATE INDEX IF NOT EXISTS approvals_by_conversation ON approvals (conversation, status)",
    # The expiry sweep every 2 s reads only pending approvals, never the decided history.
    "CREATE INDEX IF NOT EXISTS approvals_expiring ON approvals (expires_at)"
    " WHERE status = 'pending'",
    """CREATE TABLE IF NOT EXISTS seen_events (
    key TEXT PRIMARY KEY,
    seen_at REAL NOT NULL
)""",
    "CREATE INDEX IF NOT EXISTS seen_events_by_time ON seen_events (seen_at)",
    """CREATE TABLE IF NOT EXISTS journal (
    thread_id TEXT NOT NULL,
    tool_call_id TEXT NOT NULL,
    tool TEXT NOT NULL,
    args TEXT NOT NULL,
    status TEXT NOT NULL,
    result TEXT,
    result_status TEXT,
    started_at REAL NOT NULL,
    finished_at REAL,
    PRIMARY KEY (thread_id, tool_call_id)
)""",
    # The execution journal, keyed by the call's key (the interrupt id of its tool task): model
    # tool-call ids repeat (`call_0` in every answer from some servers), keys never do.
    """CREATE TABLE IF NOT EXISTS executions (
    call_key TEXT PRIMARY KEY,
    thread_id TEXT NOT NULL,
    tool_call_id TEXT NOT NULL,
    tool TEXT NOT NULL,
    args TEXT NOT NULL,
    status TEXT NOT NULL,
    result TEXT,
    result_status TEXT,
    started_at REAL NOT NULL,
    finished_at REAL
)""",
    """CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    event TEXT NOT NULL,
    approval_id TEXT,
    conversation TEXT,
    tool TEXT,
    args TEXT,
    actor TEXT,
    reason TEXT,
    detail TEXT
)""",
    # Recovery asks "was this call's outcome ever reported?" per approval.
    "CREATE INDEX IF NOT EXISTS audit_by_approval ON audit (approval_id, event)",
    """CREATE TABLE IF NOT EXISTS leases (
    key TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at REAL NOT NULL
)""",
    # Thread messages on their way to Slack: a row lives from just before the post to just
    # after it, so what a stopped process was posting is posted at the next start.
    """CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation TEXT NOT NULL,
    text TEXT NOT NULL,
    created_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL
)""",
    # A run in progress, from its start until the approvals table agrees with the graph: what
    # a stopped process leaves here is settled at the next start, on behalf of `requester`.
    """CREATE TABLE IF NOT EXISTS runs (
    conversation TEXT PRIMARY KEY,
    requester TEXT NOT NULL,
    started_at REAL NOT NULL
)""",
    # Where each call's "Approve all / Deny all" card is, to redraw it as its calls are decided.
    """CREATE TABLE IF NOT EXISTS batch_cards (
    approval_id TEXT PRIMARY KEY,
    channel TEXT NOT NULL,
    message_ts TEXT NOT NULL
)""",
    "CREATE INDEX IF NOT EXISTS batch_cards_by_message ON batch_cards (channel, message_ts)",
    """CREATE TABLE IF NOT EXISTS votes (
    approval_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (approval_id, user_id)
)""",
    # The LangGraph Server thread of each conversation, when the agent runs there.
    """CREATE TABLE IF NOT EXISTS server_threads (
    conversation TEXT PRIMARY KEY,
    thread_id TEXT NOT NULL,
    created_at REAL NOT NULL
)""",
)

# Routing (bot/routing.py, bot/reminders.py): where each request went and what is due. Kept in
# tables of their own, so this change is new tables only, with nothing to alter or backfill.
ROUTING_TABLES: tuple[str, ...] = (
    # One row per routed approval: the link back to its thread, the reminder and escalation
    # due times (NULL once sent: the sweeps claim them with a conditional UPDATE) and who the
    # approvers were widened to.
    """CREATE TABLE IF NOT EXISTS approval_routes (
    approval_id TEXT PRIMARY KEY,
    permalink TEXT,
    remind_at REAL,
    escalate_at REAL,
    escalated_to TEXT,
    reminded_at REAL,
    escalated_at REAL
)""",
    "CREATE INDEX IF NOT EXISTS approval_routes_remind ON approval_routes (remind_at)"
    " WHERE remind_at IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS approval_routes_escalate ON approval_routes (escalate_at)"
    " WHERE escalate_at IS NOT NULL",
    # The cards posted besides the thread's own (approvals.message_ts): one per DM or channel.
    """CREATE TABLE IF NOT EXISTS approval_copies (
    approval_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    message_ts TEXT NOT NULL,
    kind TEXT NOT NULL,
    PRIMARY KEY (approval_id, channel)
)""",
    # People who have opened the app's Home tab: only theirs is republished on a change.
    """CREATE TABLE IF NOT EXISTS home_viewers (
    user_id TEXT PRIMARY KEY,
    opened_at REAL NOT NULL
)""",
)

TABLES += ROUTING_TABLES

# Columns added after a table was first released: (table, column, type, backfill). A database
# made before gets each one once, with its backfill, when the bot opens it.
ADDED_COLUMNS: tuple[tuple[str, str, str, str], ...] = (
    # Cards drawn before the column existed are taken to show their approval's status.
    (
        "approvals",
        "card_status",
        "TEXT",
        "UPDATE approvals SET card_status = status WHERE message_ts IS NOT NULL",
    ),
    # Messages Slack refused are tried again with backoff while the bot runs.
    ("outbox", "attempts", "INTEGER NOT NULL DEFAULT 0", "SELECT 1"),
    ("outbox", "next_at", "REAL", "SELECT 1"),
)

# Data carried from an older layout, idempotent, run at every open after the columns above.
MOVES: tuple[str, ...] = (
    # The journal of older versions was keyed by the model's tool-call id; its entries move
    # to `executions` under the key of the approval they ran for.
    "INSERT INTO executions (call_key, thread_id, tool_call_id, tool, args, status, result,"
    " result_status, started_at, finished_at) SELECT a.interrupt_id, j.thread_id,"
    " j.tool_call_id, j.tool, j.args, j.status, j.result, j.result_status, j.started_at,"
    " j.finished_at FROM journal j JOIN approvals a ON a.conversation = j.thread_id"
    " AND a.tool_call_id = j.tool_call_id ON CONFLICT (call_key) DO NOTHING",
    "DELETE FROM journal",
)

# Indexes on added columns, made once those exist, on new and old databases alike.
ON_ADDED_COLUMNS: tuple[str, ...] = (
    # The sweeper asks every 30 s which cards lag their approval: only those rows are indexed.
    "CREATE INDEX IF NOT EXISTS approvals_cards_behind ON approvals (decided_at)"
    " WHERE card_status IS NULL OR card_status <> status",
)

_POSTGRESQL = (
    (
        re.compile(r"\bINTEGER PRIMARY KEY AUTOINCREMENT\b"),
        "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
    ),
    (re.compile(r"\bREAL\b"), "DOUBLE PRECISION"),
)


def statements(dialect: Dialect) -> list[str]:
    return [render(statement, dialect) for statement in TABLES]


def render(statement: str, dialect: Dialect) -> str:
    if dialect == "postgresql":
        for pattern, replacement in _POSTGRESQL:
            statement = pattern.sub(replacement, statement)
    return statement
