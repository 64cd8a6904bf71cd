"""LangSmith's per-hook run set-up stays on the event loop while tracing is off
(agent/tracing.py): a `create_agent` run with wrapping middleware hands nothing to a thread."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import langsmith
import pytest
from langchain.agents import create_agent
from langchain.agents.middleware import ToolErrorMiddleware
from langchain_core.messages import HumanMessage

from agent.builder import tool_error
from agent.offline_model import OfflineChatModel
from agent.tracing import _in_place_unless_tracing, keep_untraced_hooks_in_place
from bench import tools


class CountingExecutor(ThreadPoolExecutor):
    def __init__(self) -> None:
        super().__init__(max_workers=1)
        self.submitted = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        self.submitted += 1
        return super().submit(fn, *args, **kwargs)


@pytest.fixture
def no_override() -> Iterator[None]:
    langsmith.set_runtime_overrides()
    try:
        yield
    finally:
        keep_untraced_hooks_in_place()


async def hops_to_threads() -> int:
    """Thread-pool submissions during one agent turn whose tool call passes through a
    wrapping middleware (LangSmith's `traceable` wraps its hook)."""
    graph = create_agent(
        model=OfflineChatModel(),
        tools=tools.TOOLS,
        middleware=[ToolErrorMiddleware(aon_error=tool_error)],
    )
    executor = CountingExecutor()
    asyncio.get_running_loop().set_default_executor(executor)
    tools.take_starts()
    await graph.ainvoke({"messages": [HumanMessage(content="scale down c-1 to 2")]})
    assert [cluster for cluster, _ in tools.take_starts()] == ["c-1"]
    return executor.submitted


async def test_without_the_override_each_hook_hops_to_a_thread(no_override: None) -> None:
    assert await hops_to_threads() > 0


async def test_with_tracing_off_no_hook_hops_to_a_thread(
    no_override: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LANGSMITH_TRACING", raising=False)
    monkeypatch.delenv("LANGCHAIN_TRACING_V2", raising=False)
    keep_untraced_hooks_in_place()
    assert await hops_to_threads() == 0


async def test_with_tracing_on_langsmith_keeps_its_thread() -> None:
    used: list[str] = []

    async def default(ctx: contextvars.Context, func: Callable[[], str]) -> str:
        used.append("default")
        return ctx.run(func)

    with langsmith.tracing_context(enabled=True):
        ctx = contextvars.copy_context()
    assert await _in_place_unless_tracing(default, ctx, lambda: "ran") == "ran"
    assert used == ["default"]
    with langsmith.tracing_context(enabled=False):
        ctx = contextvars.copy_context()
    assert await _in_place_unless_tracing(default, ctx, lambda: "ran") == "ran"
    assert used == ["default"]
