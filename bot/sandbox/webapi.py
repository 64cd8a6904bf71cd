"""The emulated Web API (`/api/{method}`) and response_url endpoints, with injectable faults."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass
from typing import Any

from aiohttp import web

from bot.sandbox.blockkit import (
    decode_json_param,
    normalize_blocks,
)
from bot.sandbox.directory import Directory, channel_param
from bot.sandbox.faults import Faults
from bot.sandbox.records import (
    BOT_ID,
    BOT_NAME,
    TEAM_DOMAIN,
    ApiCall,
    ApiError,
    Channel,
    Ephemeral,
    ResponseTarget,
    dm_channel_id,
)
from bot.sandbox.state import Workspace
from bot.sandbox.views import Views

Params = dict[str, Any]

JSON_PARAMS = ("blocks", "view", "attachments", "metadata")
APP_TOKEN_METHODS = frozenset({"apps.connections.open"})


@dataclass(eq=False, repr=False)
class WebApi:
    workspace: Workspace
    _: KW_ONLY
    bot_token: str
    app_token: str
    issue_socket_url: Callable[[], str]
    page_url: Callable[[], str]

    def __post_init__(self) -> None:
        self.faults = Faults(self.workspace)
        self.views = Views(self.workspace)
        directory = Directory(self.workspace)
        self._handlers: dict[str, Callable[[Params], dict[str, Any]]] = {
            "auth.test": self._auth_test,
            "apps.connections.open": self._apps_connections_open,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.getPermalink": self._chat_get_permalink,
            "views.open": self.views.open,
            "views.update": self.views.update,
            "reactions.add": self._reactions_add,
            "reactions.remove": self._reactions_remove,
            "users.info": directory.users_info,
            "users.list": directory.users_list,
            "usergroups.users.list": directory.usergroups_users_list,
            "conversations.info": directory.conversations_info,
            "conversations.open": directory.conversations_open,
            "conversations.members": directory.conversations_members,
            "views.publish": self.views.publish,
            "assistant.threads.setStatus": self._assistant_threads_set_status,
        }

    # --- HTTP ---

    async def handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        try:
            params = await _read_params(request)
        except ValueError:
            return self._answer(method, {}, {"ok": False, "error": "invalid_json"})
        header = request.headers.get("Authorization", "")
        param_token = str(params.pop("token", "") or "")
        token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
        token = token or param_token
        recorded = {k: decode_json_param(v) if k in JSON_PARAMS else v for k, v in params.items()}

        fault = self.faults.take(method, params)
        if fault is not None and fault.kind == "delay":
            await asyncio.sleep(fault.delay)
        elif fault is not None and fault.kind == "ratelimited":
            return self._answer(
                method,
                recorded,
                {"ok": False, "error": "ratelimited"},
                status=429,
                headers={"Retry-After": str(fault.retry_after)},
            )
        elif fault is not None:
            return self._answer(method, recorded, {"ok": False, "error": fault.error}, fault.status)

        try:
            body = {"ok": True, **self._dispatch(method, token, params)}
        except ApiError as e:
            body = {"ok": False, "error": e.error, **e.extra}
        return self._answer(method, recorded, body)

    def _dispatch(self, method: str, token: str, params: Params) -> dict[str, Any]:
        handler = self._handlers.get(method)
        if handler is None:
            raise ApiError("unknown_method", req_method=method)
        if not token:
            raise ApiError("not_authed")
        if token not in (self.bot_token, self.app_token):
            raise ApiError("invalid_auth")
        wanted = self.app_token if method in APP_TOKEN_METHODS else self.bot_token
        if token != wanted:
            raise ApiError("not_allowed_token_type")
        return handler(params)

    def _answer(
        self,
        method: str,
        params: Params,
        body: dict[str, Any],
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> web.Response:
        self.workspace.calls.append(ApiCall(method, params, body, status, time.time()))
        self.workspace.touch()
        return web.json_response(body, status=status, headers=headers)

    async def handle_response_url(self, request: web.Request) -> web.Response:
        target = self.workspace.response_targets.get(request.match_info["key"])
        try:
            body = await request.json()
        except ValueError:
            body = None
        if target is None:
            answer, status = {"ok": False, "error": "expired_url"}, 404
        elif not isinstance(body, dict):
            answer, status = {"ok": False, "error": "invalid_json"}, 400
        else:
            try:
                self.apply_response(target, body)
                answer, status = {"ok": True}, 200
            except ApiError as e:
                answer, status = {"ok": False, "error": e.error, **e.extra}, 400
        return self._answer("response_url", body if isinstance(body, dict) else {}, answer, status)

    def apply_response(self, target: ResponseTarget, body: dict[str, Any]) -> None:
        """Show a response (response_url post or slash command ack body) the way Slack does."""
        blocks = normalize_blocks(body.get("blocks"))
        text = str(body.get("text") or "")
        channel = target.channel
        if target.message_ts is not None and body.get("delete_original"):
            self.workspace.delete_message(channel, target.message_ts)
            return
        if target.message_ts is not None and body.get("replace_original"):
            original = self.workspace.find_message(channel, target.message_ts)
            if original is None:
                raise ApiError("message_not_found")
            self.workspace.edit_message(original, text=text, blocks=blocks)
            return
        if not text and not blocks:
            raise ApiError("no_text")
        thread_ts = body.get("thread_ts") or target.thread_ts
        if body.get("response_type") == "in_channel":
            self.workspace.add_message(
                channel, user=None, text=text, blocks=blocks, thread_ts=thread_ts
            )
        else:
            self._add_ephemeral(channel, target.user, text, blocks, thread_ts)

    def _add_ephemeral(
        self,
        channel: str,
        user: str,
        text: str,
        blocks: list[dict[str, Any]],
        thread_ts: str | None,
    ) -> str:
        ts = self.workspace.next_ts()
        self.workspace.ephemerals.append(Ephemeral(channel, user, text, blocks, thread_ts, ts))
        self.workspace.touch()
        return ts

    # --- parameter helpers ---

    def _channel(self, params: Params, name: str = "channel") -> Channel:
        return channel_param(self.workspace, params, name)

    def _message_params(self, params: Params) -> tuple[str, list[dict[str, Any]]]:
        blocks = normalize_blocks(params.get("blocks"))
        text = str(params.get("text") or "")
        if not text and not blocks:
            raise ApiError("no_text")
        return text, blocks

    # --- methods ---

    def _auth_test(self, _: Params) -> dict[str, Any]:
        return {
            "url": f"https://{TEAM_DOMAIN}.slack.com/",
            "team": TEAM_DOMAIN.capitalize(),
            "user": BOT_NAME,
            "team_id": self.workspace.team_id,
            "user_id": self.workspace.bot_user_id,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _apps_connections_open(self, _: Params) -> dict[str, Any]:
        return {"url": self.issue_socket_url()}

    def _chat_post_message(self, params: Params) -> dict[str, Any]:
        target = str(params.get("channel") or "")
        # Posting to a user id opens (here: finds) the bot's DM with that user, as in Slack.
        if target in self.workspace.users:
            params = {**params, "channel": dm_channel_id(target)}
        channel = self._channel(params)
        text, blocks = self._message_params(params)
        thread_ts = params.get("thread_ts") or None
        message = self.workspace.add_message(
            channel.id, user=None, text=text, blocks=blocks, thread_ts=thread_ts
        )
        return {
            "channel": channel.id,
            "ts": message.ts,
            "message": self.workspace.message_json(message),
        }

    def _chat_update(self, params: Params) -> dict[str, Any]:
        channel = self._channel(params)
        message = self.workspace.find_message(channel.id, str(params.get("ts") or ""))
        if message is None:
            raise ApiError("message_not_found")
        if message.user is not None:
            raise ApiError("cant_update_message")
        text = params.get("text")
        blocks = normalize_blocks(params["blocks"]) if params.get("blocks") is not None else None
        if text is None and blocks is None:
            raise ApiError("no_text")
        self.workspace.edit_message(
            message, text=None if text is None else str(text), blocks=blocks
        )
        return {
            "channel": channel.id,
            "ts": message.ts,
            "text": message.text,
            "message": self.workspace.message_json(message),
        }

    def _chat_post_ephemeral(self, params: Params) -> dict[str, Any]:
        channel = self._channel(params)
        user = str(params.get("user") or "")
        if user not in self.workspace.users or not self.workspace.is_member(channel, user):
            raise ApiError("user_not_in_channel")
        text, blocks = self._message_params(params)
        thread_ts = params.get("thread_ts") or None
        return {"message_ts": self._add_ephemeral(channel.id, user, text, blocks, thread_ts)}

    def _reaction_target(self, params: Params) -> tuple[list[str], str]:
        channel = self._channel(params)
        if self.workspace.find_message(channel.id, str(params.get("timestamp") or "")) is None:
            raise ApiError("message_not_found")
        name = str(params.get("name") or "").strip(":")
        if not name:
            raise ApiError("invalid_name")
        return self.workspace.reactions(channel.id, str(params["timestamp"])), name

    def _reactions_add(self, params: Params) -> dict[str, Any]:
        names, name = self._reaction_target(params)
        if name in names:
            raise ApiError("already_reacted")
        names.append(name)
        self.workspace.touch()
        return {}

    def _reactions_remove(self, params: Params) -> dict[str, Any]:
        names, name = self._reaction_target(params)
        if name not in names:
            raise ApiError("no_reaction")
        names.remove(name)
        self.workspace.touch()
        return {}

    def _chat_get_permalink(self, params: Params) -> dict[str, Any]:
        channel = self._channel(params)
        message = self.workspace.find_message(channel.id, str(params.get("message_ts") or ""))
        if message is None:
            raise ApiError("message_not_found")
        # Pointing at the sandbox page, so a link in a card opens the thread there.
        link = f"{self.page_url()}archives/{channel.id}/p{message.ts.replace('.', '')}"
        if message.thread_ts is not None:
            link += f"?thread_ts={message.thread_ts}&cid={channel.id}"
        return {"channel": channel.id, "permalink": link}

    def _assistant_threads_set_status(self, params: Params) -> dict[str, Any]:
        self._channel(params, "channel_id")
        return {}


async def _read_params(request: web.Request) -> Params:
    """Query string plus form or JSON body, like Slack accepts; JSON nulls count as absent."""
    params: Params = dict(request.query)
    if request.method == "POST" and request.can_read_body:
        if request.content_type == "application/json":
            body = json.loads(await request.text())
            if not isinstance(body, dict):
                raise ValueError("a JSON body must be an object")
            params.update(body)
        else:
            form = await request.post()
            params.update({k: v for k, v in form.items() if isinstance(v, str)})
    return {k: v for k, v in params.items() if v is not None}
