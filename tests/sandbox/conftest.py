"""What the sandbox's tests share: an emulator for an app subscribed to mentions and DMs only
(channel chatter is not its business), and a Web API client of the `slack` fixture's emulator
(tests/conftest.py's, unless a module asks for this one)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.sandbox.emulator import SlackEmulator
from bot.sandbox.web import serve_sandbox


@pytest.fixture
async def mentions_and_dms() -> AsyncIterator[SlackEmulator]:
    emulator = SlackEmulator(bot_events=("app_mention", "message.im"))
    async with serve_sandbox(emulator):
        yield emulator


@pytest.fixture
def client(slack: SlackEmulator) -> AsyncWebClient:
    return AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
