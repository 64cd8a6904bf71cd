"""The CLI as a person meets it: --version, `run --help`, options after the command, audit."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import aiohttp

from bot.db import Database
from bot.settings import Settings
from tests.conftest import Harness
from tests.support.cli import clean_env, cli, sandbox
from tests.support.process import free_port


async def test_version(tmp_path: Path) -> None:
    code, out = await cli("--version", cwd=tmp_path)
    assert code == 0 and out.startswith("slack-approvals 0.")


async def test_run_help_lists_every_environment_variable_with_its_default(tmp_path: Path) -> None:
    code, out = await cli("run", "--help", cwd=tmp_path)
    assert code == 0
    for name, field in Settings.model_fields.items():
        line = next(line for line in out.splitlines() if line.split()[:1] == [name.upper()])
        assert ("unset" if field.default is None else repr(field.default)) in line
    assert "--reset" in out


async def test_options_are_accepted_after_the_command(tmp_path: Path) -> None:
    code, out = await cli("run", "--log-level", "DEBUG", cwd=tmp_path, SLACK_BOT_TOKEN="xoxb-1")
    # The configuration is checked (and refused), not the command line.
    assert code == 2
    assert "unrecognized arguments" not in out and "SLACK_SIGNING_SECRET" in out


async def test_audit_by_user_name_or_id_with_json_arguments(
    harness: Harness, tmp_path: Path
) -> None:
    async with harness.bot():
        thread, card = await harness.ask_scale_down(answer="done")
        await harness.approve_and_wait(thread, card, "done")
        env = {
            "DATABASE_URL": harness.settings().database_url,
            "SLACK_BOT_TOKEN": harness.slack.bot_token,
            "SLACK_SIGNING_SECRET": "unused-by-audit",
            "SLACK_API_URL": harness.slack.api_url,
        }
        by_name = await cli("audit", "--user", "bob", "--json", cwd=tmp_path, **env)
        by_id = await cli("audit", "--json", "--user", "U0BOB", cwd=tmp_path, **env)
        nobody = await cli("audit", "--user", "zed", cwd=tmp_path, **env)
    assert by_name == by_id and by_name[0] == 0
    [record] = [json.loads(line) for line in by_name[1].splitlines()]
    assert record["event"] == "approved" and record["actor"] == "U0BOB"
    assert record["args"] == {"cluster_id": "cl-001", "replicas": 2}
    assert nobody[0] == 2 and "no user by that name" in nobody[1]


async def test_audit_on_ten_thousand_approvals_loads_no_agent(tmp_path: Path) -> None:
    """What made `audit` slow was importing the agent's libraries, not the query."""
    url = f"sqlite:///{tmp_path / 'big.sqlite3'}"
    db = await Database.open(url)
    async with db.transaction() as tx:
        for i in range(10_000):
            for event in ("requested", "approved", "executed"):
                await tx.execute(
                    "INSERT INTO audit (at, event, approval_id, tool, args, actor)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (1.0 + i, event, f"ap_{i}", "scale_down", '{"replicas": 2}', "U0BOB"),
                )
    await db.close()
    probe = (
        "import sys; from bot.cli import main; code = main(['audit', '--json']);"
        "print('LOADED', [m for m in ('bot.service', 'langchain', 'langchain_openai')"
        " if m in sys.modules], file=sys.stderr)"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        probe,
        cwd=tmp_path,
        env=clean_env(DATABASE_URL=url),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    assert len(out.splitlines()) == 30_000
    assert "LOADED []" in err.decode()


async def test_unreachable_slack_is_one_line_and_exit_2(tmp_path: Path) -> None:
    api = f"http://127.0.0.1:{free_port()}/api/"
    code, out = await cli(
        "run", cwd=tmp_path, SLACK_BOT_TOKEN="xoxb-1", SLACK_SIGNING_SECRET="s", SLACK_API_URL=api
    )
    assert code == 2
    [line] = out.strip().splitlines()
    assert line.startswith(f"slack-approvals: cannot reach Slack at {api} (")
    assert line.endswith("): check the network or SLACK_API_URL")


async def test_no_sandbox_banner_for_a_bot_that_will_not_start(tmp_path: Path) -> None:
    (tmp_path / "policy.yml").write_text("tools:\n  reboot_world: {approval: never}\n")
    code, out = await cli("run", cwd=tmp_path, PORT=str(free_port()), APPROVALS_POLICY="policy.yml")
    assert code == 2 and "reboot_world" in out
    assert "Sandbox" not in out and "curl" not in out


async def test_unreachable_model_is_a_startup_warning(tmp_path: Path) -> None:
    base = f"http://127.0.0.1:{free_port()}/v1"
    async with sandbox(tmp_path, OPENAI_API_KEY="sk-test", OPENAI_BASE_URL=base) as (_, out):
        banner = next(i for i, line in enumerate(out) if "Sandbox: open" in line)
        [warning] = [line for line in out[:banner] if "cannot reach the model" in line]
        assert "WARNING" in warning and base in warning and "OPENAI_BASE_URL" in warning


class SandboxUser:
    """The sandbox's curl endpoints, as the banner shows them."""

    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        self.http, self.base = http, url + "sandbox/"

    async def post(self, path: str, body: dict[str, Any]) -> Any:
        async with self.http.post(self.base + path, json=body) as response:
            assert response.status == 200, await response.text()
            return await response.json()

    async def channel(self) -> Any:
        async with self.http.get(self.base + "messages?channel=C0OPS") as response:
            return await response.json()

    async def until(self, predicate: Any) -> Any:
        async with asyncio.timeout(30):
            while True:
                found = predicate(await self.channel())
                if found:
                    return found
                await asyncio.sleep(0.05)

    async def ask(self, user: str, text: str) -> dict[str, Any]:
        """Ask, and return the approval card the bot posts for it."""
        await self.post("say", {"user": user, "channel": "C0OPS", "text": f"/ask {text}"})
        tool = "_".join(text.split()[:2])
        return await self.until(
            lambda c: next(
                (m for m in c["messages"] if m["buttons"] and f"needed: {tool}" in m["text"]), None
            )
        )

    async def click(self, user: str, card: dict[str, Any]) -> None:
        await self.post(
            "click",
            {"user": user, "channel": "C0OPS", "ts": card["ts"], "action_id": "approval_approve"},
        )

    async def told(self, user: str, needle: str) -> None:
        await self.until(
            lambda c: any(e["user"] == user and needle in e["text"] for e in c["ephemerals"])
        )

    async def said(self, needle: str) -> None:
        await self.until(lambda c: any(needle in m["text"] for m in c["messages"]))


async def test_sandbox_runs_the_sample_policy_and_reset_starts_afresh(tmp_path: Path) -> None:
    async with sandbox(tmp_path) as (url, out), aiohttp.ClientSession() as http:
        [policy] = [line for line in out if line.startswith("Policy:")]
        assert policy.strip().endswith("policy.yml")
        assert str(tmp_path / "slack-approvals.sqlite3") in "".join(out)
        ui = SandboxUser(http, url)
        card = await ui.ask("U0ALICE", "scale down cl-001 to 2")
        await ui.click("U0CAROL", card)  # not on call
        await ui.told("U0CAROL", "You can't approve this")
        await ui.click("U0BOB", card)
        await ui.said("from 5 to 2 replicas")

        delete = await ui.ask("U0BOB", "delete cluster cl-003")
        await ui.click("U0BOB", delete)  # on call, but four eyes on deletes
        await ui.told("U0BOB", "You asked for this call")

    # A restart keeps the demo's state (the walkthrough's cluster already runs 2) and says so.
    async with sandbox(tmp_path) as (url, out):
        assert any("goes on from the last run" in line for line in out)
    async with sandbox(tmp_path, "--reset") as (url, out), aiohttp.ClientSession() as http:
        assert not any("goes on from the last run" in line for line in out)
        assert any("reset: deleted" in line for line in out)
        ui = SandboxUser(http, url)
        card = await ui.ask("U0ALICE", "scale down cl-001 to 2")
        await ui.click("U0DAVE", card)
        await ui.said("from 5 to 2 replicas")
