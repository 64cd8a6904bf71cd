"""MCP tools in `slack-approvals run` processes: two replicas on one database, and a kill -9
while an approved call is inside the MCP server. The server (streamable HTTP, in the test's
process) outlives the bots, as a real one would."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.botproc import Deployment, deployment
from tests.support.mcp_server import calls, serve_http
from tests.support.pg import BACKENDS, database_url

CHANNEL = "C0OPS"


async def approve(d: Deployment, text: str) -> str:
    """Ask, wait for the card, approve it; returns the thread."""
    thread = await d.ui.ask(text)
    [card] = await d.ui.wait_cards(CHANNEL, thread)
    assert "Approval needed: infra.delete_repo" in card.text
    await d.card_recorded(card.ts)
    delivery = await d.slack.click("U0BOB", CHANNEL, card.ts, "approval_approve")
    assert delivery.ack is not None and delivery.ack.status == 200
    return thread


def said(d: Deployment, thread: str, needle: str) -> bool:
    return any(needle in t for t in d.ui.texts(CHANNEL, thread))


@pytest.mark.parametrize("backend", BACKENDS)
async def test_two_replicas_and_a_kill_9_inside_an_mcp_call(backend: str, tmp_path: Path) -> None:
    log, hold = tmp_path / "mcp-calls.jsonl", tmp_path / "mcp-hold"
    hold.mkdir()
    async with serve_http(log, hold) as mcp_url:
        servers = tmp_path / "mcp.json"
        servers.write_text(json.dumps({"mcpServers": {"infra": {"url": mcp_url}}}))
        async with (
            database_url(backend, tmp_path) as url,
            deployment(tmp_path, url, 2, {"APPROVALS_MCP": str(servers)}) as d,
        ):
            api = await approve(d, "delete repo api")
            await d.wait("api's answer", lambda: said(d, api, "Summary: repository api deleted"))

            (hold / "web").touch()
            web = await approve(d, "delete repo web")
            await d.wait(
                "the call inside the server",
                lambda: [c["args"] for c in calls(log)][-1:] == [{"name": "web"}],
            )
            for bot in d.bots:
                await bot.kill()
            (hold / "web").unlink()
            await d.start()
            await d.wait("the outcome-unknown notice", lambda: said(d, web, "outcome unknown"))
            await d.wait("web's answer", lambda: said(d, web, "Summary:"))

            # Each call reached the server once, with its approval id as the key.
            assert sorted(c["args"]["name"] for c in calls(log)) == ["api", "web"]
            ids = {
                json.loads(r["args"])["name"]: r["id"]
                for r in await d.db.fetchall(
                    "SELECT id, args FROM approvals WHERE tool = 'infra.delete_repo'"
                )
            }
            assert {c["args"]["name"]: c["key"] for c in calls(log)} == ids
            outcomes = {
                r["approval_id"]: r["event"]
                for r in await d.db.fetchall(
                    "SELECT approval_id, event FROM audit WHERE tool = 'infra.delete_repo'"
                    " AND event IN ('executed', 'outcome_unknown')"
                )
            }
            assert outcomes == {ids["api"]: "executed", ids["web"]: "outcome_unknown"}
