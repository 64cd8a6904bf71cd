"""The "working" sign: a reaction on the message a run answers, for people waiting on a run
that takes a while (a model call). It never delays the run, and a run that is over at once
never flickers it."""

from __future__ import annotations

import asyncio
import logging

from slack_sdk.web.async_client import AsyncWebClient

from bot.conversation import Conversation

log = logging.getLogger(__name__)

WORKING_REACTION = "hourglass_flowing_sand"
WORKING_SIGN_AFTER_S = 1.0


class WorkingSign:
    """Put up on `conv`'s message once a run started now has taken `WORKING_SIGN_AFTER_S`."""

    def __init__(self, client: AsyncWebClient, conv: Conversation) -> None:
        self._client = client
        self._conv = conv
        self._adding: list[asyncio.Task[None]] = []
        self._timer = asyncio.get_running_loop().call_later(
            WORKING_SIGN_AFTER_S,
            lambda: self._adding.append(asyncio.create_task(self._react("add"))),
        )

    def cancel(self) -> None:
        """The run is over: the sign is not put up from now on."""
        self._timer.cancel()

    async def take_down(self) -> None:
        """Remove the sign if it went up (call after `cancel`)."""
        if self._adding:
            await self._adding[0]
            await self._react("remove")

    async def _react(self, how: str) -> None:
        conv = self._conv
        if conv.reply_thread_ts is None:
            return  # a DM's main view has no one message the run belongs to
        method = self._client.reactions_add if how == "add" else self._client.reactions_remove
        try:
            await method(channel=conv.channel, timestamp=conv.thread_ts, name=WORKING_REACTION)
        except Exception as exc:  # a reaction is decoration: never worth failing a run for
            log.debug("reaction %s failed: %s", how, exc)
