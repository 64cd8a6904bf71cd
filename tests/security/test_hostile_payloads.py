"""Malformed and random payloads through the real app, over Socket Mode: every listener acks,
raises nothing, changes nothing and says in the log what it ignored or refused.

Each listener gets one bot with two pending approvals (with their batch card and modals),
then hypothesis feeds it payloads of that listener's kind: the genuine payload with fields
dropped or replaced by random JSON or by strings chosen to confuse (real approval ids,
mentions, other people's ids, huge or empty text), or random objects that keep only what
Bolt routes on. Nobody in the generated payloads may decide (the policy names only U0BOB,
and no payload is ever Bob's), so every outcome must leave the approvals untouched, run no
tool, ask the model nothing and post or update no message.
"""

from __future__ import annotations

import logging
import traceback
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from slack_bolt.request.async_request import AsyncBoltRequest

import agent
import bot
from bot.sandbox import payloads
from bot.service import RunningBot
from tests.conftest import Harness
from tests.security.hostile import Template, hostile
from tests.security.support import deny_values, edit_values, open_view
from tests.support.tools import EXECUTIONS

POLICY = """\
tools:
  list_clusters: {approval: never}
  scale_down: {approvers: [U0BOB], decisions: [approve, reject, edit]}
  delete_cluster: {approvers: [U0BOB]}
"""
OUR_CODE = (str(Path(bot.__file__).parent), str(Path(agent.__file__).parent))


@dataclass
class Arena:
    bot: RunningBot
    templates: dict[str, Template]
    approval_ids: list[str]


EVENT = (("type",), ("event", "type"))
ACTION = (("type",), ("actions", 0, "action_id"))
# Bolt reads `view.type` for every view payload (to rule out workflow steps) and raises
# without it, in its own code, before any listener.
VIEW = (("type",), ("view", "callback_id"), ("view", "type"))
EVENT_FIELDS = (("event", "channel"), ("event", "user"), ("event", "ts"))
ASK_FIELDS = (("team_id",), ("channel_id",), ("user_id",), ("trigger_id",))


@pytest.fixture
async def arena(harness: Harness) -> AsyncIterator[Arena]:
    harness.policy_file.write_text(POLICY)
    async with harness.bot() as running:
        slack, ws = harness.slack, harness.slack.workspace
        thread, cards = await harness.ask_two_calls()
        batch = await harness.wait_button("C0OPS", thread, "approval_approve_all")
        scale_card = next(c for c in cards if "scale_down" in c.text)
        deny_view = await open_view(harness, "U0CAROL", scale_card.ts, "approval_deny")
        edit_view = await open_view(harness, "U0CAROL", scale_card.ts, "approval_edit")
        await harness.idle()

        def click(message_ts: str, action_id: str) -> Template:
            message = slack.message("C0OPS", message_ts)
            button = next(b for b in message.buttons() if b.action_id == action_id)
            payload = payloads.block_actions(
                ws,
                user="U0CAROL",
                message=message,
                button=button,
                response_url=slack.base_url + "response/unused",
                trigger_id=ws.new_trigger("U0CAROL"),
            )
            return Template("interactive", payload, ACTION)

        def event(channel: str, text: str) -> Template:
            message = ws.add_message(channel, user="U0CAROL", text=text, blocks=[], thread_ts=None)
            return Template(
                "events_api", payloads.message_events(ws, message)[0], EVENT, EVENT_FIELDS
            )

        def submission(view: Any, values: dict[str, Any]) -> Template:
            payload = payloads.view_submission(
                ws, user="U0CAROL", view=view, values=values, trigger_id=ws.new_trigger("U0CAROL")
            )
            return Template("interactive", payload, VIEW)

        def closed(view: Any) -> Template:
            return Template(
                "interactive", payloads.view_closed(ws, user="U0CAROL", view=view), VIEW
            )

        ask = payloads.slash_command(
            ws,
            user="U0CAROL",
            channel="C0OPS",
            command="/ask",
            text="list clusters",
            response_url=slack.base_url + "response/unused",
            trigger_id=ws.new_trigger("U0CAROL"),
        )
        templates = {
            "/ask": Template("slash_commands", ask, (("command",),), ASK_FIELDS),
            "app_mention": event("C0OPS", f"<@{running.bot_user_id}> list clusters"),
            "message.im": event(slack.dm_channel("U0CAROL"), "list clusters"),
            "approval_approve": click(scale_card.ts, "approval_approve"),
            "approval_deny": click(scale_card.ts, "approval_deny"),
            "approval_edit": click(scale_card.ts, "approval_edit"),
            "approval_approve_all": click(batch.ts, "approval_approve_all"),
            "approval_deny_all": click(batch.ts, "approval_deny_all"),
            "deny_reason": submission(deny_view, deny_values("no")),
            "edit_args": submission(edit_view, edit_values("cl-001", "0")),
            "view_closed deny_reason": closed(deny_view),
            "view_closed edit_args": closed(edit_view),
        }
        ids = [r["id"] for r in await running.store.db.fetchall("SELECT id FROM approvals")]
        yield Arena(running, templates, ids)


async def state(arena: Arena, harness: Harness) -> tuple[Any, ...]:
    db = arena.bot.store.db
    visible = [c for c in harness.slack.calls if c.method in ("chat.postMessage", "chat.update")]
    return (
        await db.fetchall("SELECT * FROM approvals ORDER BY id"),
        await db.fetchall("SELECT * FROM votes ORDER BY approval_id, user_id"),
        await db.fetchall("SELECT * FROM executions ORDER BY call_key"),
        list(EXECUTIONS),
        len(harness.model.requests),
        len(visible),
    )


def bolt_can_read(payload: dict[str, Any]) -> bool:
    """Whether slack-bolt can make a request of it at all. It reads ids from fixed places
    (`channel`, `user`, `team`, `authorizations`, ...) and raises on other types there,
    before any listener runs; over Socket Mode such an envelope is logged by slack-sdk and
    never acked. That is the library's behaviour, not this app's, so those are skipped."""
    try:
        AsyncBoltRequest(mode="socket_mode", body=payload)
    except Exception:
        return False
    return True


def from_our_code(record: logging.LogRecord) -> bool:
    if not record.exc_info:
        return False
    text = "".join(traceback.format_exception(*record.exc_info))
    return any(root in text for root in OUR_CODE)


async def check(
    arena: Arena,
    harness: Harness,
    caplog: pytest.LogCaptureFixture,
    template: Template,
    payload: dict[str, Any],
) -> None:
    before = await state(arena, harness)
    seen = len(caplog.records)
    delivery = await harness.slack.deliver(template.kind, payload)
    assert await arena.bot.runner.wait_idle(20)
    assert delivery.ack is not None, delivery.error
    new = caplog.records[seen:]
    assert not [r for r in new if from_our_code(r)]
    failures = ("unhandled error in a listener", "background work failed")
    assert not [r for r in new if r.getMessage().startswith(failures)]
    assert await state(arena, harness) == before
    # Something says what became of it: our "ignoring" or "refused", or a warning from Bolt.
    assert [r for r in new if r.levelno >= logging.WARNING or r.name.startswith("bot.")]


@pytest.mark.parametrize(
    "listener",
    [
        "/ask",
        "app_mention",
        "message.im",
        "approval_approve",
        "approval_deny",
        "approval_edit",
        "approval_approve_all",
        "approval_deny_all",
        "deny_reason",
        "edit_args",
        "view_closed deny_reason",
        "view_closed edit_args",
    ],
)
@settings(
    max_examples=50,
    deadline=None,
    derandomize=True,  # the same examples on every run, so CI stays reproducible
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_a_hostile_payload_changes_nothing(
    arena: Arena,
    harness: Harness,
    caplog: pytest.LogCaptureFixture,
    listener: str,
    data: st.DataObject,
) -> None:
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="bot")
    template = arena.templates[listener]
    payload = data.draw(hostile(template, arena.approval_ids), label="payload")
    assume(bolt_can_read(payload))
    if payload.get("trigger_id") == template.payload.get("trigger_id"):
        # A trigger Slack never issued, and a new one each time: a trigger seen before is
        # refused as a replay, which would hide what the rest of the payload does.
        payload["trigger_id"] = f"forged.{uuid.uuid4().hex}"
    await check(arena, harness, caplog, template, payload)
