"""The bot's tables: approvals, event dedupe, the execution journal, the audit trail."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS approvals (
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
    resumed_at REAL
);
CREATE INDEX IF NOT EXISTS approvals_by_conversation ON approvals (conversation, status);
CREATE TABLE IF NOT EXISTS seen_events (
    key TEXT PRIMARY KEY,
    seen_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS journal (
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
);
CREATE TABLE IF NOT EXISTS audit (
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
);
CREATE TABLE IF NOT EXISTS votes (
    approval_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (approval_id, user_id)
);
"""
