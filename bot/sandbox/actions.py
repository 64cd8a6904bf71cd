"""What people do in the emulated workspace (post, run a slash command, click, open the Home tab,
submit or close a modal), each delivered to the app as Slack delivers it."""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from typing import Any

from bot.sandbox import payloads
from bot.sandbox.delivery import HttpDelivery, NoAck, SocketModeServer
from bot.sandbox.records import (
    ApiError,
    Delivery,
    DeliveryKind,
    Message,
    ResponseTarget,
    View,
    dm_channel_id,
    find_buttons,
    random_id,
)
from bot.sandbox.state import Workspace
from bot.sandbox.webapi import WebApi


class UserActions(ABC):
    """The emulator's user actions and the delivery they go through; SlackEmulator supplies the
    workspace, the Web API and the transports."""

    _ws: Workspace
    _api: WebApi
    _socket: SocketModeServer
    _http: HttpDelivery
    _use_http: bool
    commands: frozenset[str]
    ack_timeout: float

    @property
    @abstractmethod
    def base_url(self) -> str: ...

    @abstractmethod
    def message(self, channel: str, ts: str) -> Message: ...

    async def deliver(
        self,
        kind: DeliveryKind,
        payload: dict[str, Any],
        *,
        retry_num: int = 0,
        retry_reason: str = "",
    ) -> Delivery:
        transport = self._http if self._use_http else self._socket
        if not self._use_http:
            await self._socket.ready()  # outside the ack deadline: waiting for a client is setup
        delivery = Delivery(
            kind=kind,
            payload=payload,
            retry_num=retry_num,
            retry_reason=retry_reason,
            transport="http" if self._use_http else "socket_mode",
            at=time.time(),
        )
        try:
            async with asyncio.timeout(self.ack_timeout):
                delivery.ack = await transport.send(
                    kind, payload, retry_num=retry_num, retry_reason=retry_reason
                )
        except TimeoutError:
            delivery.error = f"no ack within {self.ack_timeout} s"
        except NoAck as e:
            delivery.error = str(e)
        self._ws.deliveries.append(delivery)
        self._ws.touch()
        return delivery

    def _member(self, user: str, channel: str) -> None:
        self._ws.user_name(user)
        if not self._ws.is_member(self._ws.channel(channel), user):
            raise ValueError(f"{user} is not a member of {channel}")

    def _response_url(self, target: ResponseTarget) -> str:
        return self._ws.new_response_url(self.base_url, target)

    async def post_user_message(
        self, user: str, channel: str, text: str, thread_ts: str | None = None
    ) -> str:
        self._member(user, channel)
        message = self._ws.add_message(
            channel, user=user, text=text, blocks=[], thread_ts=thread_ts
        )
        for payload in payloads.message_events(self._ws, message):
            await self.deliver("events_api", payload)
        return message.ts

    async def slash_command(self, user: str, channel: str, command: str, text: str) -> Delivery:
        self._member(user, channel)
        if not command.startswith("/"):
            raise ValueError(f"a slash command starts with '/', got {command!r}")
        target = ResponseTarget(channel, user, None, None)
        if command not in self.commands:
            self._api.apply_response(target, {"text": not_a_command(command)})
            return Delivery(
                kind="slash_commands",
                payload={"command": command, "text": text},
                retry_num=0,
                retry_reason="",
                transport="http" if self._use_http else "socket_mode",
                at=time.time(),
                error=f"{command} is not a command the app registered",
            )
        payload = payloads.slash_command(
            self._ws,
            user=user,
            channel=channel,
            command=command,
            text=text,
            response_url=self._response_url(target),
            trigger_id=self._ws.new_trigger(user),
        )
        delivery = await self.deliver("slash_commands", payload)
        # Slack shows a slash command's ack body to the user (or the channel, when in_channel).
        shown = delivery.answer()
        if shown is not None and (shown.get("text") or shown.get("blocks")):
            try:
                self._api.apply_response(target, shown)
            except ApiError as e:
                delivery.error = f"ack body rejected: {e.error}"
        return delivery

    async def click(
        self, user: str, channel: str, message_ts: str, action_id: str, value: str | None = None
    ) -> Delivery:
        self._member(user, channel)
        message = self.message(channel, message_ts)
        buttons = message.buttons()
        matching = [
            b for b in buttons if b.action_id == action_id and (value is None or b.value == value)
        ]
        if not matching:
            wanted = action_id if value is None else f"{action_id} (value {value!r})"
            present = [(b.action_id, b.value) for b in buttons]
            raise LookupError(
                f"message {message_ts} in {channel} has no button {wanted}; its buttons: {present}"
            )
        target = ResponseTarget(channel, user, message.ts, message.thread_ts)
        payload = payloads.block_actions(
            self._ws,
            user=user,
            message=message,
            button=matching[0],
            response_url=self._response_url(target),
            trigger_id=self._ws.new_trigger(user),
        )
        return await self.deliver("interactive", payload)

    def set_members(self, channel: str, users: list[str]) -> None:
        """Who is in a channel (the bot always is); people outside it cannot post there."""
        for user in users:
            self._ws.user_name(user)
        found = self._ws.channel(channel)
        if found.is_im:
            raise ValueError(f"{channel} is a DM: its members are fixed")
        found.members = list(users)
        self._ws.touch()

    def home(self, user: str) -> dict[str, Any] | None:
        """The Home tab the app last published for `user`."""
        self._ws.user_name(user)
        return self._ws.homes.get(user)

    async def open_home(self, user: str) -> Delivery:
        """The person opens the app's Home tab."""
        self._ws.user_name(user)
        if "app_home_opened" not in self._ws.bot_events:
            raise ValueError("the app is not subscribed to app_home_opened: nothing is sent")
        return await self.deliver(
            "events_api",
            payloads.app_home_opened(self._ws, user=user, channel=dm_channel_id(user)),
        )

    async def click_home(self, user: str, action_id: str, value: str | None = None) -> Delivery:
        """Click a button on the Home tab the app published for `user`."""
        view = self.home(user)
        if view is None:
            raise LookupError(f"no Home tab was published for {user}")
        buttons = [
            b
            for b in find_buttons(view["blocks"])
            if b.action_id == action_id and (value is None or b.value == value)
        ]
        if not buttons:
            present = [(b.action_id, b.value) for b in find_buttons(view["blocks"])]
            raise LookupError(f"{user}'s Home tab has no button {action_id}; buttons: {present}")
        payload = payloads.home_block_actions(
            self._ws, user=user, button=buttons[0], trigger_id=self._ws.new_trigger(user)
        )
        return await self.deliver("interactive", payload)

    def _open_view(self, user: str, view_id: str) -> View:
        for view in self._ws.views:
            if view.id == view_id:
                if not view.is_open:
                    raise ValueError(f"view {view_id} is already closed")
                if view.user != user:
                    raise ValueError(f"view {view_id} was opened for {view.user}, not {user}")
                return view
        raise LookupError(f"no view {view_id} was opened; opened: {[v.id for v in self._ws.views]}")

    async def submit_view(
        self, user: str, view_id: str, values: dict[str, dict[str, dict[str, Any]]]
    ) -> Delivery:
        view = self._open_view(user, view_id)
        payload = payloads.view_submission(
            self._ws, user=user, view=view, values=values, trigger_id=self._ws.new_trigger(user)
        )
        delivery = await self.deliver("interactive", payload)
        answer = delivery.answer() or {}
        action = answer.get("response_action")
        try:
            if delivery.ack is None or delivery.ack.status != 200 or action == "errors":
                pass  # the modal stays open, showing an error
            elif action == "update":
                view.view = self._api.views.view_json(
                    view.id, view.view["root_view_id"], answer["view"]
                )
            elif action == "push":
                pushed = self._api.views.view_json(
                    "V" + random_id(10), view.view["root_view_id"], answer["view"]
                )
                self._ws.views.append(View(pushed["id"], user, payload["trigger_id"], pushed))
            else:
                view.is_open = False
        except (ApiError, KeyError) as e:
            delivery.error = f"response_action rejected: {e}"
        self._ws.touch()
        return delivery

    async def close_view(self, user: str, view_id: str) -> Delivery:
        view = self._open_view(user, view_id)
        view.is_open = False
        self._ws.touch()
        if not view.view.get("notify_on_close"):
            raise ValueError(
                f"view {view_id} is closed, but Slack sends view_closed only for views opened "
                "with notify_on_close: true, so nothing was delivered"
            )
        return await self.deliver(
            "interactive", payloads.view_closed(self._ws, user=user, view=view)
        )


def not_a_command(command: str) -> str:
    """What Slack's client says to a slash command no app in the workspace registered."""
    return (
        f'{command} is not a valid command. In Slack, all messages that start with the "/" '
        "character are interpreted as commands."
    )
