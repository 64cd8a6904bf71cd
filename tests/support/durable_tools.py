"""A team's toolset for bot *processes* (`APPROVALS_TOOLS=tests.support.durable_tools:TOOLS`).

Every execution is appended to the file named by `APPROVALS_TEST_LOG` (one JSON line when a
call starts and one when it ends), so a test counts executions across processes and across
kill -9. While `<APPROVALS_TEST_HOLD>/<cluster_id>` exists, a call waits inside the tool: that
is where a test holds a run to crash the bot mid-tool.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import Counter
from pathlib import Path

from langchain_core.tools import tool

POLICY = """\
defaults:
  approvers: []
tools:
  scale_down: {approval: required}
  restart_service: {approval: required, approvers: [U0BOB, S0SREONCALL]}
  drain_node: {approval: required, expires_after: 1s}
  wipe_cache: {approval: required}
"""


def _record(event: str, cluster_id: str) -> None:
    # One small O_APPEND write per line: atomic between processes, and in the page cache
    # (so it survives the writer's kill -9) the moment write() returns.
    line = json.dumps({"event": event, "cluster_id": cluster_id, "pid": os.getpid()}) + "\n"
    fd = os.open(os.environ["APPROVALS_TEST_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


async def _execute(cluster_id: str) -> None:
    _record("start", cluster_id)
    hold = Path(os.environ["APPROVALS_TEST_HOLD"]) / cluster_id
    while hold.exists():  # noqa: ASYNC110 - another process removes the file
        await asyncio.sleep(0.02)
    _record("end", cluster_id)


@tool
async def scale_down(cluster_id: str, replicas: int) -> str:
    """Scale a cluster down to the given number of replicas."""
    await _execute(cluster_id)
    return f"{cluster_id} scaled down to {replicas} replicas"


@tool
async def restart_service(cluster_id: str) -> str:
    """Restart the service on a cluster (approvers: bob, and the on-call group)."""
    await _execute(cluster_id)
    return f"{cluster_id} restarted"


@tool
async def drain_node(cluster_id: str) -> str:
    """Drain a cluster's nodes (the request expires after a second)."""
    await _execute(cluster_id)
    return f"{cluster_id} drained"


@tool
def wipe_cache(cluster_id: str) -> str:
    """Wipe a cluster's cache (a sync tool: LangChain runs it in a worker thread)."""
    _record("start", cluster_id)
    hold = Path(os.environ["APPROVALS_TEST_HOLD"]) / cluster_id
    while hold.exists():
        time.sleep(0.02)
    _record("end", cluster_id)
    return f"{cluster_id} cache wiped"


TOOLS = [scale_down, restart_service, drain_node, wipe_cache]


def read_log(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def started(path: Path) -> Counter[str]:
    """How many times each cluster's call started (ran, at least in part)."""
    return Counter(e["cluster_id"] for e in read_log(path) if e["event"] == "start")


def finished(path: Path) -> Counter[str]:
    return Counter(e["cluster_id"] for e in read_log(path) if e["event"] == "end")
