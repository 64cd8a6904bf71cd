"""`slack-approvals run` and `slack-approvals audit`."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import re
import signal
import sys
import time
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

from pydantic import SecretStr

from agent.policy import PolicyError, parse_duration
from bot import audit, logcontext
from bot.audit_trail import read_audit
from bot.connections import is_postgres, sqlite_path
from bot.db import Database
from bot.redaction import Redactor, redact_logs
from bot.settings import Settings, SettingsError, environment_help, load_settings

log = logging.getLogger("slack_approvals")

# Shipped in the package; examples/policy.yml in the source tree is a link to it.
SAMPLE_POLICY = Path(__file__).with_name("sandbox") / "policy.yml"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
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
        if args.reset:
            _reset_sandbox(settings)
        return _start(settings)
    except (SettingsError, PolicyError) as exc:
        print(f"slack-approvals: {exc}", file=sys.stderr)
        return 2


def _start(settings: Settings) -> int:
    # These import LangChain: only when the bot runs.
    from agent.server_session import ServerUnusable
    from agent.sources import GraphLoadError
    from agent.toolsets import ToolLoadError

    try:
        return asyncio.run(_run(settings))
    except (ToolLoadError, GraphLoadError, ServerUnusable) as exc:
        raise SettingsError(str(exc)) from None


def _reset_sandbox(settings: Settings) -> None:
    """Start the demo afresh: the sandbox keeps its approvals, checkpoints and audit in the
    database file and the demo's clusters in the inventory file, both in the working folder."""
    if settings.mode != "sandbox":
        raise SettingsError(
            "--reset only starts the sandbox afresh; with SLACK_BOT_TOKEN set it would delete "
            "real approvals and their audit trail, so it is refused"
        )
    if is_postgres(settings.database_url):
        raise SettingsError("--reset deletes SQLite files only; DATABASE_URL is PostgreSQL")
    for base in (sqlite_path(settings.database_url), Path(settings.demo_inventory)):
        for path in (base, *(base.with_name(base.name + s) for s in ("-wal", "-shm"))):
            if path.is_file():
                path.unlink()
                print(f"reset: deleted {path}", file=sys.stderr)


def _parser() -> argparse.ArgumentParser:
    # --log-level is accepted before and after the command (`run --log-level DEBUG`); the
    # subcommands' copy leaves the value alone unless it is given there.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--log-level", default=argparse.SUPPRESS, help="DEBUG, INFO (default), WARNING, ERROR"
    )
    parser = argparse.ArgumentParser(
        prog="slack-approvals",
        description="A Slack bot that asks a human before an agent acts.",
        parents=[common],
    )
    parser.set_defaults(log_level="INFO")
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {version('slack-approvals')}"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser(
        "run",
        parents=[common],
        help="run the bot (the local sandbox when no Slack token is set)",
        description="Run the bot. It is configured by these environment variables "
        "(or a .env file in the working directory):",
        epilog=environment_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument(
        "--reset",
        action="store_true",
        help="sandbox only: delete the sandbox's database and demo inventory first",
    )
    trail = sub.add_parser("audit", parents=[common], help="print the audit log")
    trail.add_argument("--json", action="store_true", help="one JSON object per line")
    trail.add_argument("--since", type=_since, help="e.g. 2h, 7d, or 2026-11-01")
    trail.add_argument("--tool", help="only this tool")
    trail.add_argument("--user", help="only this actor: a Slack user id (U…) or a user name")
    return parser


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

    from bot.service import running_bot  # the agent's libraries: slow to import, so only here

    async with AsyncExitStack() as stack:
        sandbox = _sandbox(settings) if settings.mode == "sandbox" else None
        if sandbox is not None:
            settings = await stack.enter_async_context(sandbox)
        bot = await stack.enter_async_context(running_bot(settings))
        if sandbox is not None:
            sandbox.banner()  # only now: a bot that would not start shows no invitation
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
        from agent.model import make_model
        from bot.sandbox.emulator import SlackEmulator
        from bot.sandbox.web import serve_sandbox
        from bot.service import describe_agent

        self._settings = settings
        self._emulator = serve_sandbox(SlackEmulator())
        # Checked before the bot creates them: a demo that goes on from an earlier run says so.
        self._resumed = Path(settings.demo_inventory).exists()
        key = settings.openai_api_key
        self._model = describe_agent(
            settings,
            make_model(
                key.get_secret_value() if key else None,
                settings.openai_base_url,
                settings.openai_model,
            ),
        )

    async def __aenter__(self) -> Settings:
        emu = self._emulator
        try:
            await emu.start(host="127.0.0.1", port=self._settings.port)
        except OSError as exc:
            raise SettingsError(
                f"the sandbox cannot listen on 127.0.0.1:{self._settings.port} "
                f"({exc.strerror}): set PORT to a free port"
            ) from None
        # The demo tools come with the sample policy the README walks through.
        own = self._settings.approvals_graph or self._settings.langgraph_url
        demo = not own and self._settings.approvals_tools is None
        demo = demo and self._settings.approvals_policy is None
        settings = self._settings.model_copy(
            update={
                **({"approvals_policy": str(SAMPLE_POLICY)} if demo else {}),
                "slack_bot_token": SecretStr(emu.bot_token),
                "slack_app_token": SecretStr(emu.app_token),
                "slack_api_url": emu.api_url,
                # Any free port: a local demo must not clash with whatever holds 8080.
                "health_port": 0,
            }
        )
        emu.sandbox_info = {"model": self._model}
        self._settings = settings
        return settings

    def banner(self) -> None:
        emu = self._emulator
        settings = self._settings
        say = f"curl -s {emu.base_url}sandbox/say -H 'content-type: application/json' -d"
        rule = "=" * 72
        print(
            f"""
{rule}
  Sandbox: open {emu.base_url} in your browser
{rule}
No SLACK_BOT_TOKEN, so the bot talks to a local Slack emulator, and that page is its Slack:
channels, threads, buttons and modals; switch between the sample users at the top right.
Agent: {self._model}{"" if settings.openai_api_key else " (set OPENAI_API_KEY for a real one)"}
Policy: {settings.approvals_policy or "every tool gated, anyone approves"}
Sandbox state (approvals, audit, demo clusters): {self._state_files()};
{self._state_note()}

Or with curl. Ask as alice in #ops (C0OPS):
  {say} '{{"user": "U0ALICE", "channel": "C0OPS", "text": "/ask scale down cl-001 to 2"}}'
See the channel, with the approval card's ts and buttons:
  curl -s '{emu.base_url}sandbox/messages?channel=C0OPS'
Approve as bob (put the card's ts in):
  curl -s {emu.base_url}sandbox/click -H 'content-type: application/json' -d \\
    '{{"user": "U0BOB", "channel": "C0OPS", "ts": "CARD_TS", "action_id": "approval_approve"}}'
(action_id approval_deny denies.) The sample policy also sends each request to bob and
dave by DM (D0BOB, D0DAVE), to #approvals (C0APPROVALS) and to their Home tab on the page.
Ctrl-C stops.
""",
            flush=True,
        )

    def _state_note(self) -> str:
        if self._resumed:
            return (
                "it goes on from the last run (what the demo changed stays changed): "
                "`slack-approvals run --reset` starts afresh."
            )
        return "kept across restarts; `slack-approvals run --reset` starts afresh."

    def _state_files(self) -> str:
        settings = self._settings
        database = (
            settings.database_url
            if is_postgres(settings.database_url)
            else str(sqlite_path(settings.database_url).resolve())
        )
        return f"{database} and {Path(settings.demo_inventory).resolve()}"

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
    actor = await _user_id(settings, user) if user is not None else None
    db = await Database.open(settings.database_url)
    try:
        rows = audit.under_current_names(await read_audit(db, since=since, tool=tool, actor=actor))
    finally:
        await db.close()
    write = audit.as_json if as_json else audit.as_text
    sys.stdout.write("".join(write(row) + "\n" for row in rows))
    return 0


async def _user_id(settings: Settings, user: str) -> str:
    """A Slack user id as given, or the id of the user with that name (`bob`, `@bob`, or the
    display or real name): the sandbox's sample users, or the workspace's through users.list."""
    if re.fullmatch(r"[UW][A-Z0-9]{2,}", user):
        return user
    wanted = user.removeprefix("@").casefold()
    if settings.mode == "sandbox":
        from bot.sandbox.state import DEFAULT_USERS

        found = [uid for uid, name in DEFAULT_USERS.items() if name.casefold() == wanted]
    else:
        found = await _workspace_users_named(settings, wanted)
    if len(found) != 1:
        how = "no user" if not found else f"{len(found)} users ({', '.join(found)})"
        raise SettingsError(f"--user {user}: {how} by that name; give the Slack user id (U…)")
    return found[0]


async def _workspace_users_named(settings: Settings, wanted: str) -> list[str]:
    from slack_sdk.errors import SlackApiError
    from slack_sdk.web.async_client import AsyncWebClient

    assert settings.slack_bot_token is not None
    client = AsyncWebClient(
        token=settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_url
    )
    found: list[str] = []
    try:
        async for page in await client.users_list(limit=200):
            for member in page.get("members", []):
                profile = member.get("profile") or {}
                names = {member.get("name"), profile.get("display_name"), profile.get("real_name")}
                if wanted in {str(n).casefold() for n in names if n}:
                    found.append(str(member["id"]))
    except SlackApiError as exc:
        raise SettingsError(
            f"--user: cannot list the workspace's users ({exc.response.get('error')}); "
            "give the Slack user id (U…)"
        ) from None
    return found


if __name__ == "__main__":
    raise SystemExit(main())
