"""A child process of the test suite or a benchmark, with its output in a log file: the part of
running the bot in a process of its own that `tests.support.botproc` (`slack-approvals run`,
driven over Slack) and `bench.processes` (the bot behind a line protocol on stdin/stdout) share.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# The last line of a logged traceback, e.g. "sqlite3.OperationalError: database is locked".
EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception)\b(:.*)?$")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def child_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """`base` (default: this process's environment) with this checkout first on the path, so
    the child runs the code under test whatever is installed."""
    env = dict(os.environ if base is None else base)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


class ChildProcess:
    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.proc: asyncio.subprocess.Process | None = None

    async def spawn(
        self, *argv: str, env: dict[str, str], cwd: Path, protocol: bool = False
    ) -> None:
        """Start it; its stderr (and stdout, unless `protocol` keeps both pipes for a line
        protocol) goes to the log, appended to across restarts."""
        pipe = asyncio.subprocess.PIPE
        with self.log_path.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                *argv,
                env=env,
                cwd=cwd,
                stdin=pipe if protocol else subprocess.DEVNULL,
                stdout=pipe if protocol else log,
                stderr=log,
                limit=1 << 26,
            )

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def kill(self) -> None:
        """kill -9, and reap it (a zombie still looks alive to a lease's liveness check)."""
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        await self.proc.wait()

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    async def wait_exit(self, limit: float) -> int:
        assert self.proc is not None
        async with asyncio.timeout(limit):
            return await self.proc.wait()

    def lines(self) -> list[str]:
        if not self.log_path.exists():
            return []
        return self.log_path.read_text(errors="replace").splitlines()

    def tail(self, lines: int = 60, sep: str = "\n") -> str:
        return sep.join(self.lines()[-lines:]) or "(no output)"

    def errors(self) -> Counter[str]:
        """The exceptions it logged, by their last line."""
        return Counter(line.strip() for line in self.lines() if EXCEPTION_LINE.match(line))


@asynccontextmanager
async def stopped_by_sigterm(proc: asyncio.subprocess.Process) -> AsyncIterator[list[str]]:
    """The lines `proc` writes to its stdout pipe, read as they come. A body that finishes
    sends SIGTERM and expects a clean exit; whatever happens, the process is reaped."""
    output: list[str] = []

    async def read() -> None:
        assert proc.stdout is not None
        async for line in proc.stdout:
            output.append(line.decode(errors="replace"))

    reader = asyncio.create_task(read())
    try:
        yield output
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await reader
