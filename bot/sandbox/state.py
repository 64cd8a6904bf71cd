"""The emulated workspace: who and what exists, and everything that happened, in memory only."""

from __future__ import annotations

import asyncio
import copy
import secrets
import time
from collections.abc import Iterable
from typing import Any

from bot.sandbox.records import (
    BOT_ID,
    BOT_NAME,
    ApiCall,
    Channel,
    Delivery,
    Ephemeral,
    Message,
    ResponseTarget,
    View,
    dm_channel_id,
)

DEFAULT_USERS = {"U0ALICE": "alice", "U0BOB": "bob", "U0CAROL": "carol", "U0DAVE": "dave"}
DEFAULT_USERGROUPS = {"S0SREONCALL": ["U0BOB", "U0DAVE"]}
DEFAULT_CHANNELS = {"C0OPS": "ops", "C0GENERAL": "general", "C0APPROVALS": "approvals"}
# Channels only some people are in; everyone is in the others.
DEFAULT_CHANNEL_MEMBERS = {"C0APPROVALS": ["U0BOB", "U0DAVE"]}


class Workspace:
    def __init__(
        self,
        *,
        team_id: str,
        bot_user_id: str,
        app_id: str,
        users: dict[str, str],
        usergroups: dict[str, list[str]],
        channels: dict[str, str],
        bot_events: Iterable[str],
        channel_members: dict[str, list[str]] | None = None,
    ) -> None:
        self.team_id = team_id
        # The app's event subscriptions (its manifest's `bot_events`): what Slack sends it.
        self.bot_events = frozenset(bot_events)
        self.bot_user_id = bot_user_id
        self.app_id = app_id
        self.users = dict(users)
        self.usergroups = {gid: list(members) for gid, members in usergroups.items()}
        members = channel_members or {}
        self.channels: dict[str, Channel] = {
            cid: Channel(cid, name, members=list(members[cid]) if cid in members else None)
            for cid, name in channels.items()
        }
        for uid in self.users:
            dm = dm_channel_id(uid)
            self.channels[dm] = Channel(dm, "directmessage", dm_user=uid)
        # Dicts keep insertion order and ts values only ever grow, so iteration is ts order.
        self._messages: dict[str, dict[str, Message]] = {cid: {} for cid in self.channels}
        self._reactions: dict[tuple[str, str], list[str]] = {}
        self.ephemerals: list[Ephemeral] = []
        self.views: list[View] = []
        self.homes: dict[str, dict[str, Any]] = {}  # user -> the Home tab views.publish set
        self.calls: list[ApiCall] = []
        self.deliveries: list[Delivery] = []
        self.triggers: dict[str, tuple[str, float]] = {}  # trigger_id -> (user, monotonic time)
        self.response_targets: dict[str, ResponseTarget] = {}
        self._edited_at: dict[tuple[str, str], str] = {}
        self._last_ts_us = 0
        self._changed = asyncio.Event()

    # --- change notification, so waiters re-check as soon as something happens ---

    def touch(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    @property
    def changed(self) -> asyncio.Event:
        """Set at the next change; fetch it again after each wait."""
        return self._changed

    # --- lookups ---

    def channel(self, channel_id: str) -> Channel:
        found = self.channels.get(channel_id)
        if found is None:
            raise LookupError(f"unknown channel {channel_id!r}; known: {sorted(self.channels)}")
        return found

    def user_name(self, user_id: str) -> str:
        name = self.users.get(user_id)
        if name is None:
            raise LookupError(f"unknown user {user_id!r}; known: {sorted(self.users)}")
        return name

    def is_member(self, channel: Channel, user_id: str) -> bool:
        if channel.dm_user is not None:
            return user_id in (channel.dm_user, self.bot_user_id)
        return channel.members is None or user_id in (*channel.members, self.bot_user_id)

    def members(self, channel: Channel) -> list[str]:
        """Who is in a channel, the bot included, as conversations.members lists them."""
        if channel.dm_user is not None:
            return [channel.dm_user, self.bot_user_id]
        people = list(self.users) if channel.members is None else channel.members
        return [*people, self.bot_user_id]

    def messages(self, channel_id: str) -> list[Message]:
        self.channel(channel_id)
        return list(self._messages[channel_id].values())

    def find_message(self, channel_id: str, ts: str) -> Message | None:
        return self._messages.get(channel_id, {}).get(ts)

    def reactions(self, channel_id: str, ts: str) -> list[str]:
        """The live list of reaction names on a message, for reactions.add/remove to change."""
        return self._reactions.setdefault((channel_id, ts), [])

    # --- changes ---

    def next_ts(self) -> str:
        now_us = time.time_ns() // 1000
        self._last_ts_us = max(now_us, self._last_ts_us + 1)
        seconds, micros = divmod(self._last_ts_us, 1_000_000)
        return f"{seconds}.{micros:06d}"

    def add_message(
        self,
        channel_id: str,
        *,
        user: str | None,
        text: str,
        blocks: list[dict[str, Any]],
        thread_ts: str | None,
    ) -> Message:
        if thread_ts is not None:
            parent = self.find_message(channel_id, thread_ts)
            # Replying to a reply lands in the parent's thread, as in Slack.
            if parent is not None and parent.thread_ts is not None:
                thread_ts = parent.thread_ts
        message = Message(
            channel=channel_id,
            ts=self.next_ts(),
            thread_ts=thread_ts,
            user=user,
            bot_id=BOT_ID if user is None else None,
            text=text,
            blocks=blocks,
        )
        self._messages[channel_id][message.ts] = message
        self.touch()
        return message

    def edit_message(
        self, message: Message, *, text: str | None, blocks: list[dict[str, Any]] | None
    ) -> None:
        # Like chat.update: what is not sent is kept, an empty blocks list removes the blocks.
        if text is not None:
            message.text = text
        if blocks is not None:
            message.blocks = blocks
        message.edited = True
        self._edited_at[(message.channel, message.ts)] = self.next_ts()
        self.touch()

    def delete_message(self, channel_id: str, ts: str) -> None:
        self._messages.get(channel_id, {}).pop(ts, None)
        self.touch()

    def new_trigger(self, user: str) -> str:
        trigger_id = (
            f"{secrets.randbelow(10**12)}.{secrets.randbelow(10**12)}.{secrets.token_hex(16)}"
        )
        self.triggers[trigger_id] = (user, time.monotonic())
        return trigger_id

    def new_response_url(self, base_url: str, target: ResponseTarget) -> str:
        key = secrets.token_urlsafe(16)
        self.response_targets[key] = target
        return f"{base_url}response/{key}"

    # --- wire format ---

    def message_json(self, message: Message) -> dict[str, Any]:
        """A message as Slack's APIs and payloads show it."""
        body: dict[str, Any] = {
            "type": "message",
            "user": message.user or self.bot_user_id,
            "text": message.text,
            "ts": message.ts,
            "team": self.team_id,
            "blocks": copy.deepcopy(message.blocks),
        }
        if message.bot_id is not None:
            body["bot_id"] = message.bot_id
            body["app_id"] = self.app_id
        if message.thread_ts is not None:
            body["thread_ts"] = message.thread_ts
        else:
            replies = [
                m for m in self._messages[message.channel].values() if m.thread_ts == message.ts
            ]
            # A root with replies carries its own ts as thread_ts in Slack's payloads.
            if replies:
                body["thread_ts"] = message.ts
                body["reply_count"] = len(replies)
                body["latest_reply"] = replies[-1].ts
        edited_at = self._edited_at.get((message.channel, message.ts))
        if edited_at is not None:
            body["edited"] = {"user": body["user"], "ts": edited_at}
        return body

    def user_json(self, user_id: str) -> dict[str, Any]:
        is_bot = user_id == self.bot_user_id
        name = BOT_NAME if is_bot else self.user_name(user_id)
        real_name = name.capitalize()
        profile: dict[str, Any] = {
            "display_name": name,
            "display_name_normalized": name,
            "real_name": real_name,
            "real_name_normalized": real_name,
            "team": self.team_id,
        }
        if is_bot:
            profile["bot_id"] = BOT_ID
        return {
            "id": user_id,
            "team_id": self.team_id,
            "name": name,
            "deleted": False,
            "real_name": real_name,
            "tz": "UTC",
            "tz_label": "Coordinated Universal Time",
            "tz_offset": 0,
            "profile": profile,
            "is_admin": False,
            "is_owner": False,
            "is_bot": is_bot,
            "is_app_user": False,
        }

    def channel_json(self, channel: Channel) -> dict[str, Any]:
        if channel.dm_user is not None:
            return {
                "id": channel.id,
                "created": 0,
                "is_im": True,
                "is_org_shared": False,
                "user": channel.dm_user,
                "is_user_deleted": False,
            }
        return {
            "id": channel.id,
            "name": channel.name,
            "is_channel": True,
            "is_group": False,
            "is_im": False,
            "is_mpim": False,
            "is_private": False,
            "is_archived": False,
            "is_general": channel.name == "general",
            "is_member": True,
            "created": 0,
            "name_normalized": channel.name,
        }
