"""The Web API's directory methods: who is in the workspace and in which conversations."""

from __future__ import annotations

from typing import Any

from bot.sandbox.records import ApiError, Channel, dm_channel_id
from bot.sandbox.state import Workspace

Params = dict[str, Any]


def channel_param(ws: Workspace, params: Params, name: str = "channel") -> Channel:
    found = ws.channels.get(str(params.get(name) or ""))
    if found is None:
        raise ApiError("channel_not_found")
    return found


class Directory:
    def __init__(self, workspace: Workspace) -> None:
        self._ws = workspace

    def users_info(self, params: Params) -> dict[str, Any]:
        user = str(params.get("user") or "")
        if user not in self._ws.users and user != self._ws.bot_user_id:
            raise ApiError("user_not_found")
        return {"user": self._ws.user_json(user)}

    def users_list(self, params: Params) -> dict[str, Any]:
        # One page holds the whole (small) workspace: no next_cursor, as Slack ends a listing.
        members = [self._ws.user_json(u) for u in [*self._ws.users, self._ws.bot_user_id]]
        return {"members": members, "response_metadata": {"next_cursor": ""}}

    def usergroups_users_list(self, params: Params) -> dict[str, Any]:
        members = self._ws.usergroups.get(str(params.get("usergroup") or ""))
        if members is None:
            raise ApiError("no_such_subteam")
        return {"users": list(members)}

    def conversations_info(self, params: Params) -> dict[str, Any]:
        return {"channel": self._ws.channel_json(channel_param(self._ws, params))}

    def conversations_open(self, params: Params) -> dict[str, Any]:
        users = [u for u in str(params.get("users") or "").split(",") if u]
        if not users:
            raise ApiError("users_list_not_supplied")
        if len(users) > 1:
            raise ApiError("not_supported", detail="the emulator opens one-person DMs only")
        if users[0] not in self._ws.users:
            raise ApiError("user_not_found")
        return {"channel": {"id": dm_channel_id(users[0])}}

    def conversations_members(self, params: Params) -> dict[str, Any]:
        members = self._ws.members(channel_param(self._ws, params))
        # Paged like Slack: `limit` per page, the next page's offset as the cursor.
        limit = int(params.get("limit") or 100)
        start = int(params.get("cursor") or 0)
        page = members[start : start + limit]
        after = start + limit
        return {
            "members": page,
            "response_metadata": {"next_cursor": str(after) if after < len(members) else ""},
        }
