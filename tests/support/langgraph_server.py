"""A real LangGraph Server for tests: `langgraph dev --no-browser --no-reload` (from
`langgraph-cli[inmem]`) on a loopback port, serving the graphs of
`tests/support/server_graph.py` with the fake OpenAI server as their model.

The in-memory server keeps its threads in `.langgraph_api/` under its working directory, so
`restart()` brings back the same threads, as a restarted deployment would.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp

from tests.support.botproc import free_port

REPO = Path(__file__).resolve().parents[2]
LANGGRAPH = Path(sys.executable).with_name("langgraph")
GRAPHS = REPO / "tests" / "support" / "server_graph.py"
READY_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 15.0


class LangGraphServer:
    def __init__(self, workdir: Path, model_url: str, api_key: str | None = None) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.tools_log = workdir / "tools.log"
        self.hold_dir = workdir / "hold"
        self.hold_dir.mkdir(exist_ok=True)
        self.log_path = workdir / "langgraph.log"
        self._model_url = model_url
        self._proc: asyncio.subprocess.Process | None = None
        self._api_key = api_key
        config: dict[str, object] = {
            "dependencies": [str(REPO)],
            "graphs": {"agent": f"{GRAPHS}:graph", "batched": f"{GRAPHS}:batched_graph"},
        }
        if api_key is not None:
            config["auth"] = {"path": f"{GRAPHS}:auth"}
        (workdir / "langgraph.json").write_text(json.dumps(config))

    async def start(self) -> None:
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("LANGGRAPH_", "LANGSMITH_"))
        }
        env.update(
            SERVER_TOOLS_LOG=str(self.tools_log),
            SERVER_TOOLS_HOLD=str(self.hold_dir),
            SERVER_OPENAI_BASE_URL=self._model_url,
            LANGSMITH_TRACING="false",
            SERVER_API_KEY=self._api_key or "",
        )
        with self.log_path.open("ab") as log:
            self._proc = await asyncio.create_subprocess_exec(
                str(LANGGRAPH),
                "dev",
                "--no-browser",
                "--no-reload",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                cwd=self.workdir,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        await self._wait_ready()

    async def _wait_ready(self) -> None:
        assert self._proc is not None
        async with aiohttp.ClientSession() as http:
            async with asyncio.timeout(READY_TIMEOUT_S):
                while True:
                    if self._proc.returncode is not None:
                        raise RuntimeError(f"langgraph dev exited:\n{self.log()[-3000:]}")
                    with contextlib.suppress(aiohttp.ClientError):
                        async with http.get(f"{self.url}/info") as response:
                            if response.status == 200:
                                return
                    await asyncio.sleep(0.2)

    async def stop(self) -> None:
        """SIGTERM, as a deployment stops a server: it writes its threads out first."""
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            async with asyncio.timeout(STOP_TIMEOUT_S):
                await proc.wait()
        except TimeoutError:
            os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    def hold(self, cluster_id: str) -> None:
        (self.hold_dir / cluster_id).touch()

    def release(self, cluster_id: str) -> None:
        (self.hold_dir / cluster_id).unlink(missing_ok=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def executions(self, name: str) -> list[dict[str, object]]:
        if not self.tools_log.exists():
            return []
        rows = [json.loads(line) for line in self.tools_log.read_text().splitlines() if line]
        return [args for tool, args in rows if tool == name]


@asynccontextmanager
async def langgraph_server(
    workdir: Path, model_url: str, api_key: str | None = None
) -> AsyncIterator[LangGraphServer]:
    server = LangGraphServer(workdir, model_url, api_key)
    try:
        await server.start()
        yield server
    finally:
        await server.stop()
