"""Profile the bot's click path and ack path with pyinstrument, inside the bot's process.

One click (or one `/ask`) at a time, so the profile is that path's own work: the sampler
watches the bot's event-loop thread whatever task runs (SQLite's own thread is not sampled;
time the loop spends waiting for it shows up as the awaiting frame or as idle select()).
Writes a text and an HTML report for each path and prints the top of the text ones.

    python -m bench.profile_paths [--n 100] [--out DIR] [--transport socket|http]

The reports go to DIR (default: slack-approvals-profiles in the temporary directory); each
also saved as a .pyisession to re-render, e.g. `pyinstrument --load=FILE -r text --show-all`.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from bench.click_to_tool import click_each, click_to_tool
from bench.common import ask_many, cards_of, cluster_ids, emulator, quiet_logs, waiting_cards
from bench.processes import sqlite_url, under_test, workdir


async def run(n: int, out: Path, transport: str = "socket", lines: int = 60) -> list[Path]:
    reports = [out / "click-path.txt", out / "ask-path.txt"]
    with workdir() as directory:
        async with (
            emulator() as emu,
            under_test(
                emu, transport=transport, database_url=sqlite_url(directory), workdir=directory
            ) as bot,
        ):
            await click_to_tool(emu, bot, cluster_ids("pw", 3))

            # Click path: cards made beforehand, then clicked one at a time under the profiler.
            cards = await waiting_cards(emu, [bot], cluster_ids("pc", n))
            await bot.call("profile_start")
            await click_each(emu, bot, cards)
            await bot.call("profile_stop", path=str(reports[0]))

            # Ack path: each /ask acked and its run finished before the next.
            await bot.call("profile_start")
            for cluster in cluster_ids("pa", n):
                await ask_many(emu, [cluster])
                await bot.call("idle")
            await bot.call("profile_stop", path=str(reports[1]))
            assert len(await cards_of(bot)) == n
    for report in reports:
        print(f"\n## {report} (HTML beside it)\n")
        print("\n".join(report.read_text().splitlines()[:lines]))
    return reports


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100, help="clicks and asks to profile")
    # Outside the work tree by default, so that reports are not committed by accident.
    default_out = Path(tempfile.gettempdir()) / "slack-approvals-profiles"
    parser.add_argument("--out", type=Path, default=default_out)
    parser.add_argument("--transport", choices=["socket", "http"], default="socket")
    args = parser.parse_args()
    quiet_logs()
    args.out.mkdir(parents=True, exist_ok=True)
    asyncio.run(run(args.n, args.out.resolve(), args.transport))


if __name__ == "__main__":
    main()
