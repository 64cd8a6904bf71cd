"""The sandbox's JSON endpoints for people: `/sandbox/say`, `/sandbox/click` and
`/sandbox/messages` (the `curl` lines the start-up banner prints), and what the page's own
endpoints (`web.py`) share with them. Each acts through the emulator's user actions, so the
bot receives exactly the envelopes it gets in the tests."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bot.sandbox.emulator import SlackEmulator
from bot.sandbox.records import BOT_NAME, Message

Handler = Callable[[web.Request], Awaitable[web.Response]]
Action = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


def field(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise ValueError(f"field {name!r} must be a non-empty string")
    return value


def optional_field(data: dict[str, Any], name: str) -> str | None:
    return None if data.get(name) is None else field(data, name)


def bad_request(error: str) -> web.Response:
    return web.json_response({"ok": False, "error": error}, status=400)


def endpoint(act: Action) -> Handler:
    """A POST endpoint taking a JSON object: a mistake in it (a missing field, an unknown
    channel or button) is a 400 naming it, and no bot to deliver to a 503."""

    async def handle(request: web.Request) -> web.Response:
        try:
            data = await request.json()
        except ValueError:
            return bad_request("the body must be a JSON object")
        if not isinstance(data, dict):
            return bad_request("the body must be a JSON object")
        try:
            result = await act(data)
        except (LookupError, ValueError) as e:
            return bad_request(str(e))
        except ConnectionError as e:
            return web.json_response({"ok": False, "error": str(e)}, status=503)
        return web.json_response({"ok": True, **result})

    return handle


def say(emu: SlackEmulator, as_sent: Callable[[str], str] = str) -> Handler:
    """`/command args` runs a slash command; anything else is a message, in a thread when
    `thread_ts` is given. `as_sent` turns the text into what Slack's client sends."""

    async def act(data: dict[str, Any]) -> dict[str, Any]:
        user, channel = field(data, "user"), field(data, "channel")
        text = field(data, "text").strip()
        thread_ts = optional_field(data, "thread_ts")
        if text.startswith("/"):
            command, *rest = text.split(maxsplit=1)
            delivery = await emu.slash_command(user, channel, command, "".join(rest))
            if command not in emu.commands:
                return {}  # Slack answered it: nothing went to the app, so nothing failed
            return {"delivery": delivery.summary()}
        return {"ts": await emu.post_user_message(user, channel, as_sent(text), thread_ts)}

    return endpoint(act)


def click(emu: SlackEmulator) -> Handler:
    async def act(data: dict[str, Any]) -> dict[str, Any]:
        delivery = await emu.click(
            field(data, "user"),
            field(data, "channel"),
            field(data, "ts"),
            field(data, "action_id"),
            optional_field(data, "value"),
        )
        return {"delivery": delivery.summary()}

    return endpoint(act)


def messages(emu: SlackEmulator) -> Handler:
    async def handle(request: web.Request) -> web.Response:
        channel = request.query.get("channel", "")
        try:
            found = emu.messages(channel)
        except LookupError as e:
            return bad_request(str(e))
        return web.json_response(
            {
                "ok": True,
                "channel": channel,
                "messages": [_summary(emu, m) for m in found],
                "ephemerals": [
                    {
                        "ts": e.ts,
                        "thread_ts": e.thread_ts,
                        "user": e.user,
                        "text": e.text,
                        "blocks": e.blocks,
                        "buttons": [dataclasses.asdict(b) for b in e.buttons()],
                    }
                    for e in emu.ephemerals
                    if e.channel == channel
                ],
            }
        )

    return handle


def _summary(emu: SlackEmulator, message: Message) -> dict[str, Any]:
    return {
        "ts": message.ts,
        "thread_ts": message.thread_ts,
        "user": message.user,
        "user_name": emu.workspace.users.get(message.user or "", BOT_NAME),
        "bot": message.user is None,
        "text": message.text,
        "blocks": message.blocks,
        "buttons": [dataclasses.asdict(b) for b in message.buttons()],
        "edited": message.edited,
        "reactions": emu.reactions(message.channel, message.ts),
    }


def register(emu: SlackEmulator, app: web.Application) -> None:
    app.router.add_post("/sandbox/say", say(emu))
    app.router.add_post("/sandbox/click", click(emu))
    app.router.add_get("/sandbox/messages", messages(emu))
