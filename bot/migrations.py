"""The bot's tables and every change made to them since, as one ordered list of migrations.

`MIGRATIONS[n - 1]` takes a database from schema version `n - 1` to `n`; the table
`schema_version` records each version applied, as langgraph-checkpoint-postgres's
`checkpoint_migrations` does. To change the schema, append a `Migration` at the end (never
edit or reorder a released one): its steps are SQL in SQLite's words, rendered for PostgreSQL
by `render()`, or a coroutine for what SQL alone cannot say (look at the columns first, copy
rows with a transformation). `ALTER TABLE … RENAME COLUMN`, `DROP COLUMN`, `RENAME TO` and
`INSERT … SELECT` read the same on both backends.

`migrate()` runs the missing ones in one transaction with the version rows, so a process that
dies part-way leaves the database as it was. Processes that start together take turns: on
PostgreSQL under the app's set-up lock (`bot.connections.setup_lock`, taken by
`Database.open`), on SQLite under the write lock the transaction takes first
(`BEGIN IMMEDIATE`); the second reads the version the first wrote and has nothing to do.

Versions 1 to 4 are the schema as released before the version table: their statements are
`IF NOT EXISTS` or look first, so that a database made by that code is adopted as it stands,
gaining only what it lacks (`approvals.card_status`, the outbox's retry columns…).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from bot.db import Database, Statements

Dialect = Literal["sqlite", "postgresql"]
Step = str | Callable[["Statements", Dialect], Awaitable[None]]


@dataclass(frozen=True)
class Migration:
    description: str
    steps: tuple[Step, ...]


log = logging.getLogger(__name__)


class SchemaTooNew(RuntimeError):
    """The database was migrated by a newer release than this one."""


async def table_columns(tx: Statements, dialect: Dialect, table: str) -> set[str]:
    if dialect == "sqlite":
        return {row["name"] for row in await tx.fetchall(f"PRAGMA table_info({table})")}
    rows = await tx.fetchall(
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND table_name = ?",
        (table,),
    )
    return {row["column_name"] for row in rows}


async def _card_status(tx: Statements, dialect: Dialect) -> None:
    """Added after the first release: cards drawn before it are taken to show their
    approval's status, so no redraw storm follows the upgrade."""
    if "card_status" in await table_columns(tx, dialect, "approvals"):
        return
    await tx.execute("ALTER TABLE approvals ADD COLUMN card_status TEXT")
    await tx.execute("UPDATE approvals SET card_status = status WHERE message_ts IS NOT NULL")


async def _outbox_retries(tx: Statements, dialect: Dialect) -> None:
    """A database made by the release between versioned migrations and this one may have
    the columns already."""
    have = await table_columns(tx, dialect, "outbox")
    if "attempts" not in have:
        await tx.execute("ALTER TABLE outbox ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0")
    if "next_at" not in have:
        await tx.execute(render("ALTER TABLE outbox ADD COLUMN next_at REAL", dialect))


async def _decision_audit_trigger(tx: Statements, dialect: Dialect) -> None:
    """SQLite has no data-modifying `WITH`, so a claim's audit record is written by a trigger
    on the claim's update, in its statement: one trip to the database instead of four (BEGIN,
    UPDATE, INSERT, COMMIT). PostgreSQL's claim writes it in a `WITH` (`Store.claim`)."""
    if dialect != "sqlite":
        return
    await tx.execute(
        "CREATE TRIGGER IF NOT EXISTS approvals_decided AFTER UPDATE OF status ON approvals"
        " WHEN old.status = 'pending' AND new.decided_event IS NOT NULL BEGIN"
        " INSERT INTO audit (at, event, approval_id, conversation, tool, args, actor, reason,"
        " detail) VALUES (new.decided_at, new.decided_event, new.id, new.conversation,"
        " new.tool, new.args, new.decided_by, new.reason, new.decided_detail); END"
    )


# A gated call's journal entry: the same in `journal` (version 1) and in `executions`, which
# replaced it (version 2).
_JOURNAL_COLUMNS = """thread_id TEXT NOT NULL,
    tool_call_id TEXT NOT NULL,
    tool TEXT NOT NULL,
    args TEXT NOT NULL,
    status TEXT NOT NULL,
    result TEXT,
    result_status TEXT,
    started_at REAL NOT NULL,
    finished_at REAL"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        "the tables of the first release, and approvals.card_status",
        (
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
            "CREATE INDEX IF NOT EXISTS approvals_by_conversation"
            " ON approvals (conversation, status)",
            # The expiry sweep every 2 s reads only pending approvals, never the history.
            "CREATE INDEX IF NOT EXISTS approvals_expiring ON approvals (expires_at)"
            " WHERE status = 'pending'",
            """CREATE TABLE IF NOT EXISTS seen_events (
    key TEXT PRIMARY KEY,
    seen_at REAL NOT NULL
)""",
            "CREATE INDEX IF NOT EXISTS seen_events_by_time ON seen_events (seen_at)",
            f"""CREATE TABLE IF NOT EXISTS journal (
    {_JOURNAL_COLUMNS},
    PRIMARY KEY (thread_id, tool_call_id)
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
            # Thread messages on their way to Slack: a row lives from just before the post to
            # just after it, so what a stopped process was posting is posted at the next start.
            """CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation TEXT NOT NULL,
    text TEXT NOT NULL,
    created_at REAL NOT NULL
)""",
            """CREATE TABLE IF NOT EXISTS votes (
    approval_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (approval_id, user_id)
)""",
            _card_status,
            # The sweeper asks every 30 s which cards lag their approval: only those rows.
            "CREATE INDEX IF NOT EXISTS approvals_cards_behind ON approvals (decided_at)"
            " WHERE card_status IS NULL OR card_status <> status",
        ),
    ),
    Migration(
        "the journal keyed by call key (executions), runs in progress, outbox retries",
        (
            # Keyed by the call's key (the interrupt id of its tool task): model tool-call ids
            # repeat (`call_0` in every answer from some servers), keys never do.
            f"""CREATE TABLE IF NOT EXISTS executions (
    call_key TEXT PRIMARY KEY,
    {_JOURNAL_COLUMNS}
)""",
            # A run in progress, from its start until the approvals table agrees with the
            # graph: what a stopped process leaves here is settled at the next start, on
            # behalf of `requester`.
            """CREATE TABLE IF NOT EXISTS runs (
    conversation TEXT PRIMARY KEY,
    requester TEXT NOT NULL,
    started_at REAL NOT NULL
)""",
            # Messages Slack refused are tried again with backoff while the bot runs.
            _outbox_retries,
            # The old journal was keyed by the model's tool-call id; its entries move to
            # `executions` under the key of the approval they ran for, and it goes.
            "INSERT INTO executions (call_key, thread_id, tool_call_id, tool, args, status,"
            " result, result_status, started_at, finished_at) SELECT a.interrupt_id,"
            " j.thread_id, j.tool_call_id, j.tool, j.args, j.status, j.result, j.result_status,"
            " j.started_at, j.finished_at FROM journal j JOIN approvals a"
            " ON a.conversation = j.thread_id AND a.tool_call_id = j.tool_call_id"
            # SQLite reads an upsert's ON CONFLICT after a join only behind a WHERE.
            " WHERE true ON CONFLICT (call_key) DO NOTHING",
            "DROP TABLE journal",
        ),
    ),
    Migration(
        "batch cards, routing (routes, copies, reminders, escalations), Home viewers",
        (
            # Where each call's "Approve all / Deny all" card is, to redraw it as its calls
            # are decided.
            """CREATE TABLE IF NOT EXISTS batch_cards (
    approval_id TEXT PRIMARY KEY,
    channel TEXT NOT NULL,
    message_ts TEXT NOT NULL
)""",
            "CREATE INDEX IF NOT EXISTS batch_cards_by_message"
            " ON batch_cards (channel, message_ts)",
            # Routing (bot/routing.py, bot/reminders.py): one row per routed approval, the link
            # back to its thread, the reminder and escalation due times (NULL once sent: the
            # sweeps claim them with a conditional UPDATE) and who the approvers were widened to.
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
            # The cards posted besides the thread's own (approvals.message_ts): one per DM or
            # channel.
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
        ),
    ),
    Migration(
        "LangGraph Server threads",
        (
            # The LangGraph Server thread of each conversation, when the agent runs there.
            """CREATE TABLE IF NOT EXISTS server_threads (
    conversation TEXT PRIMARY KEY,
    thread_id TEXT NOT NULL,
    created_at REAL NOT NULL
)""",
        ),
    ),
    Migration(
        "a decision's audit record written by the claim's own statement",
        (
            # What the audit record of the decision says (its event, and the edited arguments
            # of an edit), kept on the approval so that one statement can write both.
            "ALTER TABLE approvals ADD COLUMN decided_event TEXT",
            "ALTER TABLE approvals ADD COLUMN decided_detail TEXT",
            _decision_audit_trigger,
        ),
    ),
)

VERSION_TABLE = """CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at REAL NOT NULL
)"""

_POSTGRESQL = (
    (
        re.compile(r"\bINTEGER PRIMARY KEY AUTOINCREMENT\b"),
        "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
    ),
    # A 4-byte float cannot hold epoch seconds.
    (re.compile(r"\bREAL\b"), "DOUBLE PRECISION"),
)


def render(statement: str, dialect: Dialect) -> str:
    if dialect == "postgresql":
        for pattern, replacement in _POSTGRESQL:
            statement = pattern.sub(replacement, statement)
    return statement


async def schema_version(tx: Statements) -> int:
    row = await tx.fetchone("SELECT MAX(version) AS version FROM schema_version")
    return int(row["version"]) if row is not None and row["version"] is not None else 0


async def migrate(db: Database, migrations: Sequence[Migration] = MIGRATIONS) -> list[int]:
    """Bring the database to the last version; return the versions this call applied. The
    caller holds the set-up lock on PostgreSQL; SQLite's transaction is its own."""
    dialect = db.dialect
    await db.execute(render(VERSION_TABLE, dialect))
    async with db.transaction() as tx:
        current = await schema_version(tx)
        if current > len(migrations):
            raise SchemaTooNew(
                f"the database is at schema version {current}, but this release knows "
                f"versions up to {len(migrations)}: run the newer release, or point "
                "DATABASE_URL at another database"
            )
        applied = []
        for version, migration in enumerate(migrations[current:], start=current + 1):
            for step in migration.steps:
                if isinstance(step, str):
                    await tx.execute(render(step, dialect))
                else:
                    await step(tx, dialect)
            await tx.execute(
                "INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)",
                (version, migration.description, time.time()),
            )
            applied.append(version)
        if any(_decision_audit_trigger in m.steps for m in migrations):
            await _decision_audit_kept(tx, dialect)
    return applied


async def _decision_audit_kept(tx: Statements, dialect: Dialect) -> None:
    """The claim's audit trigger is there, whichever version this start began at. Without it
    a decision would land with no audit record, so one dropped by hand is made again, loudly."""
    if dialect != "sqlite":
        return
    found = await tx.fetchone(
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name = 'approvals_decided'"
    )
    if found is None:
        log.error(
            "the audit trigger approvals_decided was missing from the database and has been "
            "made again: decisions taken without it have no audit record"
        )
        await _decision_audit_trigger(tx, dialect)
