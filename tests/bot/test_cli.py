"""`slack-approvals run` as users start it: a subprocess configured only by its environment."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from tests.support.cli import SandboxHttp, cli, sandbox
from tests.support.process import free_port


async def test_sandbox_runs_the_whole_flow_offline(tmp_path: Path) -> None:
    async with sandbox(tmp_path) as (url, output), aiohttp.ClientSession() as http:
        page = SandboxHttp(http, url, output)
        ask = {"user": "U0ALICE", "channel": "C0OPS", "text": "/ask scale down cl-001 to 2"}
        await page.post("say", ask)
        card = await page.poll(lambda ms: next((m for m in ms if m["buttons"]), None))
        assert "scale_down" in card["text"]
        click = {"user": "U0BOB", "channel": "C0OPS", "ts": card["ts"]}
        await page.post("click", {**click, "action_id": "approval_approve"})
        done = await page.poll(lambda ms: [m for m in ms if "offline" in m["text"]])
        texts = " ".join(m["text"] for m in await page.messages())
        assert "Approved by" in texts and "ran" in texts and done
    log = "".join(output)
    assert "offline rule-based model" in log
    assert (tmp_path / "demo-inventory.sqlite3").exists()


async def test_missing_mode_token_is_a_clear_startup_error(tmp_path: Path) -> None:
    code, out = await cli("run", cwd=tmp_path, SLACK_BOT_TOKEN="xoxb-1-2")
    assert code == 2
    assert "neither SLACK_APP_TOKEN (Socket Mode) nor SLACK_SIGNING_SECRET" in out
    assert "xoxb-1-2" not in out


async def test_bad_policy_file_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "policy.yml").write_text(
        "defaults:\n  approvers: []\ntools:\n  scale_down: {approval: requierd}\n"
    )
    code, out = await cli("run", cwd=tmp_path, PORT=str(free_port()), APPROVALS_POLICY="policy.yml")
    assert code == 2
    assert "policy.yml:4: tools.scale_down.approval" in out


async def test_policy_naming_an_unknown_tool_is_refused(tmp_path: Path) -> None:
    (tmp_path / "policy.yml").write_text("tools:\n  reboot_world: {approval: never}\n")
    code, out = await cli("run", cwd=tmp_path, PORT=str(free_port()), APPROVALS_POLICY="policy.yml")
    assert code == 2
    assert "'reboot_world' (line 2)" in out and "scale_down" in out


async def test_unknown_tools_module_is_a_clear_error(tmp_path: Path) -> None:
    code, out = await cli(
        "run", cwd=tmp_path, PORT=str(free_port()), APPROVALS_TOOLS="no_such_mod:TOOLS"
    )
    assert code == 2
    assert "cannot import no_such_mod" in out
