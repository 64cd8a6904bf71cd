"""Versioned migrations (`bot.migrations`), on SQLite and PostgreSQL: a new database gets the
released schema and its version, a database made before versions is adopted as it stands,
processes migrating together apply each version once, and a migration can rename, move and
drop."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import aiosqlite
import psycopg
import pytest

from bot.connections import is_postgres, sqlite_path
from bot.db import Database, Statements, to_psycopg
from bot.migrations import MIGRATIONS, Dialect, Migration, SchemaTooNew, migrate, render
from bot.store import Store
from tests.support.pg import BACKENDS, database_url

REPO = Path(__file__).resolve().parents[2]

# The schema as the code before versioned migrations made it (bot/schema.py of that release),
# without `approvals.card_status` when `card_status` is False: the two kinds of database out
# there with no `schema_version` table.
LANDED_TABLES = (
    """CREATE TABLE IF NOT EXISTS approvals (
    id TEXT PRIMARY KEY, interrupt_id TEXT NOT NULL UNIQUE, conversation TEXT NOT NULL,
    team_id TEXT NOT NULL, channel TEXT NOT NULL, thread_ts TEXT NOT NULL, message_ts TEXT,
    tool_call_id TEXT NOT NULL, tool TEXT NOT NULL, args TEXT NOT NULL,
    description TEXT NOT NULL, requester TEXT NOT NULL, status TEXT NOT NULL,
    policy TEXT NOT NULL, created_at REAL NOT NULL, expires_at REAL, decided_by TEXT,
    decided_at REAL, reason TEXT, decision TEXT, resumed_at REAL{card_status})""",
    "CREATE INDEX IF NOT EXISTS approvals_by_conversation ON approvals (conversation, status)",
    "CREATE INDEX IF NOT EXISTS approvals_expiring ON approvals (expires_at)"
    " WHERE status = 'pending'",
    "CREATE TABLE IF NOT EXISTS seen_events (key TEXT PRIMARY KEY, seen_at REAL NOT NULL)",
    "CREATE INDEX IF NOT EXISTS seen_events_by_time ON seen_events (seen_at)",
    """CREATE TABLE IF NOT EXISTS journal (
    thread_id TEXT NOT NULL, tool_call_id TEXT NOT NULL, tool TEXT NOT NULL, args TEXT NOT NULL,
    status TEXT NOT NULL, result TEXT, result_status TEXT, started_at REAL NOT NULL,
    finished_at REAL, PRIMARY KEY (thread_id, tool_call_id))""",
    """CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, event TEXT NOT NULL,
    approval_id TEXT, conversation TEXT, tool TEXT, args TEXT, actor TEXT, reason TEXT,
    detail TEXT)""",
    "CREATE INDEX IF NOT EXISTS audit_by_approval ON audit (approval_id, event)",
    "CREATE TABLE IF NOT EXISTS leases (key TEXT PRIMARY KEY, holder TEXT NOT NULL,"
    " expires_at REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " conversation TEXT NOT NULL, text TEXT NOT NULL, created_at REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS votes (approval_id TEXT NOT NULL, user_id TEXT NOT NULL,"
    " at REAL NOT NULL, PRIMARY KEY (approval_id, user_id))",
)
CARDS_BEHIND = (
    "CREATE INDEX IF NOT EXISTS approvals_cards_behind ON approvals (decided_at)"
    " WHERE card_status IS NULL OR card_status <> status"
)

OPEN_AND_REPORT = """
import asyncio, json, sys
from bot.db import Database
from bot.migrations import migrate

async def main():
    async with await Database.open(sys.argv[1]) as db:
        print(json.dumps(await migrate(db)), flush=True)

asyncio.run(main())
"""


async def make_landed(url: str, *, card_status: bool, approvals: int = 0) -> None:
    """A database as the landed code left it, made without the bot's code: its tables, no
    version table, and `approvals` approved rows (the first with a posted card)."""
    dialect: Dialect = "postgresql" if is_postgres(url) else "sqlite"
    column = ",\n    card_status TEXT" if card_status else ""
    statements = [render(s.format(card_status=column), dialect) for s in LANDED_TABLES]
    if card_status:
        statements.append(CARDS_BEHIND)
    insert = (
        "INSERT INTO approvals (id, interrupt_id, conversation, team_id, channel, thread_ts,"
        " message_ts, tool_call_id, tool, args, description, requester, status, policy,"
        " created_at) VALUES (?, ?, 'c', 'T', 'C', '1.0', ?, ?, 't', '{}', 'd', 'U',"
        " 'approved', '{}', 1.0)"
    )
    rows = [
        (f"ap_{n}", f"i{n}", "1.0" if n == 1 else None, f"call_{n}")
        for n in range(1, approvals + 1)
    ]
    # The first call ran: its journal entry, keyed by the model's tool-call id.
    journal = (
        "INSERT INTO journal (thread_id, tool_call_id, tool, args, status, result,"
        " result_status, started_at, finished_at)"
        " VALUES ('c', 'call_1', 't', '{}', 'finished', 'done', 'success', 1.0, 2.0)"
    )
    if dialect == "sqlite":
        async with aiosqlite.connect(sqlite_path(url)) as conn:
            for statement in statements:
                await conn.execute(statement)
            await conn.executemany(insert, rows)
            if rows:
                await conn.execute(journal)
            await conn.commit()
        return
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as pg:
        for statement in statements:
            await pg.execute(statement)
        for row in rows:
            await pg.execute(to_psycopg(insert), row)
        if rows:
            await pg.execute(journal)


async def shape(db: Database) -> dict[str, object]:
    """Each table's columns (name, type, nullability, key) and each index's definition."""
    if db.dialect == "sqlite":
        tables = [
            r["name"]
            for r in await db.fetchall(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
                " AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        found: dict[str, object] = {}
        for table in tables:
            found[table] = sorted(
                (r["name"], r["type"], r["notnull"], r["pk"])
                for r in await db.fetchall(f"PRAGMA table_info({table})")
            )
        indexes = await db.fetchall(
            "SELECT name, tbl_name FROM sqlite_master WHERE type = 'index' ORDER BY name"
        )
        found["indexes"] = [(r["name"], r["tbl_name"]) for r in indexes]
        return found
    columns = await db.fetchall(
        "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns"
        " WHERE table_schema = current_schema() ORDER BY table_name, column_name"
    )
    indexes = await db.fetchall(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()"
        " ORDER BY indexname"
    )
    return {
        "columns": [
            (r["table_name"], r["column_name"], r["data_type"], r["is_nullable"]) for r in columns
        ],
        "indexes": [(r["indexname"], r["indexdef"]) for r in indexes],
    }


async def versions(db: Database) -> list[int]:
    rows = await db.fetchall("SELECT version FROM schema_version ORDER BY version")
    return [r["version"] for r in rows]


async def without_versions(db: Database) -> dict[str, object]:
    found = await shape(db)
    found.pop("schema_version", None)
    for key in ("columns", "indexes"):
        if key in found:
            listed: list[tuple[str, ...]] = found[key]  # type: ignore[assignment]
            found[key] = [x for x in listed if not any("schema_version" in f for f in x)]
    return found


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_new_database_gets_the_landed_schema_and_version_1(
    backend: str, tmp_path: Path
) -> None:
    (tmp_path / "new").mkdir()
    (tmp_path / "landed").mkdir()
    async with (
        database_url(backend, tmp_path / "new") as new,
        database_url(backend, tmp_path / "landed") as landed,
    ):
        await make_landed(landed, card_status=True)
        async with await Database.open(new) as fresh, await Database.open(landed) as adopted:
            assert await versions(fresh) == list(range(1, len(MIGRATIONS) + 1))
            # Adopting a database made with every landed table changes nothing in it, so the
            # two are alike only if version 1 makes exactly the landed schema.
            assert await without_versions(fresh) == await without_versions(adopted)


@pytest.mark.parametrize("card_status", [True, False], ids=["with_card_status", "before_it"])
@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_database_made_before_versions_is_adopted_with_its_rows(
    backend: str, card_status: bool, tmp_path: Path
) -> None:
    async with database_url(backend, tmp_path) as url:
        await make_landed(url, card_status=card_status, approvals=2)
        async with await Database.open(url) as adopted:
            assert await versions(adopted) == list(range(1, len(MIGRATIONS) + 1))
            rows = await adopted.fetchall(
                "SELECT id, status, card_status FROM approvals ORDER BY id"
            )
            if card_status:
                # The column was there: its values are the database's own (none were set).
                assert [r["card_status"] for r in rows] == [None, None]
            else:
                # Added now: a posted card is taken to show its approval's status.
                assert [r["card_status"] for r in rows] == ["approved", None]
            assert [r["status"] for r in rows] == ["approved", "approved"]
            # The journal's entry moved under the key of the approval it ran for.
            moved = await adopted.fetchall("SELECT call_key, status, result FROM executions")
            assert moved == [{"call_key": "i1", "status": "finished", "result": "done"}]
            names = await adopted.fetchall(
                "SELECT name FROM sqlite_master WHERE type = 'index'"
                if backend == "sqlite"
                else "SELECT indexname AS name FROM pg_indexes WHERE schemaname = current_schema()"
            )
            assert {"name": "approvals_cards_behind"} in names
        async with await Database.open(url) as again:
            assert await migrate(again) == []


@pytest.mark.parametrize("backend", BACKENDS)
async def test_processes_migrating_together_apply_each_version_once(
    backend: str, tmp_path: Path
) -> None:
    async with database_url(backend, tmp_path) as url:
        procs = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                OPEN_AND_REPORT,
                url,
                cwd=REPO,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            for _ in range(4)
        ]
        try:
            # A process that never exits (a connection left open) fails here within a minute,
            # not at the suite's timeout; one that fails shows its stderr below.
            outputs = [await asyncio.wait_for(p.communicate(), 60) for p in procs]
        finally:
            for p in procs:
                if p.returncode is None:
                    p.kill()
        assert [p.returncode for p in procs] == [0] * 4, [err.decode() for _, err in outputs]
        # Database.open migrated; the second migrate() in each process found nothing to do.
        assert [json.loads(out) for out, _ in outputs] == [[]] * 4
        async with await Database.open(url) as db:
            assert await versions(db) == list(range(1, len(MIGRATIONS) + 1))


async def _move_votes_into_audit(tx: Statements, dialect: Dialect) -> None:
    for row in await tx.fetchall("SELECT approval_id, user_id, voted_at FROM votes"):
        await tx.execute(
            "INSERT INTO audit (at, event, approval_id, actor) VALUES (?, 'vote', ?, ?)",
            (row["voted_at"], row["approval_id"], row["user_id"]),
        )


@pytest.mark.parametrize("backend", BACKENDS)
async def test_an_approval_pending_before_version_5_is_claimed_with_its_audit_record(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Version 5 moves a claim's audit record into the claim's statement (a trigger on
    SQLite): an approval asked for before the upgrade and decided after it is audited."""
    async with database_url(backend, tmp_path) as url:
        with monkeypatch.context() as before:
            before.setattr("bot.db.migrate", lambda db: migrate(db, MIGRATIONS[:4]))
            async with await Database.open(url) as old:
                assert await versions(old) == [1, 2, 3, 4]
                await old.execute(
                    "INSERT INTO approvals (id, interrupt_id, conversation, team_id, channel,"
                    " thread_ts, tool_call_id, tool, args, description, requester, status,"
                    " policy, created_at) VALUES ('ap_1', 'i1', 'slack:T:C:1.0', 'T', 'C',"
                    " '1.0', 'call1', 'scale_down', '{}', '', 'U0ALICE', 'pending', '{}', 1.0)"
                )
        async with await Database.open(url) as db:
            assert await versions(db) == [1, 2, 3, 4, 5]
            store = Store(db)
            decided = await store.claim("ap_1", "rejected", by="U0BOB", event="denied")
            assert decided is not None and decided.decided_event == "denied"
            [record] = await store.audit_log()
            assert (record.event, record.approval_id, record.actor) == ("denied", "ap_1", "U0BOB")
            assert await store.claim("ap_1", "approved", by="U0CAROL") is None
            assert len(await store.audit_log()) == 1


async def test_a_dropped_audit_trigger_is_made_again_at_start_up(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path / 'bot.sqlite3'}"
    async with await Database.open(url) as db:
        await db.execute("DROP TRIGGER approvals_decided")
        await db.execute(
            "INSERT INTO approvals (id, interrupt_id, conversation, team_id, channel,"
            " thread_ts, tool_call_id, tool, args, description, requester, status,"
            " policy, created_at) VALUES ('ap_1', 'i1', 'slack:T:C:1.0', 'T', 'C',"
            " '1.0', 'call1', 'scale_down', '{}', '', 'U0ALICE', 'pending', '{}', 1.0)"
        )
    async with await Database.open(url) as db:
        assert "approvals_decided was missing" in caplog.text
        store = Store(db)
        assert await store.claim("ap_1", "approved", by="U0BOB") is not None
        [record] = await store.audit_log()
        assert (record.event, record.approval_id) == ("approved", "ap_1")


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_migration_renames_moves_and_drops_and_fails_whole(
    backend: str, tmp_path: Path
) -> None:
    async with database_url(backend, tmp_path) as url, await Database.open(url) as db:
        await db.execute(
            "INSERT INTO votes (approval_id, user_id, at) VALUES ('ap_1', 'U0BOB', 5.0)"
        )
        later = (
            *MIGRATIONS,
            Migration("rename votes.at", ("ALTER TABLE votes RENAME COLUMN at TO voted_at",)),
            Migration("votes into the audit", (_move_votes_into_audit, "DROP TABLE votes")),
        )
        broken = (*later, Migration("half done", ("DROP TABLE leases", "SELECT nonsense")))
        with pytest.raises(Exception, match="nonsense"):
            await migrate(db, broken)
        # Nothing of the failed run stayed: not the versions before it, nor its first step.
        assert await versions(db) == list(range(1, len(MIGRATIONS) + 1))
        assert await db.fetchall("SELECT key FROM leases") == []

        assert await migrate(db, later) == [len(MIGRATIONS) + 1, len(MIGRATIONS) + 2]
        rows = await db.fetchall("SELECT event, approval_id, actor, at FROM audit")
        assert rows == [{"event": "vote", "approval_id": "ap_1", "actor": "U0BOB", "at": 5.0}]
        with pytest.raises(Exception, match="votes"):
            await db.fetchall("SELECT approval_id FROM votes")
        # The release before these migrations refuses the database rather than misread it.
        with pytest.raises(SchemaTooNew, match=f"schema version {len(MIGRATIONS) + 2}"):
            await migrate(db)
