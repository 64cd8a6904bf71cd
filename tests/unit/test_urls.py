"""What `DATABASE_URL` and the Slack API URL mean, and SQL in one dialect for both backends."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.connections import is_postgres, sqlite_path
from bot.conversation import Conversation
from bot.db import to_psycopg
from bot.settings import load_settings


@pytest.mark.parametrize(
    ("url", "postgres"),
    [
        ("postgresql://u@h/db", True),
        ("postgres://u@h/db", True),
        ("sqlite:///bot.db", False),
        ("bot.db", False),
        ("postgresqlx://h", False),
    ],
)
def test_which_backend_a_url_names(url: str, postgres: bool) -> None:
    assert is_postgres(url) is postgres


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///relative.db", Path("relative.db")),
        ("sqlite:////abs/path.db", Path("/abs/path.db")),
        ("data/bare.db", Path("data/bare.db")),
    ],
)
def test_where_a_sqlite_url_points(url: str, path: Path) -> None:
    assert sqlite_path(url) == path


def test_placeholders_become_psycopgs_outside_string_literals() -> None:
    sql = "SELECT a FROM t WHERE b = ? AND c LIKE '50% off?' AND d = ? AND e = 'it''s ?'"
    assert to_psycopg(sql) == (
        "SELECT a FROM t WHERE b = %s AND c LIKE '50%% off?' AND d = %s AND e = 'it''s ?'"
    )


def test_a_conversation_key_round_trips() -> None:
    conversation = Conversation("T0A", "C0B", "1700000000.000100")
    assert conversation.key == "slack:T0A:C0B:1700000000.000100"
    assert Conversation.from_key(conversation.key) == conversation
    with pytest.raises(ValueError, match="not a conversation key"):
        Conversation.from_key("teams:T:C:1.0")


def test_the_slack_api_url_ends_with_a_slash() -> None:
    settings = load_settings(_env_file=None, slack_api_url="http://127.0.0.1:9/api")
    assert settings.slack_api_url == "http://127.0.0.1:9/api/"
