"""What the listeners read from Slack's payloads, parsed once into typed records.

Slack signs what it sends, so a payload whose ids or timestamps break Slack's formats is
forged or broken: `parse` returns None for it, and the listener refuses it; nothing is
guessed at. Parsing is in memory only, so it is safe before the ack.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# What Slack's ids and message timestamps look like.
_SLACK_ID = re.compile(r"[A-Z0-9]{2,40}")
_TS = re.compile(r"[0-9]{1,12}\.[0-9]{1,9}")


def slack_id(value: object) -> str | None:
    return value if isinstance(value, str) and _SLACK_ID.fullmatch(value) else None


def slack_ts(value: object) -> str | None:
    return value if isinstance(value, str) and _TS.fullmatch(value) else None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _get(data: object, *path: str) -> object:
    for key in path:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


@dataclass(frozen=True)
class SlashCommand:
    team: str
    channel: str
    user: str
    text: str
    trigger_id: str
    response_url: str

    @classmethod
    def parse(cls, command: Mapping[str, Any]) -> SlashCommand | None:
        team, channel, user = (
            slack_id(command.get(k)) for k in ("team_id", "channel_id", "user_id")
        )
        text = command.get("text") or ""
        trigger_id = _text(command.get("trigger_id"))
        response_url = _text(command.get("response_url"))
        if not (team and channel and user and isinstance(text, str)):
            return None
        if trigger_id is None or response_url is None:
            return None
        return cls(team, channel, user, text.strip(), trigger_id, response_url)


@dataclass(frozen=True)
class UserMessage:
    """A person's message event (app_mention, message.im, message.channels)."""

    team: str
    channel: str
    user: str
    ts: str
    thread_ts: str
    text: str

    @classmethod
    def parse(cls, event: Mapping[str, Any], team_id: str | None) -> UserMessage | None:
        channel, user = slack_id(event.get("channel")), slack_id(event.get("user"))
        ts = slack_ts(event.get("ts"))
        thread_ts = slack_ts(event.get("thread_ts") or ts)
        text = event.get("text") or ""
        if not (channel and user and ts and thread_ts and isinstance(text, str)):
            return None
        return cls(str(team_id or event.get("team") or ""), channel, user, ts, thread_ts, text)


def _button_value_and_user(body: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The clicked button's value (block_actions carry the one action), and who clicked."""
    actions = body.get("actions")
    first = actions[0] if isinstance(actions, list) and actions else None
    return _text(_get(first, "value")), slack_id(_get(body, "user", "id"))


@dataclass(frozen=True)
class Click:
    """A button click on a message (block_actions)."""

    value: str
    user: str
    channel: str
    message_ts: str
    thread_ts: str | None
    trigger_id: str | None

    @classmethod
    def parse(cls, body: Mapping[str, Any]) -> Click | None:
        value, user = _button_value_and_user(body)
        channel = slack_id(_get(body, "channel", "id") or _get(body, "container", "channel_id"))
        message_ts = slack_ts(_get(body, "container", "message_ts"))
        if not (value and user and channel and message_ts):
            return None
        return cls(
            value,
            user,
            channel,
            message_ts,
            slack_ts(_get(body, "message", "thread_ts")),
            _text(body.get("trigger_id")),
        )


@dataclass(frozen=True)
class HomeClick:
    """A button click on the app's Home tab: no channel or message, only the view."""

    value: str
    user: str
    trigger_id: str

    @classmethod
    def parse(cls, body: Mapping[str, Any]) -> HomeClick | None:
        value, user = _button_value_and_user(body)
        trigger_id = _text(body.get("trigger_id"))
        if not (value and user and trigger_id) or _get(body, "container", "type") != "view":
            return None
        return cls(value, user, trigger_id)


@dataclass(frozen=True)
class Submission:
    """A modal submitted (view_submission): who, for which approval, and its inputs."""

    user: str
    approval_id: str
    values: Mapping[str, Any]

    @classmethod
    def parse(cls, body: Mapping[str, Any], view: Mapping[str, Any]) -> Submission | None:
        user = slack_id(_get(body, "user", "id"))
        approval_id = _text(view.get("private_metadata"))
        values = _get(view, "state", "values")
        if not (user and approval_id and isinstance(values, Mapping)):
            return None
        return cls(user, approval_id, values)

    def text(self, block_id: str, action_id: str) -> str | None:
        value = _get(self.values, block_id, action_id, "value")
        return value if isinstance(value, str) else None
