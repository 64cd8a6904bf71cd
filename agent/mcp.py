"""Tools served by MCP servers, from an `mcpServers` file (`APPROVALS_MCP`).

The file is the one MCP clients already use::

    {"mcpServers": {
        "github": {"command": "github-mcp", "args": ["--stdio"], "env": {"TOKEN": "${GH_TOKEN}"}},
        "tickets": {"url": "https://mcp.example.com/mcp",
                    "headers": {"Authorization": "Bearer ${TICKETS_TOKEN}"}}}}

Each server's tools are named `server.tool` (`github.delete_repo`): the policy, the cards and
the audit use that name. Calls go through `langchain-mcp-adapters`, one session per call as
its tools do by default, so a server that restarts between two calls is not noticed.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Literal

from langchain_core.tools import BaseTool
from langchain_mcp_adapters.interceptors import MCPToolCallRequest, MCPToolCallResult
from langchain_mcp_adapters.sessions import (
    Connection,
    StdioConnection,
    StreamableHttpConnection,
    create_session,
)
from langchain_mcp_adapters.tools import load_mcp_tools
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from agent.idempotency import current_approval_id
from agent.toolsets import ToolLoadError

IDEMPOTENCY_META_KEY = "idempotencyKey"
START_TIMEOUT_S = 30.0
_SERVER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class _Server(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["stdio", "http", "streamable-http", "streamable_http"] | None = None
    command: str | None = None
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] | None = None
    cwd: str | None = None
    url: str | None = None
    headers: dict[str, str] | None = None

    @model_validator(mode="after")
    def _one_transport(self) -> _Server:
        stdio = self.command is not None
        http = self.url is not None
        if stdio == http:
            raise ValueError("give either 'command' (stdio) or 'url' (streamable HTTP)")
        if self.type is not None and (self.type == "stdio") != stdio:
            raise ValueError(f"type {self.type!r} does not match {'command' if stdio else 'url'}")
        if stdio and self.headers is not None:
            raise ValueError("'headers' is for a streamable HTTP server ('url')")
        if http and (self.args or self.env is not None or self.cwd is not None):
            raise ValueError("'args', 'env' and 'cwd' are for a stdio server ('command')")
        return self


class _File(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    mcpServers: dict[str, _Server]  # the file's own spelling


def read_servers(path: str | Path) -> dict[str, Connection]:
    """Parse the file into `langchain-mcp-adapters` connections, `${VAR}`s expanded."""
    path = Path(path)
    where = f"APPROVALS_MCP={path}"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ToolLoadError(f"{where}: cannot read the file: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ToolLoadError(f"{where}: not valid JSON: {exc}") from None
    try:
        parsed = _File.model_validate(data)
    except ValidationError as exc:
        problems = "\n  ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {str(e['msg']).removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        raise ToolLoadError(f"{where}: invalid mcpServers file\n  {problems}") from None
    if not parsed.mcpServers:
        raise ToolLoadError(f"{where}: 'mcpServers' names no server")
    connections: dict[str, Connection] = {}
    for name, server in parsed.mcpServers.items():
        if not _SERVER_NAME.match(name):
            raise ToolLoadError(
                f"{where}: server name {name!r} may hold only letters, digits, '_' and '-' "
                "(it prefixes its tools' names in the policy)"
            )
        expand = _expander(where, name)
        if server.command is not None:
            stdio: StdioConnection = {
                "transport": "stdio",
                "command": expand(server.command),
                "args": [expand(a) for a in server.args],
            }
            if server.env is not None:
                stdio["env"] = {k: expand(v) for k, v in server.env.items()}
            if server.cwd is not None:
                stdio["cwd"] = expand(server.cwd)
            connections[name] = stdio
        else:
            assert server.url is not None
            http: StreamableHttpConnection = {
                "transport": "streamable_http",
                "url": expand(server.url),
            }
            if server.headers is not None:
                http["headers"] = {k: expand(v) for k, v in server.headers.items()}
            connections[name] = http
    return connections


def _expander(where: str, server: str) -> Callable[[str], str]:
    def expand(value: str) -> str:
        def variable(match: re.Match[str]) -> str:
            if match[1] not in os.environ:
                raise ToolLoadError(
                    f"{where}: server {server!r} uses ${{{match[1]}}}, which is not set"
                )
            return os.environ[match[1]]

        return _VARIABLE.sub(variable, value)

    return expand


async def load_mcp_servers(path: str | Path) -> list[BaseTool]:
    """Every tool of every server in the file, named `server.tool`; a server that cannot
    start or list its tools stops the bot with its name."""
    connections = read_servers(path)
    send_key = _IdempotencyKey(connections)
    tools: list[BaseTool] = []
    for name, connection in connections.items():
        try:
            async with asyncio.timeout(START_TIMEOUT_S):
                served = await load_mcp_tools(
                    None,
                    connection=connection,
                    server_name=name,
                    tool_interceptors=[send_key],
                )
        except TimeoutError:
            raise ToolLoadError(
                f"MCP server {name!r} (APPROVALS_MCP={path}) did not list its tools within "
                f"{START_TIMEOUT_S:.0f} s"
            ) from None
        except Exception as exc:  # anything the transport or the server raised
            raise ToolLoadError(
                f"MCP server {name!r} (APPROVALS_MCP={path}) could not start: {_why(exc)}"
            ) from None
        for tool in served:
            tool.name = f"{name}.{tool.name}"
            tool.metadata = {**(tool.metadata or {}), "mcp_server": name}
            tools.append(tool)
    return tools


def _why(exc: BaseException) -> str:
    """The innermost errors: the transports raise them inside anyio task groups."""
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_why(e) for e in exc.exceptions)
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def tool_facts(tool: BaseTool) -> dict[str, Any] | None:
    """What an MCP server declares about a tool, for its approval card: the server, the
    title, and the read-only / destructive hints (hints, not guarantees: the policy decides)."""
    metadata = tool.metadata or {}
    if "mcp_server" not in metadata:
        return None
    return {
        "mcp_server": metadata["mcp_server"],
        "title": metadata.get("title"),
        "readOnlyHint": metadata.get("readOnlyHint"),
        "destructiveHint": metadata.get("destructiveHint"),
    }


class _IdempotencyKey:
    """Sends an approved call's key in the `tools/call` request's `_meta`.

    langchain-mcp-adapters 0.3 gives interceptors no way to set `_meta`, so for an approved
    call this interceptor makes the call itself, as the adapter's own handler does (a session
    for the call), with `meta=`; other calls go through the adapter untouched."""

    def __init__(self, connections: Mapping[str, Connection]) -> None:
        self._connections = connections

    async def __call__(
        self,
        request: MCPToolCallRequest,
        handler: Callable[[MCPToolCallRequest], Awaitable[MCPToolCallResult]],
    ) -> MCPToolCallResult:
        key = current_approval_id()
        if key is None:
            return await handler(request)
        failure: Exception | None = None
        async with create_session(self._connections[request.server_name]) as session:
            await session.initialize()
            try:
                result = await session.call_tool(
                    request.name, request.args, meta={IDEMPOTENCY_META_KEY: key}
                )
            except Exception as exc:
                # The session's task group can swallow an error raised inside it (the
                # adapter works around the same MCP SDK behaviour the same way).
                failure = exc
        if failure is not None:
            raise failure
        return result
