"""`slack-approvals run` with no Slack token (the sandbox) in front of a team's own agent:
a graph in process (`APPROVALS_GRAPH`) or an agent on LangGraph Server (`LANGGRAPH_URL`),
so a team can try its agent before connecting Slack. Also: clear errors at startup."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.bot.test_cli import CLI, clean_env, free_port, run_cli
from tests.fakes.openai_server import FakeOpenAI, reply_text, reply_tool_calls
from tests.support.langgraph_server import langgraph_server

pytestmark = pytest.mark.timeout(240)


@asynccontextmanager
async def sandbox(tmp_path: Path, **env: str) -> AsyncIterator[tuple[str, list[str]]]:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        *CLI,
        "run",
        cwd=tmp_path,
        env=clean_env(PORT=str(port), **env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output: list[str] = []

    async def read_output() -> None:
        assert proc.stdout is not None
        async for line in proc.stdout:
            output.append(line.decode())

    reader = asyncio.create_task(read_output())
    try:
        yield f"http://127.0.0.1:{port}/sandbox", output
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await reader


async def approve_in_sandbox(base: str, output: list[str]) -> str:
    """Ask, approve the card as bob, and return the channel's text once the agent answered."""
    async with aiohttp.ClientSession() as http:

        async def messages() -> list[dict[str, Any]]:
            try:
                async with http.get(f"{base}/messages?channel=C0OPS") as response:
                    return list((await response.json())["messages"])
            except aiohttp.ClientError:
                return []

        async def poll(predicate: Any) -> Any:
            for _ in range(600):
                found = predicate(await messages())
                if found:
                    return found
                await asyncio.sleep(0.1)
            pytest.fail("timed out; bot output:\n" + "".join(output))

        async def post(path: str, body: dict[str, Any]) -> None:
            async with http.post(f"{base}/{path}", json=body) as response:
                assert response.status == 200, await response.text()

        for _ in range(600):
            if any("Sandbox" in line for line in output):
                break
            await asyncio.sleep(0.1)
        say = {"user": "U0ALICE", "channel": "C0OPS", "text": "/ask scale down cl-001 to 2"}
        await post("say", say)
        card = await poll(lambda ms: next((m for m in ms if m["buttons"]), None))
        assert "scale_down" in card["text"]
        click = {"user": "U0BOB", "channel": "C0OPS", "ts": card["ts"]}
        await post("click", {**click, "action_id": "approval_approve"})
        await poll(lambda ms: any("cl-001 now runs 2" in m["text"] for m in ms))
        return " ".join(m["text"] for m in await messages())


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
    code, out = await run_cli(
        tmp_path, LANGGRAPH_URL=f"http://127.0.0.1:{free_port()}", LANGGRAPH_ASSISTANT="agent"
    )
    assert code == 2 and "the server cannot be used" in out and "Traceback" not in out


async def test_a_bad_graph_spec_is_a_clear_startup_error(tmp_path: Path) -> None:
    code, out = await run_cli(tmp_path, APPROVALS_GRAPH="tests.support.nothing:graph")
    assert code == 2 and "APPROVALS_GRAPH" in out and "Traceback" not in out
