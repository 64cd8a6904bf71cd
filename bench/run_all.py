"""Run every benchmark (B1 to B4) and print one table, with the machine it ran on.

    python -m bench.run_all [--quick] [--database-url postgresql://user@host/scratch_db]
    python -m bench …              (the same)

A full run takes about ten minutes on 2 cores; --quick, about two.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from dataclasses import dataclass

from bench import ack_latency, click_to_tool, pending_scale, throughput
from bench.common import quiet_logs
from bench.processes import workdir
from bench.results import Row, fsync_latency, machine, notes, table
from tests.support.process import REPO as ROOT


@dataclass(frozen=True)
class Suite:
    b1: ack_latency.Sizes
    b2: click_to_tool.Sizes
    b3: pending_scale.Sizes
    b4: throughput.Sizes


FULL = Suite(ack_latency.FULL, click_to_tool.FULL, pending_scale.FULL, throughput.FULL)
QUICK = Suite(ack_latency.QUICK, click_to_tool.QUICK, pending_scale.QUICK, throughput.QUICK)


async def run(suite: Suite = FULL, database_url: str | None = None) -> list[Row]:
    rows = await ack_latency.run(suite.b1)
    rows += await click_to_tool.run(suite.b2)
    rows += await pending_scale.run(suite.b3)
    rows += await throughput.run(suite.b4, database_url)
    return rows


def revision() -> str:
    """The commit measured, and whether the work tree had changes on top of it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "unknown"
    return f"{head} (with uncommitted changes)" if dirty else head or "unknown"


def load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, about two minutes")
    parser.add_argument(
        "--database-url", help="postgresql://… of a scratch database, for B4's two replicas"
    )
    args = parser.parse_args()
    quiet_logs()
    # Other work on the machine skews every figure: the load average says how quiet it was.
    load_before, started = load(), time.monotonic()
    with workdir() as directory:
        disk_before = fsync_latency(directory)
    rows = asyncio.run(run(QUICK if args.quick else FULL, args.database_url))
    minutes, seconds = divmod(round(time.monotonic() - started), 60)
    with workdir() as directory:
        disk_after = fsync_latency(directory)
    print("# slack-approvals benchmarks\n")
    command = " ".join(["python -m bench.run_all", *sys.argv[1:]])
    print(f"- Command: `{command}`")
    print(f"- Machine: {machine()}")
    print(f"- Code: {revision()}")
    print(f"- Ran in {minutes} min {seconds} s")
    print(f"- Load average before: {load_before}; after: {load()}")
    print(f"- Disk (temporary directory): before: {disk_before}; after: {disk_after}")
    print()
    print(table(rows))
    if notes(rows):
        print("\n" + notes(rows))


if __name__ == "__main__":
    main()
