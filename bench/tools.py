"""Instant tools for the benchmarks, as `APPROVALS_TOOLS=bench.tools:TOOLS` loads them.

They return at once, so every figure is the bot's own cost. `scale_down` records when it
starts on the monotonic clock, which on Linux is one clock for every process: the
benchmark compares it with the moment it clicked, in another process.
"""

from __future__ import annotations

import time

from langchain_core.tools import tool

# (cluster_id, time.monotonic() at the tool's start); the benchmarks use one id per call.
STARTS: list[tuple[str, float]] = []


@tool
async def list_clusters() -> str:
    """List the clusters and their replica counts."""
    return "cl-001 (3 replicas), cl-002 (5 replicas)"


@tool
async def scale_down(cluster_id: str, replicas: int) -> str:
    """Scale a cluster down to the given number of replicas."""
    STARTS.append((cluster_id, time.monotonic()))
    return f"{cluster_id} scaled down to {replicas} replicas"


TOOLS = [list_clusters, scale_down]

# expires_after is long so that no approval expires while a benchmark (or its restart) runs.
POLICY = """\
defaults:
  approvers: []
  expires_after: 1d
tools:
  list_clusters: {approval: never}
  scale_down: {approval: required}
"""


def take_starts() -> list[tuple[str, float]]:
    taken = list(STARTS)
    STARTS.clear()
    return taken
