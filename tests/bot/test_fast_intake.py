"""The intake's fast path (bot.intake, bot.listeners) takes only what Bolt would hand to the
Approve or /ask listener of the bot's own workspace, well formed; everything else is left to
Bolt's dispatch, which checks and refuses it as before (tests/security). What it takes runs
as through Bolt: tests/bot/test_flow.py (Socket Mode), test_http_mode.py and the kill -9
matrix (test_crash.py) go through it."""

from __future__ import annotations

import copy
from typing import Any

from bot import blocks
from tests.conftest import Harness


def click(team: str) -> dict[str, Any]:
    return {
        "type": "block_actions",
        "team": {"id": team, "domain": "sandbox"},
        "user": {"id": "U0BOB", "team_id": team},
        "enterprise": None,
        "is_enterprise_install": False,
        "container": {"type": "message", "message_ts": "1700000000.000100", "channel_id": "C0OPS"},
        "channel": {"id": "C0OPS"},
        "trigger_id": "1.2.abc",
        "actions": [{"action_id": blocks.APPROVE_ACTION, "type": "button", "value": "ap_1"}],
    }


def command(team: str, text: str = "list clusters") -> dict[str, Any]:
    return {
        "team_id": team,
        "channel_id": "C0OPS",
        "user_id": "U0ALICE",
        "command": "/ask",
        "text": text,
        "is_enterprise_install": "false",
        "trigger_id": "1.2.abc",
        "response_url": "http://127.0.0.1:9/response",
    }


def changed(body: dict[str, Any], *path: str, to: Any) -> dict[str, Any]:
    body = copy.deepcopy(body)
    *inner, last = path
    target = body
    for key in inner:
        target = target[key]
    target[last] = to
    return body


async def test_the_fast_path_takes_only_the_bots_own_well_formed_approve_and_ask(
    harness: Harness,
) -> None:
    async with harness.bot() as bot:
        team, take = bot.team_id, bot.fast_path
        ours = click(team)
        assert (handoff := take(ours)) is not None and handoff.reply == {}
        assert (handoff := take(command(team))) is not None and handoff.reply == {}
        helped = take(command(team, "help"))
        assert helped is not None and "blocks" in helped.reply

        for body in (
            click("T0ELSEWHERE"),
            changed(ours, "enterprise", to={"id": "E0ORG"}),
            changed(ours, "is_enterprise_install", to=True),
            changed(ours, "actions", 0, "action_id", to=blocks.DENY_ACTION),
            changed(ours, "actions", 0, "action_id", to="something_else"),
            changed(ours, "actions", 0, "type", to="static_select"),
            changed(ours, "actions", to=[ours["actions"][0], ours["actions"][0]]),
            changed(ours, "type", to="interactive_message"),
            changed(ours, "user", "id", to="not an id"),
            changed(ours, "container", "message_ts", to="yesterday"),
            changed(ours, "actions", 0, "value", to=""),
            command("T0ELSEWHERE"),
            {**command(team), "enterprise_id": "E0ORG"},
            {**command(team), "ssl_check": "1"},
            {**command(team), "command": "/other"},
            {**command(team), "user_id": "<script>"},
            {**command(team), "trigger_id": ""},
        ):
            assert take(body) is None, body
