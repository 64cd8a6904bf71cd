"""`slack-approvals run` with no Slack token (the sandbox) in front of a team's own agent:
a graph in process (`APPROVALS_GRAPH`) or an agent on LangGraph Server (`LANGGRAPH_URL`),
so a team can try its agent before connecting Slack. Also: clear errors at startup."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

import aiohttp
import pytest

from tests.fakes.openai_server import FakeOpenAI, reply_text, reply_tool_calls
from tests.support.cli import SandboxHttp, cli, sandbox
from tests.support.langgraph_server import langgraph_server
from tests.support.process import free_port

pytestmark = pytest.mark.timeout(240)


async def approve_in_sandbox(url: str, output: list[str]) -> str:
    """Ask, approve the card as bob, and return the channel's text once the agent answered."""
    async with aiohttp.ClientSession() as http:
        page = SandboxHttp(http, url, output)
        say = {"user": "U0ALICE", "channel": "C0OPS", "text": "/ask scale down cl-001 to 2"}
        await page.post("say", say)
        card = await page.poll(lambda ms: next((m for m in ms if m["buttons"]), None), 60)
        assert "scale_down" in card["text"]
        click = {"user": "U0BOB", "channel": "C0OPS", "ts": card["ts"]}
        await page.post("click", {**click, "action_id": "approval_approve"})
        await page.poll(lambda ms: any("cl-001 now runs 2" in m["text"] for m in ms), 60)
        return " ".join(m["text"] for m in await page.messages())


def script(model: FakeOpenAI) -> None:
    model.script(
        reply_tool_calls(("scale_down", {"cluster_id": "cl-001", "replicas": 2})),
        reply_text("cl-001 now runs 2 replicas."),
    )


async def test_sandbox_in_front_of_an_agent_on_langgraph_server(
    model: FakeOpenAI, tmp_path: Path
) -> None:
    script(model)
    async with AsyncExitStack() as stack:
        server = await stack.enter_async_context(
            langgraph_server(tmp_path / "server", model.base_url)
        )
        base, output = await stack.enter_async_context(
            sandbox(tmp_path, LANGGRAPH_URL=server.url, LANGGRAPH_ASSISTANT="agent")
        )
        texts = await approve_in_sandbox(base, output)
        assert "Approved by" in texts and "scaled down to 2" in texts
        assert server.executions("scale_down") == [{"cluster_id": "cl-001", "replicas": 2}]
    assert "agent on LangGraph Server" in "".join(output)


async def test_sandbox_in_front_of_a_graph_in_process(model: FakeOpenAI, tmp_path: Path) -> None:
    script(model)
    async with sandbox(
        tmp_path,
        APPROVALS_GRAPH="tests.support.custom_graph:batched_agent",
        OPENAI_API_KEY="test",
        OPENAI_BASE_URL=model.base_url,
    ) as (base, output):
        texts = await approve_in_sandbox(base, output)
        assert "Approved by" in texts and "scaled down to 2" in texts
    assert "APPROVALS_GRAPH=tests.support.custom_graph:batched_agent" in "".join(output)


async def test_an_unreachable_server_is_a_clear_startup_error(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code, out = await cli("run", cwd=tmp_path, LANGGRAPH_URL=url, LANGGRAPH_ASSISTANT="agent")
    assert code == 2 and "the server cannot be used" in out and "Traceback" not in out


async def test_a_bad_graph_spec_is_a_clear_startup_error(tmp_path: Path) -> None:
    code, out = await cli("run", cwd=tmp_path, APPROVALS_GRAPH="tests.support.nothing:graph")
    assert code == 2 and "APPROVALS_GRAPH" in out and "Traceback" not in out
