"""Tool names the model can use.

OpenAI-compatible APIs take function names matching `^[A-Za-z0-9_-]{1,64}$`, but the policy,
the cards and the audit name MCP tools `server.tool`. The agent's own name for a tool stays
the policy name everywhere in the graph; only what goes to the model and what comes back is
translated, `github.delete_repo` ↔ `github__delete_repo`.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from langchain.agents.middleware import AgentMiddleware
from langchain.agents.middleware.types import ExtendedModelResponse, ModelRequest, ModelResponse
from langchain_core.messages import AIMessage, AnyMessage, ToolMessage
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool

from agent.toolsets import ToolLoadError

_ALLOWED = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def model_name(name: str) -> str:
    """`server.tool` → `server__tool`; any other character a function name cannot hold → `_`."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", name.replace(".", "__", 1))


class ModelToolNames(AgentMiddleware):
    """Shows the model a valid function name for every tool whose own name is not one."""

    def __init__(self, tools: Iterable[BaseTool]) -> None:
        super().__init__()
        self._to_model: dict[str, str] = {}
        names = {t.name for t in tools}
        for name in sorted(names):
            if _ALLOWED.match(name):
                continue
            shown = model_name(name)
            if not _ALLOWED.match(shown) or shown in names or shown in self._to_model.values():
                raise ToolLoadError(
                    f"tool {name!r} cannot be shown to the model: its function name "
                    f"{shown!r} is too long (64 at most) or taken by another tool"
                )
            self._to_model[name] = shown
        self._from_model = {shown: name for name, shown in self._to_model.items()}

    async def awrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]],
    ) -> ModelResponse[Any] | AIMessage | ExtendedModelResponse[Any]:
        if not self._to_model:
            return await handler(request)
        request = request.override(
            tools=[self._tool(t) for t in request.tools],
            messages=[self._message(m, self._to_model) for m in request.messages],
        )
        response = await handler(request)
        return ModelResponse(
            result=[self._message(m, self._from_model) for m in response.result],
            structured_response=response.structured_response,
        )

    def _tool(self, tool: BaseTool | dict[str, Any]) -> BaseTool | dict[str, Any]:
        if isinstance(tool, dict) or tool.name not in self._to_model:
            return tool
        spec = convert_to_openai_tool(tool)
        spec["function"]["name"] = self._to_model[tool.name]
        return spec

    @staticmethod
    def _message(message: Any, names: dict[str, str]) -> AnyMessage:
        if isinstance(message, AIMessage) and (message.tool_calls or message.invalid_tool_calls):
            return message.model_copy(
                update={
                    "tool_calls": [
                        {**c, "name": names.get(c["name"], c["name"])} for c in message.tool_calls
                    ],
                    "invalid_tool_calls": [
                        {**c, "name": names.get(c["name"] or "", c["name"])}
                        for c in message.invalid_tool_calls
                    ],
                }
            )
        if isinstance(message, ToolMessage) and message.name in names:
            return message.model_copy(update={"name": names[message.name]})
        return message  # type: ignore[no-any-return]
