"""Isolation for the security tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from langchain_openai.chat_models._client_utils import _cached_async_httpx_client


@pytest.fixture(autouse=True)
def fresh_model_clients() -> Iterator[None]:
    """langchain-openai caches one httpx client per base URL for the whole process. Every
    test has its own event loop and its own fake model server, and when the OS hands a later
    server a port an earlier one had, the cached client's connections belong to a closed
    loop ("Event loop is closed"). Remove this once tests/conftest.py's `model` fixture (or
    agent/model.py) stops sharing clients across loops."""
    _cached_async_httpx_client.cache_clear()
    yield
    _cached_async_httpx_client.cache_clear()
