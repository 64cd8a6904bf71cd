"""The sandbox's web page: a small Slack client in the browser, served beside the emulator.

The page acts through the emulator's own user actions (`post_user_message`, `slash_command`,
`click`, `submit_view`, `close_view`), saying and clicking through the same endpoints as
`curl` does (`endpoints.py`), so the bot receives exactly the envelopes it gets in the tests.
It renders from snapshots of the workspace as one user sees it, pushed over Server-Sent Events
whenever the workspace changes. `serve_sandbox()` puts both beside an emulator.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from bot.sandbox import endpoints
from bot.sandbox.emulator import SlackEmulator
from bot.sandbox.endpoints import endpoint, field, optional_field
from bot.sandbox.records import BOT_NAME, Message, View

STATIC = Path(__file__).with_name("static")
KEEPALIVE = 15.0  # seconds between SSE comments, so proxies and browsers keep the stream open

# What the sample users can do under the sample policy (bot/sandbox/policy.yml, which the
# sandbox runs): the on-call group decides gated calls. Users of a customised emulator get
# no label.
SAMPLE_ROLES = {
    "U0ALICE": "asks; not on call",
    "U0BOB": "on call: approves",
    "U0DAVE": "on call: approves",
    "U0CAROL": "not on call: refused",
}

_MENTION = re.compile(r"(?<![\w<@])@([A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*)")
_CHANNEL = re.compile(r"(?<![\w<&/])#([a-z0-9_-]+)")
_REACTION_NAME = re.compile(r"^[a-z0-9_+'-]{1,100}$")


def serve_sandbox(emulator: SlackEmulator) -> SlackEmulator:
    """The emulator with what people use it through: the page and the `curl` endpoints."""
    emulator.add_routes(functools.partial(endpoints.register, emulator))
    emulator.add_routes(SandboxPage(emulator).register)
    return emulator


class SandboxPage:
    def __init__(self, emulator: SlackEmulator) -> None:
        self._emu = emulator
        self._ws = emulator.workspace
        # The workspace records only the bot's reactions (all the Web API can add) and the bot
        # subscribes to no reaction events, so people's reactions live here, for display only.
        self._reactions: dict[tuple[str, str], dict[str, list[str]]] = {}
        self._closed = False

    def register(self, app: web.Application) -> None:
        app.router.add_get("/", self._index)
        app.router.add_get("/static/{name}", self._static)
        app.router.add_get("/sandbox/ui/state", self._state)
        app.router.add_get("/sandbox/ui/events", self._events)
        app.router.add_post("/sandbox/ui/say", endpoints.say(self._emu, self.slack_text))
        app.router.add_post("/sandbox/ui/click", endpoints.click(self._emu))
        app.router.add_post("/sandbox/ui/submit", endpoint(self._submit))
        app.router.add_post("/sandbox/ui/close", endpoint(self._close))
        app.router.add_post("/sandbox/ui/react", endpoint(self._react))
        app.router.add_post("/sandbox/ui/home", endpoint(self._home))
        app.router.add_post("/sandbox/ui/home_click", endpoint(self._home_click))
        # Where chat.getPermalink's links point: the page, opened on that message's thread.
        app.router.add_get("/archives/{channel}/{p}", self._permalink)
        app.on_shutdown.append(self._end_streams)

    async def _end_streams(self, _: web.Application) -> None:
        """So that the server stops without waiting on open pages."""
        self._closed = True
        self._ws.touch()

    # --- what one user sees ---

    def snapshot(self, user: str) -> dict[str, Any]:
        ws = self._ws
        channels = [c for c in ws.channels.values() if ws.is_member(c, user)]
        return {
            "me": user,
            "info": dict(self._emu.sandbox_info),
            "bot": {"id": ws.bot_user_id, "name": BOT_NAME},
            "users": [
                {"id": uid, "name": name, "role": self._role(uid)} for uid, name in ws.users.items()
            ],
            "usergroups": {
                gid: {"handle": _group_handle(gid), "members": list(members)}
                for gid, members in ws.usergroups.items()
            },
            "channels": [
                {"id": c.id, "name": BOT_NAME if c.is_im else c.name, "is_im": c.is_im}
                for c in channels
            ],
            # Public channels show their name in a link even to people outside them.
            "channel_names": {c.id: c.name for c in ws.channels.values() if not c.is_im},
            "messages": {
                c.id: [self._message(m, user) for m in ws.messages(c.id)] for c in channels
            },
            "ephemerals": [
                {
                    "channel": e.channel,
                    "ts": e.ts,
                    "thread_ts": e.thread_ts,
                    "text": e.text,
                    "blocks": e.blocks,
                }
                for e in ws.ephemerals
                if e.user == user
            ],
            "view": _top_view(ws.views, user),
            "home": ws.homes[user]["blocks"] if user in ws.homes else None,
        }

    def _role(self, user: str) -> str:
        groups = [
            _group_handle(gid) for gid, members in self._ws.usergroups.items() if user in members
        ]
        parts = [SAMPLE_ROLES[user]] if user in SAMPLE_ROLES else []
        parts += [f"@{g}" for g in groups]
        return ", ".join(parts)

    def _message(self, message: Message, viewer: str) -> dict[str, Any]:
        return {
            "ts": message.ts,
            "thread_ts": message.thread_ts,
            "user": message.user or self._ws.bot_user_id,
            "bot": message.user is None,
            "text": message.text,
            "blocks": message.blocks,
            "edited": message.edited,
            "reactions": self._displayed_reactions(message.channel, message.ts, viewer),
        }

    def _displayed_reactions(self, channel: str, ts: str, viewer: str) -> list[dict[str, Any]]:
        people = self._reactions.get((channel, ts), {})
        bot = self._ws.reactions(channel, ts)
        shown = []
        for name in dict.fromkeys([*bot, *people]):
            users = people.get(name, [])
            count = len(users) + (name in bot)
            if count:
                shown.append({"name": name, "count": count, "mine": viewer in users})
        return shown

    def _viewer(self, request: web.Request) -> str:
        # A page remembers its user across emulator restarts, whose users may differ: fall back
        # to the first user rather than fail, and the snapshot's `me` says who the page is.
        user = request.query.get("user", "")
        return user if user in self._ws.users else next(iter(self._ws.users))

    # --- pages and streams ---

    async def _index(self, _: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    async def _static(self, request: web.Request) -> web.FileResponse:
        path = STATIC / request.match_info["name"]
        # Only files that are in the folder itself: no `..`, no subfolders.
        if path.parent != STATIC or not path.is_file():
            raise web.HTTPNotFound()
        return web.FileResponse(path, headers={"Cache-Control": "no-cache"})

    async def _state(self, request: web.Request) -> web.Response:
        return web.json_response(self.snapshot(self._viewer(request)))

    async def _events(self, request: web.Request) -> web.StreamResponse:
        user = self._viewer(request)
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        sent = ""
        try:
            while not self._closed:
                # Take the event before reading the state, so a change in between is not missed.
                changed = self._ws.changed
                state = json.dumps(self.snapshot(user))
                if state != sent:
                    await response.write(f"event: state\ndata: {state}\n\n".encode())
                    sent = state
                try:
                    await asyncio.wait_for(changed.wait(), KEEPALIVE)
                except TimeoutError:
                    await response.write(b": keepalive\n\n")
        except ConnectionResetError:
            pass  # the page went away
        return response

    # --- what the page does ---

    def slack_text(self, typed: str) -> str:
        """What Slack's client sends for typed text: the three control characters escaped,
        and `@name`, `@U…` and `#channel` turned into mention tokens."""
        text = typed.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        ws = self._ws
        ids = {uid.lower(): uid for uid in [*ws.users, ws.bot_user_id]}
        ids.update({name.lower(): uid for uid, name in ws.users.items()})
        ids.update({BOT_NAME: ws.bot_user_id, "bot": ws.bot_user_id})
        channels = {c.name: c.id for c in ws.channels.values() if not c.is_im}

        def mention(match: re.Match[str]) -> str:
            uid = ids.get(match.group(1).lower())
            return match.group(0) if uid is None else f"<@{uid}>"

        def channel(match: re.Match[str]) -> str:
            cid = channels.get(match.group(1))
            return match.group(0) if cid is None else f"<#{cid}|{match.group(1)}>"

        return _CHANNEL.sub(channel, _MENTION.sub(mention, text))

    async def _submit(self, data: dict[str, Any]) -> dict[str, Any]:
        values = data.get("values")
        if not isinstance(values, dict) or not all(
            isinstance(actions, dict) and all(isinstance(v, dict) for v in actions.values())
            for actions in values.values()
        ):
            raise ValueError("values must map block_id -> action_id -> an element's state")
        delivery = await self._emu.submit_view(field(data, "user"), field(data, "view_id"), values)
        answer = delivery.answer() or {}
        errors = answer.get("errors") if answer.get("response_action") == "errors" else None
        return {"delivery": delivery.summary(), "errors": errors}

    async def _close(self, data: dict[str, Any]) -> dict[str, Any]:
        user, view_id = field(data, "user"), field(data, "view_id")
        view = next((v for v in self._ws.views if v.id == view_id), None)
        if view is not None and view.is_open and not view.view.get("notify_on_close"):
            # Slack closes such a modal without telling the app.
            if view.user != user:
                raise ValueError(f"view {view_id} was opened for {view.user}, not {user}")
            view.is_open = False
            self._ws.touch()
            return {"delivery": None}
        return {"delivery": (await self._emu.close_view(user, view_id)).summary()}

    async def _home(self, data: dict[str, Any]) -> dict[str, Any]:
        """The person opened the app's Home tab."""
        return {"delivery": (await self._emu.open_home(field(data, "user"))).summary()}

    async def _home_click(self, data: dict[str, Any]) -> dict[str, Any]:
        delivery = await self._emu.click_home(
            field(data, "user"), field(data, "action_id"), optional_field(data, "value")
        )
        return {"delivery": delivery.summary()}

    async def _permalink(self, request: web.Request) -> web.Response:
        channel = request.match_info["channel"]
        digits = request.match_info["p"].removeprefix("p")
        ts = f"{digits[:-6]}.{digits[-6:]}"
        thread = request.query.get("thread_ts") or ts
        raise web.HTTPFound(f"/?{urlencode({'channel': channel, 'thread': thread})}")

    async def _react(self, data: dict[str, Any]) -> dict[str, Any]:
        """Toggle the user's reaction, as clicking a reaction (or picking one) does in Slack."""
        user, channel, ts = field(data, "user"), field(data, "channel"), field(data, "ts")
        name = field(data, "name").strip(":")
        if not _REACTION_NAME.match(name):
            raise ValueError(f"not an emoji name: {name!r}")
        self._ws.user_name(user)
        if not self._ws.is_member(self._ws.channel(channel), user):
            raise ValueError(f"{user} is not a member of {channel}")
        if self._ws.find_message(channel, ts) is None:
            raise LookupError(f"no message with ts {ts} in {channel}")
        users = self._reactions.setdefault((channel, ts), {}).setdefault(name, [])
        if user in users:
            users.remove(user)
        else:
            users.append(user)
        self._ws.touch()
        return {"reactions": self._displayed_reactions(channel, ts, user)}


def _group_handle(group_id: str) -> str:
    """A readable handle for a user group; the emulator's groups have ids, not handles."""
    return group_id.removeprefix("S").lstrip("0").lower() or group_id.lower()


def _top_view(views: list[View], user: str) -> dict[str, Any] | None:
    """The modal the user sees: the last one opened for them that is still open."""
    for view in reversed(views):
        if view.user == user and view.is_open:
            return {"id": view.id, "view": view.view}
    return None
