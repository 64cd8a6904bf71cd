"""A conversation: one Slack thread, one LangGraph thread."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Conversation:
    team_id: str
    channel: str
    thread_ts: str

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
