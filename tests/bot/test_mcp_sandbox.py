"""The sandbox with `APPROVALS_MCP`: a team tries its MCP server's tools in the browser's
Slack before connecting Slack, with the offline model and the demo toolset beside them."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import aiohttp

from tests.support.cli import SandboxHttp, sandbox
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
    async with (
        sandbox(tmp_path, APPROVALS_MCP="mcp.json") as (url, output),
        aiohttp.ClientSession() as http,
    ):
        page = SandboxHttp(http, url, output)
        ask = '/ask call infra.delete_repo with {"name": "web"}'
        await page.post("say", {"user": "U0ALICE", "channel": "C0OPS", "text": ask})
        card = await page.poll(lambda ms: next((m for m in ms if m["buttons"]), None))
        assert "infra.delete_repo" in card["text"]
        assert calls(log) == []
        key = next(b["value"] for b in card["buttons"] if b["action_id"] == "approval_approve")
        click = {"user": "U0BOB", "channel": "C0OPS", "ts": card["ts"]}
        await page.post("click", {**click, "action_id": "approval_approve"})
        await page.poll(lambda ms: [m for m in ms if "offline" in m["text"]])
        assert [(c["args"], c["key"]) for c in calls(log, "end")] == [({"name": "web"}, key)]
