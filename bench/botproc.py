"""The system under test in a process of its own, driven by a benchmark over stdin/stdout.

`kind` is `bot` (the real `running_bot`, offline model, `bench.tools`), `bare` (a bare
slack-bolt `AsyncApp` whose listeners only ack, with `process_before_response=True` as the
bot's: the floor of Bolt's ack), `bare-default` (the same app with Bolt's default,
`process_before_response=False`: the Bolt baseline of B1) or `graph` (the agent graph
alone, resumed with bare `Command`s: the LangGraph baseline, bench.bare_graph). A process of
its own, because the emulator must not share the bot's event loop (its work would count as
the bot's), so that memory can be measured for the bot alone, and so that a baseline runs
under the same conditions as the bot.

Protocol: one JSON object per line. The process first writes `{"event": "ready", ...}`, then
answers each command line `{"cmd": NAME, ...}` with one line, until `quit` or end of input.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import json
import logging
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TextIO

# Only protocol lines may reach the parent on stdout: anything a library prints goes to stderr.
_PROTOCOL: TextIO = sys.stdout
sys.stdout = sys.stderr

Handler = Callable[..., Awaitable[dict[str, Any]]]


def send(message: dict[str, Any]) -> None:
    _PROTOCOL.write(json.dumps(message) + "\n")
    _PROTOCOL.flush()


def memory() -> dict[str, float]:
    """Resident set size now and at its peak, in bytes (Linux), and CPU time used so far."""
    found: dict[str, float] = {"cpu_s": time.process_time()}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found["rss" if key == "VmRSS" else "rss_peak"] = int(value.split()[0]) * 1024
    return found


class Profiling:
    def __init__(self) -> None:
        self._profiler: Any = None

    async def start(self, interval: float = 0.0005) -> dict[str, Any]:
        from pyinstrument import Profiler

        # async_mode="disabled": sample the event loop thread whatever task runs, not only
        # the task that happened to start the profiler.
        self._profiler = Profiler(interval=interval, async_mode="disabled")
        self._profiler.start()
        return {}

    async def stop(self, path: str) -> dict[str, Any]:
        profiler, self._profiler = self._profiler, None
        if profiler is None:
            raise RuntimeError("the profiler is not running")
        session = profiler.stop()
        _write_profile(profiler, Path(path))
        return {"duration": session.duration, "samples": session.sample_count}


def _write_profile(profiler: Any, path: Path) -> None:
    path.write_text(profiler.output_text(unicode=True, color=False, show_all=False))
    path.with_suffix(".html").write_text(profiler.output_html())
    # Re-render with other options: pyinstrument --load=FILE.pyisession -r text --show-all
    profiler.last_session.save(str(path.with_suffix(".pyisession")))


async def serve(handlers: dict[str, Handler]) -> None:
    # Whatever runs here is set up: as `slack-approvals run` does, and for the baselines alike.
    gc.freeze()
    while True:
        line = await asyncio.to_thread(sys.stdin.readline)
        if not line:
            return
        request = json.loads(line)
        command = request.pop("cmd")
        if command == "quit":
            return
        try:
            send({"ok": True, **await handlers[command](**request)})
        except Exception as exc:
            logging.getLogger(__name__).exception("command %s failed", command)
            send({"ok": False, "error": f"{type(exc).__name__}: {exc}"})


def common_handlers() -> dict[str, Handler]:
    profiling = Profiling()

    async def rss() -> dict[str, Any]:
        return memory()

    return {"rss": rss, "profile_start": profiling.start, "profile_stop": profiling.stop}


# the bot ---------------------------------------------------------------------------------


async def run_bot(config: dict[str, Any]) -> None:
    from bench import tools
    from bot.reports import approvals_by_status
    from bot.service import running_bot
    from bot.settings import load_settings

    workdir = Path(config["workdir"])
    policy = workdir / "policy.yml"
    policy.write_text(tools.POLICY)
    http = config["transport"] == "http"
    settings = load_settings(
        _env_file=None,
        slack_bot_token=config["bot_token"],
        slack_app_token=None if http else config["app_token"],
        slack_signing_secret=config["signing_secret"] if http else None,
        slack_api_url=config["api_url"],
        host="127.0.0.1",
        port=0,
        # Several bots run side by side; settings without it ignore it (extra="ignore").
        health_port=0,
        openai_api_key=None,
        database_url=config["database_url"],
        approvals_tools="bench.tools:TOOLS",
        approvals_policy=str(policy),
        demo_inventory=str(workdir / "inventory.sqlite3"),
    )
    started = time.perf_counter()
    async with running_bot(settings) as bot:
        startup = time.perf_counter() - started
        db = bot.store.db

        async def idle(limit: float = 300.0) -> dict[str, Any]:
            if not await bot.runner.wait_idle(limit):
                raise TimeoutError(f"background work still running after {limit} s")
            return {}

        async def pending() -> dict[str, Any]:
            cards = [
                [a.id, a.channel, a.message_ts, a.args["cluster_id"]]
                for a in await bot.store.posted_pending()
            ]
            return {"cards": cards}

        async def counts() -> dict[str, Any]:
            return {"approvals": await approvals_by_status(db)}

        async def starts() -> dict[str, Any]:
            return {"starts": tools.take_starts()}

        send(
            {
                "event": "ready",
                "http_port": bot.http_port,
                "startup_s": startup,
                # Tells the benchmark which backend really runs: a postgresql:// URL that an
                # older bot reads as a file name must not pass for PostgreSQL figures.
                "checkpointer": type(bot.runner.session._graph.checkpointer).__name__,
                **memory(),
            }
        )
        await serve(
            {
                **common_handlers(),
                "idle": idle,
                "pending": pending,
                "counts": counts,
                "starts": starts,
            }
        )


# the baseline ----------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def bare_app(config: dict[str, Any]) -> AsyncIterator[int | None]:
    """A bare Bolt app configured as the bot's is, whose listeners only ack; kind
    `bare-default` leaves `process_before_response` at Bolt's default (off), whose listener
    runner then awaits the ack in 10 ms sleeps."""
    from aiohttp import web
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
    from slack_bolt.async_app import AsyncAck, AsyncApp
    from slack_bolt.authorization import AuthorizeResult
    from slack_sdk.web.async_client import AsyncWebClient

    from bot import blocks

    http = config["transport"] == "http"
    client = AsyncWebClient(token=config["bot_token"], base_url=config["api_url"])
    authorized = AuthorizeResult.from_auth_test_response(
        bot_token=config["bot_token"], auth_test_response=await client.auth_test()
    )

    async def authorize(**_: Any) -> AuthorizeResult:
        # The same authorize as the bot's, so that only the listeners differ.
        return authorized

    app = AsyncApp(
        client=AsyncWebClient(base_url=config["api_url"]),
        authorize=authorize,
        signing_secret=config["signing_secret"] if http else None,
        request_verification_enabled=http,
        process_before_response=config["kind"] != "bare-default",
    )

    async def only_ack(ack: AsyncAck) -> None:
        await ack()

    app.command("/ask")(only_ack)
    app.action(blocks.APPROVE_ACTION)(only_ack)
    app.action(blocks.DENY_ACTION)(only_ack)

    if http:
        runner = web.AppRunner(app.web_app(path="/slack/events", port=0))
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        try:
            yield runner.addresses[0][1]
        finally:
            await runner.cleanup()
    else:
        handler = AsyncSocketModeHandler(app, config["app_token"])
        await handler.connect_async()
        try:
            yield None
        finally:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(handler.close_async(), 3.0)


async def run_bare(config: dict[str, Any]) -> None:
    started = time.perf_counter()
    async with bare_app(config) as port:
        startup = time.perf_counter() - started

        async def nothing(**_: Any) -> dict[str, Any]:
            return {}

        async def no_cards() -> dict[str, Any]:
            return {"cards": []}

        async def no_starts() -> dict[str, Any]:
            return {"starts": []}

        send({"event": "ready", "http_port": port, "startup_s": startup, **memory()})
        await serve(
            {**common_handlers(), "idle": nothing, "pending": no_cards, "starts": no_starts}
        )


async def run_graph(config: dict[str, Any]) -> None:
    from bench import bare_graph, floor

    started = time.perf_counter()
    async with (
        bare_graph.bare_graph(config["database_url"]) as (graph, saver),
        contextlib.AsyncExitStack() as stack,
    ):
        startup = time.perf_counter() - started
        floors: list[floor.Floor] = []

        async def latency(n: int) -> dict[str, Any]:
            return {"samples": await bare_graph.latencies(graph, n)}

        async def throughput(n: int, concurrency: int) -> dict[str, Any]:
            return {"elapsed": await bare_graph.throughput(graph, n, concurrency)}

        paused: list[tuple[str, str, str]] = []

        async def pause(n: int) -> dict[str, Any]:
            paused[:] = await bare_graph.paused_threads(graph, n)
            return {}

        async def resume_paused(concurrency: int) -> dict[str, Any]:
            started, last = await bare_graph.resume_all(graph, paused, concurrency)
            return {"started": started, "last": last}

        async def floor_latency(n: int) -> dict[str, Any]:
            if not floors:  # only B2 asks: opened then, on SQLite whatever the baseline's
                floor_url = f"sqlite:///{Path(config['workdir']) / 'floor.sqlite3'}"
                floors.append(await stack.enter_async_context(floor.floor(floor_url, graph)))
            return {"samples": await floors[0].samples(n)}

        send({"event": "ready", "startup_s": startup, "checkpointer": saver, **memory()})
        await serve(
            {
                **common_handlers(),
                "latency": latency,
                "throughput": throughput,
                "floor": floor_latency,
                "pause": pause,
                "resume_paused": resume_paused,
            }
        )


KINDS = {"bot": run_bot, "bare": run_bare, "bare-default": run_bare, "graph": run_graph}


def main() -> None:
    # BENCH_PRELOAD=module[,module]: imported first, to measure a patch (a monkeypatch kept
    # outside the repo) without editing the bot.
    for module in filter(None, os.environ.get("BENCH_PRELOAD", "").split(",")):
        importlib.import_module(module)
    logging.basicConfig(
        level=logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    config = json.loads(sys.argv[1])
    try:
        asyncio.run(KINDS[config["kind"]](config))
    finally:
        send({"event": "bye"})


if __name__ == "__main__":
    main()
