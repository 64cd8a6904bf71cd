"""What the emulated workspace holds and records: messages, views, calls, deliveries."""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass, field
from typing import Any, Literal

DeliveryKind = Literal["events_api", "slash_commands", "interactive"]

BOT_ID = "B0SANDBOX"
BOT_NAME = "approvals"
TEAM_DOMAIN = "sandbox"


def random_id(length: int, alphabet: str = string.ascii_uppercase + string.digits) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


class ApiError(Exception):
    """A Slack-shaped failure: becomes `{"ok": false, "error": ..., **extra}`."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


@dataclass(frozen=True)
class Button:
    action_id: str
    value: str | None
    text: str
    style: str | None
    block_id: str


def interactive_elements(block: dict[str, Any]) -> list[dict[str, Any]]:
    if block.get("type") == "actions" and isinstance(block.get("elements"), list):
        return [e for e in block["elements"] if isinstance(e, dict)]
    if block.get("type") == "section" and isinstance(block.get("accessory"), dict):
        return [block["accessory"]]
    return []


def find_buttons(blocks: list[dict[str, Any]]) -> list[Button]:
    """Buttons in `actions` blocks and section accessories, in display order."""
    found: list[Button] = []
    for block in blocks:
        for element in interactive_elements(block):
            if element.get("type") == "button":
                found.append(
                    Button(
                        action_id=str(element.get("action_id", "")),
                        value=element.get("value"),
                        text=str((element.get("text") or {}).get("text", "")),
                        style=element.get("style"),
                        block_id=str(block.get("block_id", "")),
                    )
                )
    return found


class _WithBlocks:
    blocks: list[dict[str, Any]]

    def buttons(self) -> list[Button]:
        return find_buttons(self.blocks)


@dataclass
class Message(_WithBlocks):
    channel: str
    ts: str
    thread_ts: str | None
    user: str | None  # None when the bot posted it
    bot_id: str | None
    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)
    edited: bool = False


@dataclass
class Ephemeral(_WithBlocks):
    channel: str
    user: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None
    ts: str


@dataclass
class View:
    id: str
    user: str
    trigger_id: str
    view: dict[str, Any]  # the current version, as views.open/views.update answered it
    is_open: bool = True


@dataclass
class ApiCall:
    method: str
    params: dict[str, Any]
    response: dict[str, Any]
    status: int
    at: float  # time.time() when the answer was sent


@dataclass
class Ack:
    status: int  # 200 for a Socket Mode ack, the HTTP status in HTTP mode
    body: Any  # the ack's payload / the parsed response body; None when empty
    latency: float  # seconds from sending the delivery to receiving the ack


@dataclass
class Delivery:
    kind: DeliveryKind
    payload: dict[str, Any]
    retry_num: int
    retry_reason: str
    transport: Literal["socket_mode", "http"]
    at: float  # time.time() when it was sent
    ack: Ack | None = None
    error: str | None = None  # why there is no ack

    def answer(self) -> dict[str, Any] | None:
        """The ack's body as an object; Bolt acks plain text over HTTP as a text/plain body."""
        if self.ack is None or self.ack.status != 200 or not self.ack.body:
            return None
        body = self.ack.body
        if isinstance(body, str):
            return {"text": body}
        return body if isinstance(body, dict) else None

    def summary(self) -> dict[str, Any]:
        """What the sandbox's endpoints tell a person (or the page) about it."""
        return {
            "kind": self.kind,
            "acked": self.ack is not None,
            "status": self.ack.status if self.ack else None,
            "latency_ms": round(self.ack.latency * 1000, 3) if self.ack else None,
            "error": self.error,
        }


@dataclass
class Channel:
    id: str
    name: str
    dm_user: str | None = None  # set for the bot's DM with that user
    members: list[str] | None = None  # people in a channel; None: everyone

    @property
    def is_im(self) -> bool:
        return self.dm_user is not None


@dataclass
class ResponseTarget:
    """Where a response_url posts: the context of the slash command or click that issued it."""

    channel: str
    user: str
    message_ts: str | None
    thread_ts: str | None


def dm_channel_id(user_id: str) -> str:
    return "D" + user_id.removeprefix("U")
