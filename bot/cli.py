"""`slack-approvals run` and `slack-approvals audit`."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import signal
import sys
import time
from contextlib import AsyncExitStack
from datetime import UTC, datetime

from pydantic import SecretStr

from agent.policy import PolicyError, parse_duration
from agent.toolsets import ToolLoadError
from bot import logcontext
from bot.db import Database
from bot.redaction import Redactor, redact_logs
from bot.service import running_bot
from bot.settings import Settings, SettingsError, load_settings
from bot.store import Store

log = logging.getLogger("slack_approvals")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="slack-approvals", description="A Slack bot that asks a human before an agent acts."
    )
    parser.add_argument("--log-level", default="INFO")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="run the bot (the local sandbox when no Slack token is set)")
    audit = sub.add_parser("audit", help="print the audit log")
    audit.add_argument("--json", action="store_true", help="one JSON object per line")
    audit.add_argument("--since", type=_since, help="e.g. 2h, 7d, or 2026-11-01")
    audit.add_argument("--tool", help="only this tool")
    audit.add_argument("--user", help="only this actor (Slack user id)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format=logcontext.LOG_FORMAT)
    logcontext.install()
    try:
        settings = load_settings()
        redact_logs(Redactor(settings.secret_values()))
        if args.command == "audit":
            return asyncio.run(
                _audit(
                    settings, as_json=args.json, since=args.since, tool=args.tool, user=args.user
                )
            )
        return asyncio.run(_run(settings))
    except (SettingsError, PolicyError, ToolLoadError) as exc:
        print(f"slack-approvals: {exc}", file=sys.stderr)
        return 2


async def _run(settings: Settings) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if stop.is_set():
            # A second signal: the operator wants out now. No clean-up: a sync tool's worker
            # thread would hold up asyncio.run's, and the journal makes an abrupt stop safe.
            print("slack-approvals: stopping at once", file=sys.stderr)
            os._exit(1)
        log.info("stopping: no new work; waiting for running turns")
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)

    async with AsyncExitStack() as stack:
        if settings.mode == "sandbox":
            settings = await stack.enter_async_context(_sandbox(settings))
        bot = await stack.enter_async_context(running_bot(settings))
        # What start-up built lives as long as the process: frozen out of the collector's
        # reach, a full collection walks only what runs make, instead of stalling every ack
        # in flight for tens of milliseconds (B1's bursts).
        gc.freeze()
        if bot.http_port is not None:
            print(f"HTTP mode: Slack events at http://{settings.host}:{bot.http_port}/slack/events")
        await stop.wait()
    return 0


class _sandbox:
    """The local Slack emulator, with the bot's settings pointed at it."""

    def __init__(self, settings: Settings) -> None:
        from agent.model import describe_model, make_model
        from bot.sandbox.emulator import SlackEmulator
        from bot.sandbox.web import serve_sandbox

        self._settings = settings
        self._emulator = serve_sandbox(SlackEmulator())
        key = settings.openai_api_key
        self._model = describe_model(
            make_model(
                key.get_secret_value() if key else None,
                settings.openai_base_url,
                settings.openai_model,
            )
        )

    async def __aenter__(self) -> Settings:
        emu = self._emulator
        await emu.start(host="127.0.0.1", port=self._settings.port)
        settings = self._settings.model_copy(
            update={
                "slack_bot_token": SecretStr(emu.bot_token),
                "slack_app_token": SecretStr(emu.app_token),
                "slack_api_url": emu.api_url,
                # Any free port: a local demo must not clash with whatever holds 8080.
                "health_port": 0,
            }
        )
        emu.sandbox_info = {"model": self._model}
        say = f"curl -s {emu.base_url}sandbox/say -H 'content-type: application/json' -d"
        rule = "=" * 72
        print(
            f"""
{rule}
  Sandbox: open {emu.base_url} in your browser
{rule}
No SLACK_BOT_TOKEN, so the bot talks to a local Slack emulator, and that page is its Slack:
channels, threads, buttons and modals; switch between the sample users at the top right.
Model: {self._model}{"" if settings.openai_api_key else " (set OPENAI_API_KEY for a real one)"}

Or with curl. Ask as alice in #ops (C0OPS):
  {say} '{{"user": "U0ALICE", "channel": "C0OPS", "text": "/ask scale down cl-001 to 2"}}'
See the channel, with the approval card's ts and buttons:
  curl -s '{emu.base_url}sandbox/messages?channel=C0OPS'
Approve as bob (put the card's ts in):
  curl -s {emu.base_url}sandbox/click -H 'content-type: application/json' -d \\
    '{{"user": "U0BOB", "channel": "C0OPS", "ts": "CARD_TS", "action_id": "approval_approve"}}'
(action_id approval_deny denies.) Ctrl-C stops.
""",
            flush=True,
        )
        return settings

    async def __aexit__(self, *exc: object) -> None:
        await self._emulator.stop()


def _since(value: str) -> float:
    try:
        duration = parse_duration(value)
    except ValueError:
        try:
            return datetime.fromisoformat(value).replace(tzinfo=UTC).timestamp()
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{value!r} is neither a duration (2h, 7d) nor a date (2026-11-01)"
            ) from None
    if duration is None:
        raise argparse.ArgumentTypeError("'never' is not a starting point")
    return time.time() - duration.total_seconds()


async def _audit(
    settings: Settings,
    *,
    as_json: bool,
    since: float | None = None,
    tool: str | None = None,
    user: str | None = None,
) -> int:
    db = await Database.open(settings.database_url)
    try:
        rows = await Store(db).audit_log(since=since, tool=tool, user=user)
    finally:
        await db.close()
    for row in rows:
        if as_json:
            print(json.dumps(row))
            continue
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(row["at"]))
        parts = [when, row["event"], row["tool"] or "-", row["args"] or "", row["actor"] or "-"]
        if row["reason"]:
            parts.append(f"reason={row['reason']}")
        if row["detail"]:
            parts.append(row["detail"][:200])
        print("  ".join(parts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
