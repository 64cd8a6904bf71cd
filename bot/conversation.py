"""A conversation: one Slack thread (or a DM's main view), one LangGraph thread."""

from __future__ import annotations

from dataclasses import dataclass

MAIN_VIEW = "main"
"""The `thread_ts` of a DM's main view: a person chatting there is answered there, not in a
thread under each of their messages."""


@dataclass(frozen=True)
class Conversation:
    team_id: str
    channel: str
    thread_ts: str

    @property
    def reply_thread_ts(self) -> str | None:
        """Where to post: the thread, or None for the main view."""
        return reply_thread_ts(self.thread_ts)

    @property
    def key(self) -> str:
        """The LangGraph `thread_id` (docs/design.md, "Conversations and keys")."""
        return f"slack:{self.team_id}:{self.channel}:{self.thread_ts}"

    @classmethod
    def from_key(cls, key: str) -> Conversation:
        prefix, team_id, channel, thread_ts = key.split(":", 3)
        if prefix != "slack":
            raise ValueError(f"not a conversation key: {key!r}")
        return cls(team_id, channel, thread_ts)


def reply_thread_ts(thread_ts: str) -> str | None:
    return None if thread_ts == MAIN_VIEW else thread_ts
