"""The PostgreSQL server the tests use: `TEST_POSTGRES_URL`, by default the CI machine's
127.0.0.1:5432 (trust auth). Each test gets a database of its own, dropped afterwards, so runs
never see each other's rows."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _unreachable() -> str | None:
    try:
        psycopg.connect(ADMIN_URL, connect_timeout=3).close()
    except psycopg.Error as exc:
        return f"PostgreSQL is not reachable at {ADMIN_URL} (set TEST_POSTGRES_URL): {exc}"
    return None


UNREACHABLE = _unreachable()
requires_postgres = pytest.mark.skipif(UNREACHABLE is not None, reason=UNREACHABLE or "")


def _with_database(name: str) -> str:
    parts = urlsplit(ADMIN_URL)
    return urlunsplit(parts._replace(path=f"/{name}"))


@asynccontextmanager
async def fresh_database() -> AsyncIterator[str]:
    """The URL of a new, empty database."""
    name = f"slack_approvals_test_{secrets.token_hex(6)}"
    async with await psycopg.AsyncConnection.connect(ADMIN_URL, autocommit=True) as admin:
        await admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield _with_database(name)
    finally:
        async with await psycopg.AsyncConnection.connect(ADMIN_URL, autocommit=True) as admin:
            await admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@asynccontextmanager
async def database_url(backend: str, directory: Path) -> AsyncIterator[str]:
    """A `DATABASE_URL` for `backend`: a fresh PostgreSQL database, or a SQLite file."""
    if backend == "postgresql":
        async with fresh_database() as url:
            yield url
    else:
        yield f"sqlite:///{directory / 'bot.sqlite3'}"


BACKENDS = [pytest.param("postgresql", marks=requires_postgres), "sqlite"]
