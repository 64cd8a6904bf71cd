"""What the sandbox's tests share: a Web API client of the emulator (the `slack` fixture of
tests/conftest.py)."""

from __future__ import annotations

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.sandbox.emulator import SlackEmulator


@pytest.fixture
def client(slack: SlackEmulator) -> AsyncWebClient:
    return AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
