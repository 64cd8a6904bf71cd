"""`slack-approvals run` as users start it: a subprocess configured only by its environment."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.process import free_port, stopped_by_sigterm

CLI = [sys.executable, "-m", "bot.cli"]


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLACK_", "OPENAI_", "APPROVALS_", "DATABASE_"))
    }
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    env.update(extra)
    return env


async def run_cli(tmp_path: Path, **env: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *CLI,
        "run",
        cwd=tmp_path,
        env=clean_env(**env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode()


async def test_sandbox_runs_the_whole_flow_offline(tmp_path: Path) -> None:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        *CLI,
        "run",
        cwd=tmp_path,
        env=clean_env(PORT=str(port)),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}/sandbox"
    async with stopped_by_sigterm(proc) as output, aiohttp.ClientSession() as http:

        async def get(path: str) -> Any:
            async with http.get(f"{base}/{path}") as response:
                return await response.json()

        async def post(path: str, body: dict[str, Any]) -> Any:
            async with http.post(f"{base}/{path}", json=body) as response:
                assert response.status == 200, await response.text()
                return await response.json()

        async def poll(predicate: Any) -> Any:
            for _ in range(300):
                try:
                    messages = (await get("messages?channel=C0OPS"))["messages"]
                except aiohttp.ClientError:
                    messages = []
                found = predicate(messages)
                if found:
                    return found
                await asyncio.sleep(0.1)
            pytest.fail("timed out; bot output:\n" + "".join(output))

        await poll(lambda _: any("Sandbox" in line for line in output))
        await post(
            "say",
            {"user": "U0ALICE", "channel": "C0OPS", "text": "/ask scale down cl-001 to 2"},
        )
        card = await poll(lambda ms: next((m for m in ms if m["buttons"]), None))
        assert "scale_down" in card["text"]
        await post(
            "click",
            {
                "user": "U0BOB",
                "channel": "C0OPS",
                "ts": card["ts"],
                "action_id": "approval_approve",
            },
        )
        done = await poll(lambda ms: [m for m in ms if "offline" in m["text"]])
        texts = " ".join(m["text"] for m in (await get("messages?channel=C0OPS"))["messages"])
        assert "Approved by" in texts and "ran" in texts and done
    log = "".join(output)
    assert "offline rule-based model" in log
    assert (tmp_path / "demo-inventory.sqlite3").exists()


async def test_missing_mode_token_is_a_clear_startup_error(tmp_path: Path) -> None:
    code, out = await run_cli(tmp_path, SLACK_BOT_TOKEN="xoxb-1-2")
    assert code == 2
    assert "neither SLACK_APP_TOKEN (Socket Mode) nor SLACK_SIGNING_SECRET" in out
    assert "xoxb-1-2" not in out


async def test_bad_policy_file_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "policy.yml").write_text(
        "defaults:\n  approvers: []\ntools:\n  scale_down: {approval: requierd}\n"
    )
    code, out = await run_cli(tmp_path, PORT=str(free_port()), APPROVALS_POLICY="policy.yml")
    assert code == 2
    assert "policy.yml:4: tools.scale_down.approval" in out


async def test_policy_naming_an_unknown_tool_is_refused(tmp_path: Path) -> None:
    (tmp_path / "policy.yml").write_text("tools:\n  reboot_world: {approval: never}\n")
    code, out = await run_cli(tmp_path, PORT=str(free_port()), APPROVALS_POLICY="policy.yml")
    assert code == 2
    assert "'reboot_world' (line 2)" in out and "scale_down" in out


async def test_unknown_tools_module_is_a_clear_error(tmp_path: Path) -> None:
    code, out = await run_cli(tmp_path, PORT=str(free_port()), APPROVALS_TOOLS="no_such_mod:TOOLS")
    assert code == 2
    assert "cannot import no_such_mod" in out
