"""Text the bot did not write reaches Slack escaped, so it pings nobody and links nowhere;
text of any length reaches Slack cut to Slack's limits, so no message is refused.

Everything is judged on what the emulator recorded: every chat.postMessage, chat.update,
chat.postEphemeral and views.open the bot made. The emulator refuses blocks beyond Slack's
limits (`invalid_blocks`), so a call that succeeded is a message Slack would have shown.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from agent.policy import PolicySnapshot
from bot import blocks
from bot.sandbox.blockkit import MAX_BLOCKS
from bot.store import Approval
from tests.conftest import Harness
from tests.fakes.openai_server import reply_text, reply_tool_calls
from tests.security.support import ask_escaped, deny_values, open_view
from tests.support.tools import executions

HOSTILE = (
    "<!channel> <!here> <!everyone> <@U0DAVE> <!subteam^S0SREONCALL> <#C0GENERAL> "
    "<https://evil.example|click here> @channel @here &amp; &lt;"
)
# Slack's control sequences: mentions, broadcasts, channel and URL links.
CONTROL = re.compile(r"<[^<>]*>")
# The bot's own times, which each reader's client formats; they notify nobody.
DATE = re.compile(r"<!date\^\d+\^\{date_short_pretty\} at \{time\}\|[0-9: -]+UTC>")
WRITES = ("chat.postMessage", "chat.update", "chat.postEphemeral", "views.open")


def mrkdwn_texts(node: Any) -> Iterator[str]:
    """Every text Slack parses as mrkdwn in a block tree (plain_text is shown literally)."""
    if isinstance(node, list):
        for item in node:
            yield from mrkdwn_texts(item)
    elif isinstance(node, dict):
        if node.get("type") == "mrkdwn" and isinstance(node.get("text"), str):
            yield node["text"]
        for value in node.values():
            yield from mrkdwn_texts(value)


def written(harness: Harness) -> list[tuple[str, str]]:
    """(method, text) for every text the bot sent that Slack would parse."""
    found = []
    for call in harness.slack.calls:
        if call.method not in WRITES:
            continue
        if isinstance(call.params.get("text"), str):
            found.append((call.method, call.params["text"]))
        for text in mrkdwn_texts([call.params.get("blocks"), call.params.get("view")]):
            found.append((call.method, text))
    return found


async def test_hostile_text_pings_nobody(harness: Harness) -> None:
    harness.policy_file.write_text(
        "tools:\n  list_clusters: {approval: never}\n"
        "  scale_down: {approvers: [U0BOB], decisions: [approve, reject, edit], confirm: true}\n"
        "  delete_cluster: {approvers: [U0BOB]}\n"
    )
    harness.model.script(
        reply_tool_calls(
            ("scale_down", {"cluster_id": HOSTILE, "replicas": 2, HOSTILE: HOSTILE}),
            ("delete_cluster", {"cluster_id": HOSTILE}),
            content=f"On it. {HOSTILE}",
        ),
        reply_text(f"Done. {HOSTILE}"),
    )
    async with harness.bot():
        thread = await ask_escaped(harness, f"scale down {HOSTILE}")
        cards = await harness.wait_cards("C0OPS", thread, count=2)
        by_tool = {("scale_down" if "scale_down" in c.text else "delete_cluster"): c for c in cards}
        # A refusal, an edit and a denial, each carrying hostile text of its own.
        await harness.slack.click("U0CAROL", "C0OPS", by_tool["scale_down"].ts, "approval_approve")
        view = await open_view(harness, "U0BOB", by_tool["scale_down"].ts, "approval_edit")
        text = {"type": "plain_text_input"}
        await harness.slack.submit_view(
            "U0BOB",
            view.id,
            {
                "arg:cluster_id": {"value": {**text, "value": f"cl-9 {HOSTILE}"}},
                "arg:replicas": {"value": {**text, "value": "1"}},
            },
        )
        await harness.idle()
        deny = await open_view(harness, "U0BOB", by_tool["delete_cluster"].ts, "approval_deny")
        await harness.slack.submit_view("U0BOB", deny.id, deny_values(f"no: {HOSTILE}"))
        await harness.wait_text("C0OPS", thread, "Done.")
        await harness.idle()

    assert executions("scale_down") == [{"cluster_id": f"cl-9 {HOSTILE}", "replicas": 1}]
    texts = written(harness)
    # The bot's own mentions are the requester, the approver and the decider; nothing else.
    controls = {
        token for _, text in texts for token in CONTROL.findall(text) if not DATE.fullmatch(token)
    }
    assert controls <= {"<@U0ALICE>", "<@U0BOB>"}, controls
    escaped = blocks.escape(HOSTILE)
    shown = json.dumps([t for _, t in texts])
    # The hostile text was shown, escaped, everywhere it went: request, card (arguments and
    # confirm dialog), model replies, edit, deny reason, tool result.
    assert shown.count(json.dumps(escaped)[1:-1]) >= 8
    assert not [c.params for c in harness.slack.calls if c.params.get("link_names")]
    assert not [c.params for c in harness.slack.calls if c.params.get("parse") == "full"]


def ok_writes(harness: Harness) -> list[str]:
    failed = [
        f"{c.method}: {c.response.get('error')} {c.response.get('response_metadata')}"
        for c in harness.slack.calls
        if c.method in WRITES and not c.response.get("ok")
    ]
    assert failed == []
    return [c.method for c in harness.slack.calls if c.method in WRITES]


async def test_long_texts_and_many_arguments_stay_within_slacks_limits(
    harness: Harness,
) -> None:
    harness.policy_file.write_text(
        "tools:\n  list_clusters: {approval: never}\n"
        "  scale_down: {decisions: [approve, reject, edit], confirm: true}\n"
    )
    huge = "<&>" * 3400  # 10,200 characters, 40,800 once escaped
    args: dict[str, Any] = {"cluster_id": huge, "replicas": 2}
    # 200 arguments in all; the others' values are shorter only so that the conversation
    # stays under the fake model server's 1 MiB request limit.
    args.update({f"extra_{i:03}_{'k' * 200}": huge[:3000] for i in range(198)})
    harness.model.script(
        reply_tool_calls(("scale_down", args), content=huge * 5),
        reply_text(huge * 5),
    )
    async with harness.bot():
        thread = await ask_escaped(harness, f"scale down {huge}")
        [card] = await harness.wait_cards("C0OPS", thread)
        assert len(card.blocks) <= MAX_BLOCKS
        assert "…and 181 more" in json.dumps(card.blocks, ensure_ascii=False)
        await open_view(harness, "U0BOB", card.ts, "approval_edit")
        await harness.slack.click("U0BOB", "C0OPS", card.ts, "approval_approve")
        await harness.slack.wait_for(lambda: len(harness.model.requests) == 2)
        await harness.idle()
        methods = ok_writes(harness)
        posted = [m for m in harness.slack.thread("C0OPS", thread) if m.bot_id]
    assert executions("scale_down") == [{"cluster_id": huge, "replicas": 2}]
    # Root, the model's text, the card, the tool's result and the final answer were posted,
    # the card was redrawn as decided, and the edit modal opened.
    assert len(posted) == 5
    assert methods.count("chat.update") == 1 and methods.count("views.open") == 1


def approval(n: int, *, tool: str = "scale_down", **fields: Any) -> Approval:
    values: dict[str, Any] = {
        "id": f"ap_{n:016x}",
        "interrupt_id": f"i{n}",
        "conversation": "slack:T0SANDBOX:C0OPS:1.000001",
        "team_id": "T0SANDBOX",
        "channel": "C0OPS",
        "thread_ts": "1.000001",
        "message_ts": None,
        "tool_call_id": f"call_{n}",
        "tool": tool,
        "args": {"cluster_id": "cl-001"},
        "description": "Scale a cluster down.",
        "requester": "U0ALICE",
        "status": "pending",
        "policy": PolicySnapshot(decisions=("approve", "reject", "edit"), confirm=True),
        "created_at": time.time(),
        "expires_at": time.time() + 1800,
        "decided_by": None,
        "decided_at": None,
        "reason": None,
        "decision": None,
        "resumed_at": None,
        "card_status": None,
        "decided_event": None,
        "decided_detail": None,
    }
    values.update(fields)
    return Approval(**values)


async def test_every_builder_survives_extreme_input(harness: Harness) -> None:
    """The builders on input no model or person is likely to send, posted through the
    emulator's Web API: 150 calls in one batch, a 64-character tool name, a 5,000-character
    description, hundreds of approvers, a 10,000-character reason and edit."""
    client = AsyncWebClient(token=harness.slack.bot_token, base_url=harness.slack.api_url)
    long_name = "t" * 64
    extreme = approval(
        1,
        tool=long_name,
        description="d<!channel>" * 500,
        args={f"k{i}": "v" * 10_000 for i in range(200)},
        policy=PolicySnapshot(
            decisions=("approve", "reject", "edit"),
            approvers=(*(f"U{i:08}" for i in range(300)), "S0SREONCALL"),
            allow_self_approval=False,
            confirm=True,
        ),
    )
    decided = approval(
        2,
        tool=long_name,
        args=extreme.args,
        status="rejected",
        decided_by="U0BOB",
        decided_at=time.time(),
        reason="r<!here>" * 1250,
        decision={
            "type": "edit",
            "edited_action": {"name": long_name, "args": {"k0": "w" * 10_000}},
        },
    )
    many = [approval(i) for i in range(150)]
    for card in (
        blocks.approval_card(extreme, votes=[f"U{i:08}" for i in range(300)]),
        blocks.decided_card(decided),
        blocks.decided_card(
            approval(3, status="approved", decided_by="U0BOB", decision=decided.decision)
        ),
        blocks.batch_card(many),
        blocks.batch_card(many[:50]),
        blocks.notice("n" * 50_000),
    ):
        response = await client.chat_postMessage(channel="C0OPS", text="fallback", blocks=card)
        assert response["ok"]
    for view in (blocks.deny_modal(extreme),):
        # views.open needs a live trigger, as Slack's does.
        trigger = harness.slack.workspace.new_trigger("U0BOB")
        assert (await client.views_open(trigger_id=trigger, view=view))["ok"]
    assert len(blocks.batch_card(many[:50])[1]["elements"][0]["value"]) <= 2000
    assert "actions" not in json.dumps(blocks.batch_card(many))
