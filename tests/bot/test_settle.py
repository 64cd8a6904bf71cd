"""`Database.settle`: after a run, the commits made without an fsync are made durable in
the background, so the next durable commit (a click's journal entry) pays only for its own."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from bot import db as db_module
from bot.db import Database
from tests.conftest import Harness


def count_fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The WAL files synced from now on (each still synced for real)."""
    synced: list[Path] = []
    real = db_module._fsync

    def counting(path: Path) -> None:
        synced.append(path)
        real(path)

    monkeypatch.setattr(db_module, "_fsync", counting)
    return synced


async def test_settling_syncs_the_write_ahead_log_once_for_calls_that_overlap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced = count_fsyncs(monkeypatch)
    async with await Database.open(f"sqlite:///{tmp_path / 'bot.sqlite3'}") as db:
        await db.execute("INSERT INTO seen_events (key, seen_at) VALUES ('k', 0)")
        assert (tmp_path / "bot.sqlite3-wal").stat().st_size > 0
        await asyncio.gather(*(db.settle() for _ in range(5)))
        # One in flight, one more for the calls that came while it was: never one per call.
        assert synced and len(synced) <= 2
        assert set(synced) == {tmp_path / "bot.sqlite3-wal"}


async def test_settling_without_a_write_ahead_log_does_nothing(tmp_path: Path) -> None:
    async with await Database.open(f"sqlite:///{tmp_path / 'bot.sqlite3'}") as db:
        os.replace(tmp_path / "bot.sqlite3-wal", tmp_path / "moved")
        await db.settle()


async def test_each_run_of_the_bot_ends_by_settling_its_commits(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced = count_fsyncs(monkeypatch)
    async with harness.bot():
        _, card = await harness.ask_scale_down()
        await harness.idle()
        asked = len(synced)
        assert asked >= 1
        await harness.approve("U0BOB", "C0OPS", card.ts)
        assert len(synced) > asked
