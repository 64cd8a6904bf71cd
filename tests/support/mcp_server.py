"""A real MCP server (FastMCP, from the `mcp` package) for the tests, over stdio or HTTP.

`python -m tests.support.mcp_server LOG HOLD` serves it over stdio, as an `mcpServers` entry
with a `command` starts it; `serve_http(LOG, HOLD)` serves it over streamable HTTP on a
loopback port, in the test's own process (it outlives a bot the test kills).

Every call is appended to LOG as a JSON line with its arguments and the idempotency key its
request's `_meta` carried, when it starts and when it ends; while `HOLD/<name>` exists, a
`delete_repo` call waits inside the tool.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import uvicorn
from mcp.server.fastmcp import Context, FastMCP
from mcp.types import ToolAnnotations

from agent.mcp import IDEMPOTENCY_META_KEY


def build_server(log: Path, hold: Path) -> FastMCP:
    server = FastMCP("infra")

    def record(event: str, tool: str, args: dict[str, Any], ctx: Context) -> None:  # type: ignore[type-arg]
        meta = ctx.request_context.meta
        key = getattr(meta, IDEMPOTENCY_META_KEY, None) if meta is not None else None
        line = json.dumps({"event": event, "tool": tool, "args": args, "key": key}) + "\n"
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)

    @server.tool(
        title="Delete a repository",
        annotations=ToolAnnotations(destructiveHint=True, readOnlyHint=False),
    )
    async def delete_repo(name: str, ctx: Context) -> str:  # type: ignore[type-arg]
        """Delete a repository for good."""
        record("start", "delete_repo", {"name": name}, ctx)
        while (hold / name).exists():  # noqa: ASYNC110 - the test removes the file
            await asyncio.sleep(0.02)
        record("end", "delete_repo", {"name": name}, ctx)
        return f"repository {name} deleted"

    @server.tool(title="List repositories", annotations=ToolAnnotations(readOnlyHint=True))
    async def list_repos(ctx: Context) -> str:  # type: ignore[type-arg]
        """List the repositories."""
        record("start", "list_repos", {}, ctx)
        return "web, api, docs"

    return server


def calls(log: Path, event: str = "start") -> list[dict[str, Any]]:
    if not log.exists():
        return []
    entries = [json.loads(line) for line in log.read_text().splitlines() if line]
    return [e for e in entries if e["event"] == event]


@asynccontextmanager
async def serve_http(log: Path, hold: Path) -> AsyncIterator[str]:
    """Streamable HTTP on 127.0.0.1 (any free port); yields the endpoint's URL."""
    server = uvicorn.Server(
        uvicorn.Config(
            build_server(log, hold).streamable_http_app(),
            host="127.0.0.1",
            port=0,
            log_level="warning",
            lifespan="on",
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            await task
            raise RuntimeError("the MCP server stopped at start-up")
        await asyncio.sleep(0.01)
    [listener] = server.servers[0].sockets
    port = listener.getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        server.should_exit = True
        await task


if __name__ == "__main__":
    build_server(Path(sys.argv[1]), Path(sys.argv[2])).run("stdio")
