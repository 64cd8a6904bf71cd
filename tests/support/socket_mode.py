"""A Bolt app connected to the emulator over Socket Mode, for as long as a block runs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp

from bot.sandbox.emulator import SlackEmulator


@asynccontextmanager
async def socket_mode(slack: SlackEmulator, app: AsyncApp) -> AsyncIterator[None]:
    handler = AsyncSocketModeHandler(app, slack.app_token)
    await handler.connect_async()
    try:
        yield
    finally:
        # slack-sdk's close can linger on its ping loop; never let it stall the suite.
        await asyncio.wait_for(handler.close_async(), 5)
