"""The Web API's view methods: modals (views.open, views.update) and Home tabs (views.publish)."""

from __future__ import annotations

import secrets
import time
from typing import Any

from bot.sandbox.blockkit import (
    MAX_VIEW_BLOCKS,
    MAX_VIEW_TITLE,
    decode_json_param,
    normalize_blocks,
)
from bot.sandbox.records import BOT_ID, ApiError, View, random_id
from bot.sandbox.state import Workspace

TRIGGER_LIFETIME = 3.0  # seconds, Slack's documented trigger_id expiry

Params = dict[str, Any]


class Views:
    def __init__(self, workspace: Workspace) -> None:
        self._ws = workspace
        self._used_triggers: set[str] = set()

    def open(self, params: Params) -> dict[str, Any]:
        trigger_id = str(params.get("trigger_id") or params.get("interactivity_pointer") or "")
        issued = self._ws.triggers.get(trigger_id)
        if issued is None:
            raise ApiError("invalid_trigger_id")
        if trigger_id in self._used_triggers:
            raise ApiError("exchanged_trigger_id")
        user, created = issued
        if time.monotonic() - created > TRIGGER_LIFETIME:
            raise ApiError("expired_trigger_id")
        view_id = "V" + random_id(10)
        view = self.view_json(view_id, view_id, params.get("view"))
        self._used_triggers.add(trigger_id)
        self._ws.views.append(View(view_id, user, trigger_id, view))
        self._ws.touch()
        return {"view": view}

    def update(self, params: Params) -> dict[str, Any]:
        view_id, external_id = params.get("view_id"), params.get("external_id")
        for record in self._ws.views:
            if record.is_open and (
                record.id == view_id or (external_id and record.view["external_id"] == external_id)
            ):
                break
        else:
            raise ApiError("not_found")
        if params.get("hash") and params["hash"] != record.view["hash"]:
            raise ApiError("hash_conflict")
        record.view = self.view_json(record.id, record.view["root_view_id"], params.get("view"))
        self._ws.touch()
        return {"view": record.view}

    def view_json(self, view_id: str, root_id: str, raw: Any) -> dict[str, Any]:
        view = decode_json_param(raw)
        if not isinstance(view, dict) or view.get("type") != "modal":
            raise ApiError(
                "invalid_arguments",
                response_metadata={"messages": ["[ERROR] view.type must be modal"]},
            )
        problems: list[str] = []
        title = view.get("title")
        if not isinstance(title, dict) or not 0 < len(str(title.get("text", ""))) <= MAX_VIEW_TITLE:
            problems.append(
                f"[ERROR] title must be 1-{MAX_VIEW_TITLE} characters "
                "[json-pointer:/view/title/text]"
            )
        try:
            blocks = normalize_blocks(view.get("blocks"), MAX_VIEW_BLOCKS)
        except ApiError as e:
            problems.extend(e.extra["response_metadata"]["messages"])
            blocks = []
        if any(b["type"] == "input" for b in blocks) and not view.get("submit"):
            problems.append(
                "[ERROR] submit is required when an input block is within the blocks "
                "[json-pointer:/view/submit]"
            )
        if problems:
            raise ApiError("invalid_arguments", response_metadata={"messages": problems})
        return {
            "id": view_id,
            "team_id": self._ws.team_id,
            "type": "modal",
            "blocks": blocks,
            "private_metadata": str(view.get("private_metadata") or ""),
            "callback_id": str(view.get("callback_id") or ""),
            "state": {"values": {}},
            "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
            "title": title,
            "close": view.get("close"),
            "submit": view.get("submit"),
            "clear_on_close": bool(view.get("clear_on_close")),
            "notify_on_close": bool(view.get("notify_on_close")),
            "previous_view_id": None,
            "root_view_id": root_id,
            "app_id": self._ws.app_id,
            "external_id": str(view.get("external_id") or ""),
            "app_installed_team_id": self._ws.team_id,
            "bot_id": BOT_ID,
        }

    def publish(self, params: Params) -> dict[str, Any]:
        user = str(params.get("user_id") or "")
        if user not in self._ws.users:
            raise ApiError("user_not_found")
        view = decode_json_param(params.get("view"))
        if not isinstance(view, dict) or view.get("type") != "home":
            raise ApiError(
                "invalid_arguments",
                response_metadata={"messages": ["[ERROR] view.type must be home"]},
            )
        previous = self._ws.homes.get(user)
        if params.get("hash") and previous is not None and params["hash"] != previous["hash"]:
            raise ApiError("hash_conflict")
        published: dict[str, Any] = {
            "id": previous["id"] if previous else "V" + random_id(10),
            "team_id": self._ws.team_id,
            "type": "home",
            "blocks": normalize_blocks(view.get("blocks"), MAX_VIEW_BLOCKS),
            "private_metadata": str(view.get("private_metadata") or ""),
            "callback_id": str(view.get("callback_id") or ""),
            "state": {"values": {}},
            "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
            "external_id": str(view.get("external_id") or ""),
            "app_id": self._ws.app_id,
            "bot_id": BOT_ID,
        }
        self._ws.homes[user] = published
        self._ws.touch()
        return {"view": published}
