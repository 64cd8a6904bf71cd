"""`slack-approvals` as users start it: a subprocess configured only by its environment, for
one command's output, or running in sandbox mode for as long as a test needs it."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.process import REPO, free_port, stopped_by_sigterm

CLI = [sys.executable, "-m", "bot.cli"]


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLACK_", "OPENAI_", "APPROVALS_", "DATABASE_"))
    }
    env["PYTHONPATH"] = str(REPO)
    # Ports of its own, not the defaults (3000, 8080): another test's bot may hold those, as
    # the suite runs on several workers.
    env.update(PORT=str(free_port()), HEALTH_PORT="0")
    env.update(extra)
    return env


async def cli(*args: str, cwd: Path, **env: str) -> tuple[int, str]:
    """Run `slack-approvals ARGS` to its end: (exit code, output)."""
    proc = await asyncio.create_subprocess_exec(
        *CLI,
        *args,
        cwd=cwd,
        env=clean_env(**env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode()


@asynccontextmanager
async def sandbox(cwd: Path, *args: str, **env: str) -> AsyncIterator[tuple[str, list[str]]]:
    """`slack-approvals run` in sandbox mode, until its banner: (page URL, output so far).
    Stopped by SIGTERM on the way out, which it must answer with a clean exit."""
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        *CLI,
        "run",
        *args,
        cwd=cwd,
        env=clean_env(PORT=str(port), **env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    async with stopped_by_sigterm(proc) as output:
        async with asyncio.timeout(60):
            while not any("Sandbox: open" in line for line in output):
                assert proc.returncode is None, "".join(output)
                await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{port}/", output


class SandboxHttp:
    """The `curl` endpoints of a sandbox `sandbox()` started, as the banner shows them."""

    def __init__(self, http: aiohttp.ClientSession, url: str, output: list[str]) -> None:
        self._http, self._base, self._output = http, url + "sandbox/", output

    async def post(self, path: str, body: dict[str, Any]) -> Any:
        async with self._http.post(self._base + path, json=body) as response:
            assert response.status == 200, await response.text()
            return await response.json()

    async def messages(self, channel: str = "C0OPS") -> list[dict[str, Any]]:
        async with self._http.get(f"{self._base}messages?channel={channel}") as response:
            found: list[dict[str, Any]] = (await response.json())["messages"]
            return found

    async def poll(
        self, predicate: Callable[[list[dict[str, Any]]], Any], limit_s: float = 30.0
    ) -> Any:
        """Until `predicate` of #ops's messages is truthy; returns it."""
        for _ in range(int(limit_s * 10)):
            try:
                messages = await self.messages()
            except aiohttp.ClientError:
                messages = []
            if found := predicate(messages):
                return found
            await asyncio.sleep(0.1)
        pytest.fail("timed out; bot output:\n" + "".join(self._output))
