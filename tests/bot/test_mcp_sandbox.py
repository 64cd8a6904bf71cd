"""The sandbox with `APPROVALS_MCP`: a team tries its MCP server's tools in the browser's
Slack before connecting Slack, with the offline model and the demo toolset beside them."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.bot.test_cli import CLI, clean_env, free_port
from tests.support.mcp_server import calls

REPO = Path(__file__).resolve().parents[2]


async def test_sandbox_runs_an_mcp_tool_behind_a_card(tmp_path: Path) -> None:
    log, hold = tmp_path / "mcp-calls.jsonl", tmp_path / "mcp-hold"
    hold.mkdir()
    server = {
        "command": sys.executable,
        "args": ["-m", "tests.support.mcp_server", str(log), str(hold)],
        "cwd": str(REPO),
    }
    (tmp_path / "mcp.json").write_text(json.dumps({"mcpServers": {"infra": server}}))
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        *CLI,
        "run",
        cwd=tmp_path,
        env=clean_env(PORT=str(port), APPROVALS_MCP="mcp.json"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}/sandbox"
    output: list[str] = []

    async def read_output() -> None:
        assert proc.stdout is not None
        async for line in proc.stdout:
            output.append(line.decode())

    reader = asyncio.create_task(read_output())
    try:
        async with aiohttp.ClientSession() as http:

            async def post(path: str, body: dict[str, Any]) -> None:
                async with http.post(f"{base}/{path}", json=body) as response:
                    assert response.status == 200, await response.text()

            async def poll(predicate: Any) -> Any:
                for _ in range(300):
                    try:
                        async with http.get(f"{base}/messages?channel=C0OPS") as response:
                            messages = (await response.json())["messages"]
                    except aiohttp.ClientError:
                        messages = []
                    if found := predicate(messages):
                        return found
                    await asyncio.sleep(0.1)
                pytest.fail("timed out; bot output:\n" + "".join(output))

            await poll(lambda _: any("Sandbox" in line for line in output))
            ask = '/ask call infra.delete_repo with {"name": "web"}'
            await post("say", {"user": "U0ALICE", "channel": "C0OPS", "text": ask})
            card = await poll(lambda ms: next((m for m in ms if m["buttons"]), None))
            assert "infra.delete_repo" in card["text"]
            assert calls(log) == []
            key = next(b["value"] for b in card["buttons"] if b["action_id"] == "approval_approve")
            click = {"user": "U0BOB", "channel": "C0OPS", "ts": card["ts"]}
            await post("click", {**click, "action_id": "approval_approve"})
            await poll(lambda ms: [m for m in ms if "offline" in m["text"]])
            assert [(c["args"], c["key"]) for c in calls(log, "end")] == [({"name": "web"}, key)]
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await reader
