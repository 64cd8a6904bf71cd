"""Real Bolt apps for the emulator's and the sandbox page's tests to drive (one posting approval
cards, one with a form), and the Slack error a call fails with."""

from __future__ import annotations

from typing import Any

import pytest
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient


def plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text}


def option(value: str) -> dict[str, Any]:
    return {"text": plain(value.capitalize()), "value": value}


def button(action_id: str, text: str, **more: Any) -> dict[str, Any]:
    return {"type": "button", "action_id": action_id, "text": plain(text), **more}


def message_blocks(text: str, block_id: str, *buttons: dict[str, Any]) -> list[dict[str, Any]]:
    """A message's blocks: `text`, then its buttons in one actions block."""
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": text}},
        {"type": "actions", "block_id": block_id, "elements": list(buttons)},
    ]


APPROVAL_BLOCKS = message_blocks(
    "Run `scale_down`?",
    "decision",
    button("approve", "Approve", value="appr-1", style="primary"),
    button("deny", "Deny", value="appr-1", style="danger", confirm={"title": plain("Sure?")}),
)


async def error_of(call: Any) -> str:
    with pytest.raises(SlackApiError) as raised:
        await call
    return str(raised.value.response["error"])


def keep_events(app: AsyncApp, seen: list[dict[str, Any]], *names: str) -> None:
    """Listeners for these events that only keep what they are given."""

    async def keep(event: dict[str, Any]) -> None:
        seen.append(event)

    for name in names:
        app.event(name)(keep)


def approval_app(client: AsyncWebClient, seen: list[dict[str, Any]]) -> AsyncApp:
    app = AsyncApp(client=client, process_before_response=True)

    @app.command("/ask")
    async def ask(ack: Any, command: dict[str, Any], say: Any) -> None:
        await ack("Asking the agent…")
        seen.append(command)
        await say(text=f"<@{command['user_id']}> asked: {command['text']}", blocks=APPROVAL_BLOCKS)

    @app.event("app_mention")
    async def mention(event: dict[str, Any], say: Any) -> None:
        seen.append(event)
        await say(text="on it", thread_ts=event.get("thread_ts") or event["ts"])

    keep_events(app, seen, "message")

    @app.action("approve")
    async def approve(ack: Any, body: dict[str, Any], respond: Any) -> None:
        await ack()
        seen.append(body)
        await respond(text=f"Approved by <@{body['user']['id']}>", replace_original=True)

    @app.action("deny")
    async def deny(ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        seen.append(body)
        await client.views_open(
            trigger_id=body["trigger_id"],
            view={
                "type": "modal",
                "callback_id": "deny_reason",
                "notify_on_close": True,
                "private_metadata": body["actions"][0]["value"],
                "title": {"type": "plain_text", "text": "Deny"},
                "submit": {"type": "plain_text", "text": "Deny"},
                "blocks": [
                    {
                        "type": "input",
                        "block_id": "reason",
                        "label": {"type": "plain_text", "text": "Why?"},
                        "element": {"type": "plain_text_input", "action_id": "text"},
                    }
                ],
            },
        )

    @app.view("deny_reason")
    async def deny_reason(ack: Any, view: dict[str, Any]) -> None:
        reason = view["state"]["values"]["reason"]["text"]["value"]
        if not reason:
            await ack(response_action="errors", errors={"reason": "Say why"})
            return
        await ack()
        seen.append(view)

    @app.view_closed("deny_reason")
    async def closed(ack: Any, view: dict[str, Any]) -> None:
        await ack()
        seen.append(view)

    return app


FORM_VIEW: dict[str, Any] = {
    "type": "modal",
    "callback_id": "form",
    "notify_on_close": True,
    "title": plain("Request access"),
    "submit": plain("Send"),
    "close": plain("Cancel"),
    "blocks": [
        {"type": "section", "text": {"type": "mrkdwn", "text": "Fill in *all* of it"}},
        {
            "type": "input",
            "block_id": "title",
            "label": plain("Title"),
            "element": {"type": "plain_text_input", "action_id": "title_input"},
        },
        {
            "type": "input",
            "block_id": "notes",
            "optional": True,
            "label": plain("Notes"),
            "element": {"type": "plain_text_input", "action_id": "notes_input", "multiline": True},
        },
        {
            "type": "input",
            "block_id": "size",
            "label": plain("Size"),
            "element": {
                "type": "static_select",
                "action_id": "size_select",
                "placeholder": plain("Pick one"),
                "options": [option("small"), option("large")],
            },
        },
    ],
}

FORM_MESSAGE = message_blocks(
    "Need access? <@U0ALICE>",
    "form_actions",
    button("open_form", "Open the form", style="primary", value="form-1"),
    button("open_quiet_form", "Quiet form"),
    button(
        "risky",
        "Drop it",
        style="danger",
        value="form-1",
        confirm={
            "title": plain("Drop the table?"),
            "text": {"type": "mrkdwn", "text": "This drops `audit_2019` for good."},
            "confirm": plain("Drop"),
            "deny": plain("Keep it"),
            "style": "danger",
        },
    ),
)


def form_app(client: AsyncWebClient, seen: list[dict[str, Any]]) -> AsyncApp:
    """A small app that records what it receives; a form title of "x" is refused."""
    app = AsyncApp(client=client)

    @app.command("/ask")
    async def ask(ack: AsyncAck, command: dict[str, Any]) -> None:
        await ack()
        seen.append(command)

    keep_events(app, seen, "app_mention", "message")

    @app.action("open_form")
    async def open_form(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        seen.append(body)
        view = {**FORM_VIEW, "private_metadata": body["actions"][0]["value"]}
        await client.views_open(trigger_id=body["trigger_id"], view=view)

    @app.action("open_quiet_form")
    async def open_quiet_form(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        view = {**FORM_VIEW, "notify_on_close": False}
        await client.views_open(trigger_id=body["trigger_id"], view=view)

    @app.action("risky")
    async def risky(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        seen.append(body)

    @app.view("form")
    async def submitted(ack: AsyncAck, body: dict[str, Any]) -> None:
        seen.append(body)
        if body["view"]["state"]["values"]["title"]["title_input"]["value"] == "x":
            await ack(response_action="errors", errors={"title": "Too short"})
        else:
            await ack()

    @app.view_closed("form")
    async def closed(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        seen.append(body)

    return app
