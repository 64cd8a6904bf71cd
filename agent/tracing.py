"""LangSmith's run set-up for each middleware hook, kept on the event loop while tracing is
off.

`create_agent` wraps every middleware's `awrap_tool_call` and `awrap_model_call` in LangSmith's
`traceable`. Its async wrapper opens and closes the trace's run on a worker thread
(`run_in_executor`) even when tracing is off: two thread hops for each middleware on each call,
five before the built-in agent's gated tool starts (about 0.6 ms of the click's path, and CPU on
every call; bench/README.md). With tracing off that set-up touches neither network nor disk,
so it runs in place; with tracing on (`LANGSMITH_TRACING=true`), LangSmith's own thread is
kept. The hook (`langsmith.set_runtime_overrides`, public, meant for runtimes such as Temporal)
is process-wide: the bot installs it as it starts.
"""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable
from typing import Any

import langsmith
from langsmith.utils import tracing_is_enabled

AioToThread = Callable[..., Awaitable[Any]]


async def _in_place_unless_tracing(
    default: AioToThread,
    ctx: contextvars.Context,
    func: Callable[..., Any],
    /,
    *args: Any,
    **kwargs: Any,
) -> Any:
    if ctx.run(tracing_is_enabled):
        return await default(ctx, func, *args, **kwargs)
    return ctx.run(func, *args, **kwargs)


def keep_untraced_hooks_in_place() -> None:
    langsmith.set_runtime_overrides(aio_to_thread=_in_place_unless_tracing)
