"""Who has opened the app's Home tab, in the bot's database: only their tabs are republished
when a request changes (bot/home.py)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from bot.db import Database


class HomeViewers:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def opened(self, user: str) -> None:
        await self.db.execute(
            "INSERT INTO home_viewers (user_id, opened_at) VALUES (?, ?)"
            " ON CONFLICT (user_id) DO UPDATE SET opened_at = excluded.opened_at",
            (user, time.time()),
        )

    async def among(self, users: Sequence[str]) -> set[str]:
        """Those of `users` who ever opened the tab."""
        if not users:
            return set()
        marks = ",".join("?" * len(users))
        rows = await self.db.fetchall(
            f"SELECT user_id FROM home_viewers WHERE user_id IN ({marks})", users
        )
        return {str(r["user_id"]) for r in rows}

    async def anyone(self) -> bool:
        """Whether anybody ever opened the tab."""
        return await self.db.fetchone("SELECT user_id FROM home_viewers LIMIT 1") is not None
