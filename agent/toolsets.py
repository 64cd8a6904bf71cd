"""Loading the agent's tools: the built-in demo set, or a team's own from `APPROVALS_TOOLS`."""

from __future__ import annotations

import inspect
from collections.abc import Iterable

from langchain_core.tools import BaseTool, tool

from agent.specs import import_attribute


class ToolLoadError(ValueError):
    """`APPROVALS_TOOLS` does not point at usable tools; the message says why."""


async def load_tools(spec: str) -> list[BaseTool]:
    """Resolve `module:attr` to a list of tools.

    `attr` may be a list of LangChain tools (or plain functions, sync or async, which
    become tools from their signature and docstring), or a callable — sync or async —
    returning such a list.
    """
    target = import_attribute("APPROVALS_TOOLS", spec, ToolLoadError)
    if callable(target) and not isinstance(target, BaseTool):
        target = target()
        if inspect.isawaitable(target):
            target = await target
    if isinstance(target, BaseTool) or not isinstance(target, Iterable):
        raise ToolLoadError(
            f"APPROVALS_TOOLS={spec!r} must give a list of tools, got {type(target).__name__}"
        )
    return check_tools([_as_tool(spec, item) for item in target])


def _as_tool(spec: str, item: object) -> BaseTool:
    if isinstance(item, BaseTool):
        return item
    if callable(item) and getattr(item, "__doc__", None):
        return tool(item)
    raise ToolLoadError(
        f"APPROVALS_TOOLS={spec!r}: {item!r} is neither a LangChain tool nor a documented "
        "function (the docstring is what the model reads)"
    )


def check_tools(tools: list[BaseTool]) -> list[BaseTool]:
    """Duplicate names would make the policy ambiguous about which one it gates."""
    seen: set[str] = set()
    for item in tools:
        if item.name in seen:
            raise ToolLoadError(f"two tools are named {item.name!r}; tool names must be unique")
        seen.add(item.name)
    if not tools:
        raise ToolLoadError("the tool list is empty")
    return tools


def tool_names(tools: Iterable[BaseTool]) -> list[str]:
    return [t.name for t in tools]
