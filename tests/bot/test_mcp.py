"""MCP tools (`APPROVALS_MCP`) behind the same approvals, and the idempotency key of every
approved call: a real FastMCP server over stdio and over streamable HTTP, the real bot."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agent.toolsets import ToolLoadError
from tests.conftest import Harness
from tests.fakes.openai_server import reply_text, reply_tool_calls
from tests.support import keyed_tools
from tests.support.mcp_server import calls, serve_http

CHANNEL = "C0OPS"
OPENAI_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
POLICY = """\
defaults:
  approvers: []
tools:
  infra.list_repos: {approval: never}
  infra.delete_repo: {approval: required, decisions: [approve, reject, edit]}
  rotate_secret: {approval: required}
"""


class Mcp:
    def __init__(self, harness: Harness) -> None:
        self.harness = harness
        self.log = harness.tmp / "mcp-calls.jsonl"
        self.hold = harness.tmp / "mcp-hold"
        self.hold.mkdir()
        self.file = harness.tmp / "mcp.json"

    def stdio(self) -> dict[str, Any]:
        return {
            "command": sys.executable,
            "args": ["-m", "tests.support.mcp_server", str(self.log), str(self.hold)],
            "cwd": str(Path(__file__).resolve().parents[2]),
        }

    def write(self, servers: dict[str, Any], policy: str = POLICY) -> str:
        self.file.write_text(json.dumps({"mcpServers": servers}))
        self.harness.policy_file.write_text(policy)
        return str(self.file)

    def bot(self, servers: dict[str, Any], policy: str = POLICY) -> Any:
        return self.harness.bot(
            approvals_mcp=self.write(servers, policy),
            approvals_tools="tests.support.keyed_tools:TOOLS",
        )


@pytest.fixture
def mcp(harness: Harness) -> Mcp:
    keyed_tools.KEYS.clear()
    return Mcp(harness)


@pytest.fixture
async def http_url(mcp: Mcp) -> AsyncIterator[str]:
    async with serve_http(mcp.log, mcp.hold) as url:
        yield url


def card_for(harness: Harness, thread: str, tool: str) -> Any:
    [card] = [c for c in harness.cards(CHANNEL, thread) if f"Approval needed: {tool}" in c.text]
    return card


def approval_id(card: Any) -> str:
    return next(b.value for b in card.buttons() if b.action_id == "approval_approve")


async def test_stdio_tools_are_gated_by_name_and_carry_the_approval_id(
    harness: Harness, mcp: Mcp
) -> None:
    harness.model.script(
        reply_tool_calls(
            ("infra__list_repos", {}),
            ("infra__delete_repo", {"name": "web"}),
            ("rotate_secret", {"service": "api"}),
            ("purge_cache", {"service": "api"}),
        ),
        reply_text("Deleted web, rotated and purged api."),
    )
    async with mcp.bot({"infra": mcp.stdio()}) as bot:
        thread = await harness.ask("clean up web and api")
        await harness.wait_cards(CHANNEL, thread, count=3)
        # The model sees names it can call; the policy's `server.tool` names stay in the bot.
        offered = {t["function"]["name"] for t in harness.model.requests[0]["tools"]}
        assert offered == {
            "infra__list_repos",
            "infra__delete_repo",
            "rotate_secret",
            "purge_cache",
        }
        assert all(OPENAI_NAME.match(name) for name in offered)
        # `approval: never` in the policy: the read-only tool ran without a card.
        assert [c["tool"] for c in calls(mcp.log)] == ["list_repos"]
        assert calls(mcp.log)[0]["key"] is None

        delete = card_for(harness, thread, "infra.delete_repo")
        card = json.dumps(delete.blocks)
        assert "`infra.delete_repo`" in card and "Delete a repository for good." in card
        assert "MCP server `infra`" in card and "Delete a repository" in card
        assert "declared destructive" in card
        # A tool the policy does not name is gated too, with no MCP line.
        purge = card_for(harness, thread, "purge_cache")
        assert "MCP server" not in json.dumps(purge.blocks)

        ids = {}
        for tool in ("infra.delete_repo", "rotate_secret", "purge_cache"):
            card_msg = card_for(harness, thread, tool)
            ids[tool] = approval_id(card_msg)
            await harness.approve("U0BOB", CHANNEL, card_msg.ts)
        await harness.wait_text(CHANNEL, thread, "Deleted web, rotated and purged api.")
        await harness.idle()

        [deleted] = [c for c in calls(mcp.log, "end") if c["tool"] == "delete_repo"]
        assert deleted["args"] == {"name": "web"}
        # The key the MCP server got and the keys the Python tools read (async, and sync in a
        # worker thread) are the approval ids the audit records for those calls.
        assert deleted["key"] == ids["infra.delete_repo"]
        assert dict(keyed_tools.KEYS) == {
            "rotate_secret": ids["rotate_secret"],
            "purge_cache": ids["purge_cache"],
        }
        for tool, key in ids.items():
            audited = {r.event: r.approval_id for r in await bot.store.audit_log(tool=tool)}
            assert audited["requested"] == audited["approved"] == audited["executed"] == key
        texts = harness.texts(CHANNEL, thread)
        assert any("`infra.delete_repo` ran: repository web deleted" in t for t in texts)
        # The model's history names the calls as it knows them.
        history = harness.model.requests[-1]["messages"]
        called = [c["function"]["name"] for m in history for c in m.get("tool_calls") or []]
        assert "infra__delete_repo" in called and "infra.delete_repo" not in called


async def test_http_deny_with_reason_then_edit(harness: Harness, mcp: Mcp, http_url: str) -> None:
    harness.model.script(
        reply_tool_calls(("infra__delete_repo", {"name": "web"})),
        reply_text("Left web alone."),
        reply_tool_calls(("infra__delete_repo", {"name": "api"})),
        reply_text("Deleted docs instead."),
    )
    async with mcp.bot({"infra": {"type": "http", "url": http_url}}) as bot:
        thread = await harness.ask("delete repo web")
        [card] = await harness.wait_cards(CHANNEL, thread)
        assert "MCP server `infra`" in json.dumps(card.blocks)
        await harness.deny("U0BOB", CHANNEL, card.ts, "web is still serving")
        await harness.wait_text(CHANNEL, thread, "Left web alone.")
        await harness.idle()
        assert calls(mcp.log) == []
        told = [m for m in harness.model.requests[-1]["messages"] if m["role"] == "tool"]
        assert "web is still serving" in told[-1]["content"]

        thread = await harness.ask("delete repo api")
        [card] = await harness.wait_cards(CHANNEL, thread)
        key = approval_id(card)
        opened = len(harness.slack.views)
        await harness.slack.click("U0BOB", CHANNEL, card.ts, "approval_edit")
        view = await harness.slack.wait_for(
            lambda: len(harness.slack.views) > opened and harness.slack.views[-1]
        )
        inputs = {b["block_id"]: b["element"] for b in view.view["blocks"] if "element" in b}
        assert inputs["arg:name"]["initial_value"] == "api"
        text = {"type": "plain_text_input"}
        await harness.slack.submit_view(
            "U0BOB", view.id, {"arg:name": {"value": {**text, "value": "docs"}}}
        )
        await harness.wait_text(CHANNEL, thread, "Deleted docs instead.")
        await harness.idle()
        [deleted] = calls(mcp.log, "end")
        assert deleted["args"] == {"name": "docs"} and deleted["key"] == key
        audited = {r.event for r in await bot.store.audit_log(tool="infra.delete_repo")}
        assert {"denied", "edited", "executed"} <= audited


async def test_http_request_expires_unrun(harness: Harness, mcp: Mcp, http_url: str) -> None:
    harness.model.script(
        reply_tool_calls(("infra__delete_repo", {"name": "web"})),
        reply_text("Nobody approved; web stays."),
    )
    policy = "tools:\n  infra.delete_repo: {expires_after: 1s}\n"
    async with mcp.bot({"infra": {"url": http_url}}, policy) as bot:
        thread = await harness.ask("delete repo web")
        [card] = await harness.wait_cards(CHANNEL, thread)
        await harness.wait_text(CHANNEL, thread, "Nobody approved; web stays.")
        await harness.idle()
        assert "Expired" in json.dumps(harness.slack.message(CHANNEL, card.ts).blocks)
        events = [r.event for r in await bot.store.audit_log(tool="infra.delete_repo")]
        assert "expired" in events
    assert calls(mcp.log) == []


async def test_a_server_that_cannot_start_is_named(harness: Harness, mcp: Mcp) -> None:
    broken = {"command": str(harness.tmp / "no-such-mcp-server")}
    with pytest.raises(ToolLoadError, match=r"MCP server 'broken' .* could not start"):
        async with mcp.bot({"infra": mcp.stdio(), "broken": broken}):
            pass
    unreachable = {"url": "http://127.0.0.1:9/mcp"}
    with pytest.raises(ToolLoadError, match=r"MCP server 'gone' .* could not start"):
        async with mcp.bot({"gone": unreachable}, "tools: {}\n"):
            pass
    with pytest.raises(ToolLoadError, match=r"mcpServers.infra: give either 'command'"):
        async with mcp.bot({"infra": {"url": "http://x/mcp", "command": "y"}}):
            pass
