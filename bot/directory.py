"""Who people are: display names and user-group members, cached briefly.

Group membership changes while an approval waits: a decision always asks Slack afresh, and
only what is displayed may come from the short-lived cache.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

GROUP_TTL_S = 60.0
NAME_TTL_S = 3600.0


class Directory:
    def __init__(self, client: AsyncWebClient) -> None:
        self._client = client
        self._groups: dict[str, tuple[float, frozenset[str]]] = {}
        self._names: dict[str, tuple[float, str]] = {}

    async def group_members(self, group_id: str, *, refresh: bool = False) -> frozenset[str]:
        cached = self._groups.get(group_id)
        if cached and not refresh and time.monotonic() - cached[0] < GROUP_TTL_S:
            return cached[1]
        response = await self._client.usergroups_users_list(usergroup=group_id)
        members = frozenset(response.get("users") or ())
        self._groups[group_id] = (time.monotonic(), members)
        return members

    async def is_allowed(self, user_id: str, approvers: list[str], *, fresh: bool) -> bool:
        """Empty list = anyone. With `fresh`, group membership is looked up in Slack now (a
        decision: someone removed from the group must not approve the next card); without,
        the cache may answer (display only)."""
        return await self.refusing(user_id, [approvers], fresh=fresh) is None

    async def refusing(
        self, user_id: str, approver_lists: Sequence[list[str]], *, fresh: bool
    ) -> list[str] | None:
        """The first of these approver lists that does not admit `user_id` (empty = anyone),
        or None when all do. A group in several lists is looked up once."""
        looked_up: dict[str, frozenset[str]] = {}
        for approvers in approver_lists:
            if not approvers or user_id in approvers:
                continue
            for group in (a for a in approvers if a.startswith("S")):
                if group not in looked_up:
                    looked_up[group] = await self.group_members(group, refresh=fresh)
                if user_id in looked_up[group]:
                    break
            else:
                return approvers
        return None

    async def name(self, user_id: str) -> str:
        cached = self._names.get(user_id)
        if cached and time.monotonic() - cached[0] < NAME_TTL_S:
            return cached[1]
        try:
            user = (await self._client.users_info(user=user_id)).get("user") or {}
        except SlackApiError:
            return user_id
        profile = user.get("profile") or {}
        name = str(
            profile.get("display_name") or user.get("real_name") or user.get("name") or user_id
        )
        self._names[user_id] = (time.monotonic(), name)
        return name
