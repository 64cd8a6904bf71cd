"""Tokens and secrets never reach a log line, an error message or Slack.

The bot runs with distinctive secret values and every logger at DEBUG (slack-sdk, Bolt,
aiohttp, openai and httpx log requests there) through a whole flow and its error paths,
and nothing it wrote anywhere may contain one of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import traceback
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from bot.sandbox.emulator import SlackEmulator
from bot.settings import SettingsError
from tests.conftest import Harness
from tests.fakes.openai_server import FakeOpenAI, reply_text, reply_tool_calls
from tests.security.support import SECRET, events_url, http_settings
from tests.support.process import stopped_by_sigterm

BOT_TOKEN = "xoxb-4242-LEAKCANARYBOTTOKEN"
APP_TOKEN = "xapp-1-LEAKCANARYAPPTOKEN"
OPENAI_KEY = "sk-LEAKCANARYOPENAIKEY"
# The signing secret of tests.security.support, which HTTP mode signs with.
SECRETS = (BOT_TOKEN, APP_TOKEN, OPENAI_KEY, SECRET)
ROOT = str(Path(__file__).resolve().parents[2])


@pytest.fixture
async def canary_slack() -> AsyncIterator[SlackEmulator]:
    async with SlackEmulator(bot_token=BOT_TOKEN, app_token=APP_TOKEN) as emulator:
        yield emulator


@pytest.fixture
def canary(canary_slack: SlackEmulator, model: FakeOpenAI, tmp_path: Path) -> Harness:
    return Harness(canary_slack, model, tmp_path)


def leaks(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


def logged(caplog: pytest.LogCaptureFixture) -> str:
    parts = [caplog.text]
    for record in caplog.records:
        if record.exc_info:
            parts.append("".join(traceback.format_exception(*record.exc_info)))
    return "\n".join(parts)


def sent_to_slack(slack: SlackEmulator) -> str:
    return json.dumps(
        {
            "calls": [(c.method, c.params, c.response) for c in slack.calls],
            "messages": [
                (m.text, m.blocks) for ch in ("C0OPS", "C0GENERAL") for m in slack.messages(ch)
            ],
            "ephemerals": [(e.text, e.blocks) for e in slack.ephemerals],
            "views": [v.view for v in slack.views],
        },
        default=str,
    )


async def test_a_whole_flow_and_its_errors_leak_nothing(
    canary: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    canary.model.script(
        reply_tool_calls(("scale_down", {"cluster_id": "cl-001", "replicas": 2})),
        reply_text("cl-001 runs 2 replicas."),
    )
    async with canary.bot(openai_api_key=OPENAI_KEY) as bot:
        thread = await canary.ask("scale down cl-001 to 2")
        [card] = await canary.wait_cards("C0OPS", thread)
        await canary.slack.click("U0BOB", "C0OPS", card.ts, "approval_approve")
        await canary.wait_text("C0OPS", thread, "cl-001 runs 2 replicas.")
        # The model fails (after the client's own retries): the error is told in the thread.
        canary.model.fail_next(status=500, times=3)
        await canary.slack.post_user_message(
            "U0ALICE", "C0OPS", f"<@{bot.bot_user_id}> and now?", thread_ts=thread
        )
        await canary.wait_text("C0OPS", thread, "Something went wrong")
        await canary.idle()
        described = repr(bot)

    # HTTP mode: a signed flow, and requests with a bad signature, which Bolt logs.
    canary.model.script(reply_text("Hello over HTTP."))
    async with canary.bot(openai_api_key=OPENAI_KEY, **http_settings()) as bot:
        canary.slack.use_http(events_url(bot), SECRET)
        thread = await canary.ask("say hello")
        await canary.wait_text("C0OPS", thread, "Hello over HTTP.")
        canary.slack.use_http(events_url(bot), "not-the-signing-secret")
        refused = await canary.slack.slash_command("U0ALICE", "C0OPS", "/ask", "hi")
        assert refused.ack is not None and refused.ack.status == 401
        await canary.idle()

    assert "LEAKCANARY" not in described
    assert leaks(logged(caplog)) == []
    assert leaks(sent_to_slack(canary.slack)) == []
    assert leaks(json.dumps(canary.model.requests)) == []


async def test_a_rejected_bot_token_is_named_not_shown(
    canary: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "xoxb-4242-LEAKCANARYWRONGBOT"
    with pytest.raises(SettingsError) as refused:
        async with canary.bot(slack_bot_token=wrong, openai_api_key=OPENAI_KEY):
            pass
    assert "SLACK_BOT_TOKEN" in str(refused.value) and "invalid_auth" in str(refused.value)
    assert "LEAKCANARY" not in "".join(traceback.format_exception(refused.value))
    assert "LEAKCANARY" not in logged(caplog)


async def test_a_rejected_app_token_is_retried_without_showing_it(
    canary: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "xapp-1-LEAKCANARYWRONGAPP"

    async def start() -> None:
        async with canary.bot(slack_app_token=wrong, openai_api_key=OPENAI_KEY):
            pass

    starting = asyncio.create_task(start())
    await canary.slack.wait_for(
        lambda: [c for c in canary.slack.calls if c.method == "apps.connections.open"]
    )
    starting.cancel()
    # Cancelled mid-retry today; refused as SettingsError once startup checks the token.
    with contextlib.suppress(asyncio.CancelledError, SettingsError):
        await starting
    assert "LEAKCANARY" not in logged(caplog)


async def test_a_rejected_app_token_stops_startup_with_a_clear_error(canary: Harness) -> None:
    with pytest.raises(SettingsError, match="SLACK_APP_TOKEN"):
        async with canary.bot(slack_app_token="xapp-1-LEAKCANARYWRONGAPP"):
            pass


async def test_settings_never_show_their_secrets(canary: Harness) -> None:
    settings = canary.settings(openai_api_key=OPENAI_KEY, **http_settings())
    for shown in (repr(settings), str(settings), settings.model_dump_json()):
        assert "LEAKCANARY" not in shown
    assert sorted(settings.secret_values()) == sorted([BOT_TOKEN, OPENAI_KEY, SECRET])


async def echoing_model() -> tuple[web.AppRunner, str]:
    """A careless OpenAI-compatible upstream: its 401 quotes the credentials it got."""

    async def reject(request: web.Request) -> web.Response:
        message = f"Incorrect API key provided: {request.headers.get('Authorization')}"
        return web.json_response(
            {"error": {"message": message, "type": "invalid_request_error", "code": None}},
            status=401,
        )

    app = web.Application()
    app.router.add_post("/v1/chat/completions", reject)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}/v1"


async def run_cli(env: dict[str, str], cwd: Path) -> asyncio.subprocess.Process:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "OPENAI_"))}
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "--log-level",
        "DEBUG",
        "run",
        cwd=cwd,
        env={**clean, "PYTHONPATH": ROOT, "HEALTH_PORT": "0", **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


async def test_the_cli_redacts_a_secret_an_upstream_echoes(
    canary_slack: SlackEmulator, tmp_path: Path
) -> None:
    """`slack-approvals run` at DEBUG, against an upstream that quotes the API key in its
    error: the traceback and the error line reach the log with the key blanked."""
    upstream, base_url = await echoing_model()
    env = {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_APP_TOKEN": APP_TOKEN,
        "SLACK_API_URL": canary_slack.api_url,
        "OPENAI_API_KEY": OPENAI_KEY,
        "OPENAI_BASE_URL": base_url,
        "OPENAI_MODEL": "fake-model",
    }
    proc = await run_cli(env, tmp_path)
    try:
        async with stopped_by_sigterm(proc) as output:
            await canary_slack.wait_for(lambda: canary_slack.socket_mode_connections, timeout=60)
            await canary_slack.slash_command("U0ALICE", "C0OPS", "/ask", "list clusters")
            await canary_slack.wait_for(
                lambda: any(
                    "Something went wrong" in m.text for m in canary_slack.messages("C0OPS")
                ),
                timeout=30,
            )
    finally:
        await upstream.cleanup()
    log = "".join(output)
    assert "Incorrect API key provided: Bearer [redacted]" in log
    assert "run failed" in log and "AuthenticationError" in log
    assert leaks(log) == []


async def test_an_echoed_secret_is_not_posted_to_slack(canary: Harness) -> None:
    upstream, base_url = await echoing_model()
    try:
        async with canary.bot(openai_api_key=OPENAI_KEY, openai_base_url=base_url):
            thread = await canary.ask("list clusters")
            await canary.wait_text("C0OPS", thread, "Something went wrong")
            await canary.idle()
    finally:
        await upstream.cleanup()
    assert leaks(sent_to_slack(canary.slack)) == []


async def test_the_cli_names_a_rejected_token_without_showing_it(
    canary_slack: SlackEmulator, tmp_path: Path
) -> None:
    """tests/bot/test_cli.py covers a missing mode token; here Slack rejects the token."""
    wrong = "xoxb-4242-LEAKCANARYWRONGBOT"
    proc = await run_cli(
        {
            "SLACK_BOT_TOKEN": wrong,
            "SLACK_APP_TOKEN": APP_TOKEN,
            "SLACK_API_URL": canary_slack.api_url,
        },
        tmp_path,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    text = out.decode()
    assert proc.returncode == 2
    assert "Slack rejected SLACK_BOT_TOKEN" in text and "invalid_auth" in text
    assert "LEAKCANARY" not in text
