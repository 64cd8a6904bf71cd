"""A real Bolt app posting approval cards, and the Slack error a call fails with: what the
emulator's tests drive it with."""

from __future__ import annotations

from typing import Any

import pytest
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

APPROVAL_BLOCKS: list[dict[str, Any]] = [
    {"type": "section", "text": {"type": "mrkdwn", "text": "Run `scale_down`?"}},
    {
        "type": "actions",
        "block_id": "decision",
        "elements": [
            {
                "type": "button",
                "action_id": "approve",
                "value": "appr-1",
                "style": "primary",
                "text": {"type": "plain_text", "text": "Approve"},
            },
            {
                "type": "button",
                "action_id": "deny",
                "value": "appr-1",
                "style": "danger",
                "text": {"type": "plain_text", "text": "Deny"},
                "confirm": {"title": {"type": "plain_text", "text": "Sure?"}},
            },
        ],
    },
]


async def error_of(call: Any) -> str:
    with pytest.raises(SlackApiError) as raised:
        await call
    return str(raised.value.response["error"])


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

    @app.event("message")
    async def direct(event: dict[str, Any]) -> None:
        seen.append(event)

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
