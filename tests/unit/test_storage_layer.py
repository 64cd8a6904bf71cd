"""The storage layer owns all SQL (docs/design.md, "Storage and migrations"): no module of
`bot/` outside it and nothing in `bench/` writes a statement, nothing anywhere selects `*`,
and each row type reads exactly the columns its column list selects, on a real database."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from agent.policy import PolicySnapshot
from bot.approval_row import APPROVAL_COLUMNS, Approval
from bot.audit_trail import AUDIT_COLUMNS, AuditRecord
from bot.batch_store import BATCH_CARD_COLUMNS, BatchCard, BatchCardStore
from bot.db import Database
from bot.journal_store import EXECUTION_COLUMNS, Execution, SqlJournal
from bot.migrations import table_columns
from bot.outbox_queue import OUTBOX_MESSAGE_COLUMNS, OutboxMessage
from bot.route_store import COPY_COLUMNS, ROUTE_COLUMNS, Copy, Route, RouteStore
from bot.store import Store

REPO = Path(__file__).resolve().parents[2]

# The modules allowed to hold SQL: the storage layer as design.md's drawing lists it.
STORAGE_MODULES = frozenset(
    {
        "bot/db.py",
        "bot/connections.py",
        "bot/migrations.py",
        "bot/lease.py",
        "bot/store.py",
        "bot/approval_row.py",
        "bot/approval_reads.py",
        "bot/outbox_queue.py",
        "bot/audit_trail.py",
        "bot/journal_store.py",
        "bot/route_store.py",
        "bot/batch_store.py",
        "bot/home_viewers.py",
        "bot/server_threads.py",
        "bot/reports.py",
    }
)

# bench/floor.py times the cheapest statements a click could make, on tables of its own in a
# file of its own: a floor measured apart from the bot's storage layer on purpose.
OWN_TABLES = frozenset({"bench/floor.py"})

# What a statement starts with, in the words the code writes them in (upper case).
SQL = re.compile(
    r"\b(SELECT\s+(\*|[\w.]+\s*(,|AS\b|FROM\b))|INSERT\s+INTO|UPDATE\s+\w+\s+SET"
    r"|DELETE\s+FROM|(CREATE|ALTER|DROP)\s+(TABLE|INDEX)|PRAGMA\s+\w+)"
)
SELECT_ALL = re.compile(r"\b(SELECT|RETURNING)\s+(\w+\.)?\*")


def _code_strings(path: Path) -> list[tuple[int, str]]:
    """The string literals of a module that are not docstrings (prose may name statements),
    with the fixed parts of f-strings."""
    tree = ast.parse(path.read_text(), str(path))
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


def _modules(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (REPO / folder).rglob("*.py"))


def test_the_storage_modules_exist_and_are_those_design_md_draws() -> None:
    assert sorted(m for m in STORAGE_MODULES if not (REPO / m).is_file()) == []
    design = (REPO / "docs" / "design.md").read_text()
    drawing = design[design.index("\n storage ") :]
    drawing = drawing[: drawing.index("```")]
    # The module column of the drawing's storage block.
    drawn = {m.group(1) for m in re.finditer(r"^.{17}(bot/\w+\.py)", drawing, re.MULTILINE)}
    assert drawn == STORAGE_MODULES


def test_no_sql_outside_the_storage_layer() -> None:
    found = [
        f"{path.relative_to(REPO)}:{line}: {text!r}"
        for path in _modules("bot", "bench")
        if path.relative_to(REPO).as_posix() not in STORAGE_MODULES | OWN_TABLES
        for line, text in _code_strings(path)
        if SQL.search(text)
    ]
    assert found == []


def test_nothing_selects_every_column() -> None:
    found = [
        f"{path.relative_to(REPO)}:{line}: {text!r}"
        for path in _modules("bot", "bench", "agent")
        for line, text in _code_strings(path)
        if SELECT_ALL.search(text)
    ]
    assert found == []


def test_the_guard_sees_sql() -> None:
    """The patterns above catch the statements the code writes, and not its prose."""
    for statement in (
        "SELECT * FROM approvals",
        "SELECT id FROM approvals WHERE x = ?",
        "SELECT 1 AS one FROM votes",
        "SELECT a.id, a.tool FROM approvals a",
        "INSERT INTO votes (approval_id) VALUES (?)",
        " UPDATE approvals SET status = ?",
        "DELETE FROM runs",
        "PRAGMA journal_mode=WAL",
    ):
        assert SQL.search(statement), statement
    assert SELECT_ALL.search("SELECT a.* FROM approvals a JOIN batch_cards b")
    assert SELECT_ALL.search(" RETURNING *")
    for prose in ("Select the approvers", "one conditional UPDATE that only the first wins"):
        assert not SQL.search(prose), prose


@pytest.mark.parametrize(
    ("row_type", "columns", "table", "whole"),
    [
        (Approval, APPROVAL_COLUMNS, "approvals", True),
        (Route, ROUTE_COLUMNS, "approval_routes", True),
        (AuditRecord, AUDIT_COLUMNS, "audit", True),
        (Copy, COPY_COLUMNS, "approval_copies", False),
        (BatchCard, BATCH_CARD_COLUMNS, "batch_cards", False),
        (Execution, EXECUTION_COLUMNS, "executions", False),
        (OutboxMessage, OUTBOX_MESSAGE_COLUMNS, "outbox", False),
    ],
)
async def test_each_column_list_names_its_row_type_fields_and_real_columns(
    tmp_path: Path, row_type: type, columns: str, table: str, whole: bool
) -> None:
    """A column list is its row type's fields, each a column of the migrated table; a row
    type that is the whole row names every column."""
    fields = [f.strip() for f in columns.split(",")]
    assert fields == list(row_type.__dataclass_fields__)
    async with await Database.open(f"sqlite:///{tmp_path / 'bot.sqlite3'}") as db:
        have = await table_columns(db, db.dialect, table)
    assert set(fields) == have if whole else set(fields) < have


async def test_rows_round_trip_through_their_column_lists(tmp_path: Path) -> None:
    async with await Database.open(f"sqlite:///{tmp_path / 'bot.sqlite3'}") as db:
        store = Store(db)
        policy = PolicySnapshot(approvers=("U0BOB",), escalate_to=("U0CAROL",), remind_after_s=1)
        written, created = await store.create_approval(
            interrupt_id="call-key-1",
            conversation="slack:T0:C0OPS:1.000001",
            team_id="T0",
            channel="C0OPS",
            thread_ts="1.000001",
            tool_call_id="call_0",
            tool="scale_down",
            args={"cluster_id": "cl-001", "replicas": 2},
            description="Scale down.",
            requester="U0ALICE",
            policy=policy,
            expires_at=None,
        )
        assert created and written.policy == policy
        assert await store.get(written.id) == written
        assert await store.requested_by("U0ALICE", 5) == [written]
        assert await store.call_key_for(written.conversation, "call_0") == "call-key-1"

        routes = RouteStore(db)
        assert await routes.open_route(written.id, "https://perma/link", 5.0, 6.0)
        assert not await routes.open_route(written.id, None, None, None)
        assert await routes.route(written.id) == Route(
            written.id, "https://perma/link", 5.0, 6.0, [], None, None
        )
        escalated = await routes.claim_escalation(written.id, now=7.0)
        assert escalated == written
        route = await routes.route(written.id)
        assert route is not None and route.escalated_to == ["U0CAROL"] and route.escalated_at == 7
        await routes.add_copy(written.id, Copy("D0BOB", "2.000002", "dm"))
        assert await routes.copies(written.id) == [Copy("D0BOB", "2.000002", "dm")]

        batches = BatchCardStore(db)
        card = BatchCard("C0OPS", "3.000003")
        await batches.record(card, [written.id])
        assert await batches.card_of(written.id) == card
        assert await batches.approvals_on(card) == [written]

        journal = SqlJournal(db)
        assert (
            await journal.begin("call-key-1", written.conversation, "call_0", "scale_down", {})
            is None
        )
        await journal.finish("call-key-1", "scaled", "success")
        assert await store.execution("call-key-1") == Execution(
            "{}", "finished", "scaled", "success"
        )
        [(unreported, execution)] = await store.unreported(written.conversation)
        assert unreported == written and execution == await store.execution("call-key-1")

        [kept] = await store.outbox_put(written.conversation, "Done.")
        seq = kept.seq
        await store.outbox_later(seq, 2, 9.5)
        assert await store.outbox_left(written.conversation) == [
            OutboxMessage(seq, "Done.", 2, 9.5)
        ]

        [record] = await store.audit_log()
        assert (record.seq, record.event, record.approval_id, record.detail) == (
            1,
            "escalated",
            written.id,
            "U0CAROL",
        )
        assert record.args is not None and record.tool == "scale_down"
