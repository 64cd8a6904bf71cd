"""Builders for what Slack sends an app: event_callback envelopes, slash command fields and
interaction payloads, shaped like Slack's documented examples."""

from __future__ import annotations

import copy
import secrets
import time
import uuid
from typing import Any

from bot.sandbox.records import TEAM_DOMAIN, Button, Message, View, random_id
from bot.sandbox.state import Workspace

VERIFICATION_TOKEN = "sandbox-verification-token"  # Slack's deprecated per-app token


def _team(ws: Workspace) -> dict[str, Any]:
    return {"id": ws.team_id, "domain": TEAM_DOMAIN}


def _user(ws: Workspace, user: str) -> dict[str, Any]:
    name = ws.user_name(user)
    return {"id": user, "username": name, "name": name, "team_id": ws.team_id}


def event_callback(ws: Workspace, event: dict[str, Any]) -> dict[str, Any]:
    return {
        "token": VERIFICATION_TOKEN,
        "team_id": ws.team_id,
        "context_team_id": ws.team_id,
        "context_enterprise_id": None,
        "api_app_id": ws.app_id,
        "event": event,
        "type": "event_callback",
        "event_id": "Ev" + random_id(10),
        "event_time": int(time.time()),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": ws.team_id,
                "user_id": ws.bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": "4-" + secrets.token_urlsafe(24),
    }


def message_events(ws: Workspace, message: Message) -> list[dict[str, Any]]:
    """The events an app subscribed to `message.im`, `message.channels` and `app_mention`
    gets for a user message.

    A message that mentions the bot yields both a message event and app_mention, each with its
    own event_id, as Slack sends them; a bot must not answer twice.
    """
    fields: dict[str, Any] = {
        "user": message.user,
        "text": message.text,
        "ts": message.ts,
        "channel": message.channel,
        "event_ts": message.ts,
        "team": ws.team_id,
        "client_msg_id": str(uuid.uuid4()),
    }
    if message.thread_ts is not None:
        fields["thread_ts"] = message.thread_ts
        root = ws.find_message(message.channel, message.thread_ts)
        if root is not None:
            fields["parent_user_id"] = root.user or ws.bot_user_id
    events: list[dict[str, Any]] = []
    channel = ws.channel(message.channel)
    if channel.is_im and "message.im" in ws.bot_events:
        events.append({"type": "message", **fields, "channel_type": "im"})
    elif not channel.is_im and "message.channels" in ws.bot_events:
        events.append({"type": "message", **fields, "channel_type": "channel"})
    if f"<@{ws.bot_user_id}>" in message.text and "app_mention" in ws.bot_events:
        events.append({"type": "app_mention", **fields})
    return [event_callback(ws, event) for event in events]


def slash_command(
    ws: Workspace,
    *,
    user: str,
    channel: str,
    command: str,
    text: str,
    response_url: str,
    trigger_id: str,
) -> dict[str, Any]:
    return {
        "token": VERIFICATION_TOKEN,
        "team_id": ws.team_id,
        "team_domain": TEAM_DOMAIN,
        "channel_id": channel,
        "channel_name": ws.channel(channel).name,
        "user_id": user,
        "user_name": ws.user_name(user),
        "command": command,
        "text": text,
        "api_app_id": ws.app_id,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id,
    }


def _button_action(button: Button) -> dict[str, Any]:
    """A clicked button as `actions[0]` of a block_actions payload."""
    action: dict[str, Any] = {
        "action_id": button.action_id,
        "block_id": button.block_id,
        "text": {"type": "plain_text", "text": button.text, "emoji": True},
        "type": "button",
        "action_ts": f"{time.time():.6f}",
    }
    if button.value is not None:
        action["value"] = button.value
    if button.style is not None:
        action["style"] = button.style
    return action


def block_actions(
    ws: Workspace,
    *,
    user: str,
    message: Message,
    button: Button,
    response_url: str,
    trigger_id: str,
) -> dict[str, Any]:
    container = {
        "type": "message",
        "message_ts": message.ts,
        "channel_id": message.channel,
        "is_ephemeral": False,
    }
    return _block_actions(
        ws,
        user,
        button,
        trigger_id,
        container,
        channel={"id": message.channel, "name": ws.channel(message.channel).name},
        message=ws.message_json(message),
        state={"values": {}},
        response_url=response_url,
    )


def app_home_opened(ws: Workspace, *, user: str, channel: str) -> dict[str, Any]:
    """The event for a person opening the app's Home tab; `view` is there once one was
    published for them, as in Slack."""
    event: dict[str, Any] = {
        "type": "app_home_opened",
        "user": user,
        "channel": channel,
        "tab": "home",
        "event_ts": f"{time.time():.6f}",
    }
    if user in ws.homes:
        event["view"] = copy.deepcopy(ws.homes[user])
    return event_callback(ws, event)


def home_block_actions(
    ws: Workspace, *, user: str, button: Button, trigger_id: str
) -> dict[str, Any]:
    """A button clicked on the Home tab: the container is the view, and there is no channel,
    message or response_url."""
    view = ws.homes[user]
    container = {"type": "view", "view_id": view["id"]}
    return _block_actions(ws, user, button, trigger_id, container, view=copy.deepcopy(view))


def _block_actions(
    ws: Workspace,
    user: str,
    button: Button,
    trigger_id: str,
    container: dict[str, Any],
    **where: Any,
) -> dict[str, Any]:
    """A block_actions payload; `where` is what the container adds (its channel, message…)."""
    return {
        "type": "block_actions",
        "user": _user(ws, user),
        "api_app_id": ws.app_id,
        "token": VERIFICATION_TOKEN,
        "container": container,
        "trigger_id": trigger_id,
        "team": _team(ws),
        "enterprise": None,
        "is_enterprise_install": False,
        **where,
        "actions": [_button_action(button)],
    }


def view_submission(
    ws: Workspace,
    *,
    user: str,
    view: View,
    values: dict[str, dict[str, dict[str, Any]]],
    trigger_id: str,
) -> dict[str, Any]:
    submitted = copy.deepcopy(view.view)
    submitted["state"] = {"values": copy.deepcopy(values)}
    return {
        "type": "view_submission",
        "team": _team(ws),
        "user": _user(ws, user),
        "api_app_id": ws.app_id,
        "token": VERIFICATION_TOKEN,
        "trigger_id": trigger_id,
        "view": submitted,
        "response_urls": [],
        "enterprise": None,
        "is_enterprise_install": False,
    }


def view_closed(ws: Workspace, *, user: str, view: View) -> dict[str, Any]:
    return {
        "type": "view_closed",
        "team": _team(ws),
        "user": _user(ws, user),
        "api_app_id": ws.app_id,
        "token": VERIFICATION_TOKEN,
        "view": copy.deepcopy(view.view),
        "is_cleared": False,
        "enterprise": None,
        "is_enterprise_install": False,
    }
