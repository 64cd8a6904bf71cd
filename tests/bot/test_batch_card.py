"""The batch card honours each call's policy (Deny offered only where every call offers it, a
confirm where any asks for one), is redrawn as its calls are decided, and tells the thread."""

from __future__ import annotations

import json

from tests.conftest import Harness
from tests.fakes.openai_server import reply_text, reply_tool_calls
from tests.support.tools import executions

CALLS = (
    ("scale_down", {"cluster_id": "cl-001", "replicas": 1}),
    ("delete_cluster", {"cluster_id": "cl-002"}),
)


async def test_batch_card_follows_each_calls_policy(harness: Harness) -> None:
    harness.policy_file.write_text(
        "tools:\n  scale_down: {approval: required}\n"
        "  delete_cluster: {approval: required, decisions: [approve], confirm: true}\n"
    )
    harness.model.script(reply_tool_calls(*CALLS), reply_text("Both ran."))
    async with harness.bot():
        thread = await harness.ask("scale down cl-001 to 1 and delete cluster cl-002")
        await harness.wait_cards("C0OPS", thread, count=2)
        batch = await harness.wait_button("C0OPS", thread, "approval_approve_all")
        # delete_cluster offers no Deny: neither does the batch.
        assert [b.action_id for b in batch.buttons()] == ["approval_approve_all"]
        [approve_all] = next(b for b in batch.blocks if b["type"] == "actions")["elements"]
        confirm = approve_all["confirm"]["text"]["text"].splitlines()
        assert confirm[0] == "Approve 2 calls:"
        assert "Run `delete_cluster` on cluster_id `cl-002`?" in confirm

        await harness.slack.click("U0BOB", "C0OPS", batch.ts, "approval_approve_all")
        await harness.wait_text("C0OPS", thread, "Both ran.")
        await harness.idle()
        redrawn = harness.slack.message("C0OPS", batch.ts)
        assert redrawn.buttons() == [] and "All 2 calls decided" in redrawn.text
        assert len(executions("delete_cluster")) == 1


async def test_deny_all_is_refused_for_a_call_without_deny(harness: Harness) -> None:
    harness.policy_file.write_text(
        "tools:\n  scale_down: {approval: required}\n"
        "  delete_cluster: {approval: required, decisions: [approve]}\n"
    )
    harness.model.script(reply_tool_calls(*CALLS), reply_text("unused"))
    # "Deny all" is not on the card, but a stale card or a forged click may still send it.
    async with harness.bot() as bot:
        thread = await harness.ask("scale down cl-001 to 1 and delete cluster cl-002")
        await harness.wait_cards("C0OPS", thread, count=2)
        batch = await harness.wait_button("C0OPS", thread, "approval_approve_all")
        ids = batch.buttons()[0].value
        await bot.decisions.decide_all(
            approval_ids=ids.split(","),
            choice="reject",
            user="U0BOB",
            channel="C0OPS",
            thread_ts=thread,
        )
        await harness.idle()
        [told] = [e for e in harness.slack.ephemerals if e.user == "U0BOB"]
        assert "can't decide all" in told.text and told.thread_ts == thread
        assert all(
            a.status == "pending"
            for a in await bot.store.for_conversation(f"slack:{bot.team_id}:C0OPS:{thread}")
        )


async def test_a_batch_decided_card_by_card_loses_its_buttons(harness: Harness) -> None:
    harness.model.script(reply_tool_calls(*CALLS), reply_text("Done."))
    async with harness.bot():
        thread = await harness.ask("scale down cl-001 to 1 and delete cluster cl-002")
        first, second = await harness.wait_cards("C0OPS", thread, count=2)
        batch = await harness.wait_button("C0OPS", thread, "approval_approve_all")
        await harness.slack.click("U0BOB", "C0OPS", first.ts, "approval_approve")
        await harness.slack.wait_for(
            lambda: "1 call wait" in json.dumps(harness.slack.message("C0OPS", batch.ts).blocks)
        )
        [approve_all, _] = harness.slack.message("C0OPS", batch.ts).buttons()
        assert approve_all.value == second.buttons()[0].value  # only the call still pending
        await harness.deny("U0BOB", "C0OPS", second.ts, "no")
        await harness.wait_text("C0OPS", thread, "Done.")
        await harness.idle()
        assert harness.slack.message("C0OPS", batch.ts).buttons() == []


async def test_nothing_left_is_said_in_the_thread(harness: Harness) -> None:
    harness.model.script(reply_tool_calls(*CALLS), reply_text("Done."))
    async with harness.bot() as bot:
        thread = await harness.ask("scale down cl-001 to 1 and delete cluster cl-002")
        await harness.wait_cards("C0OPS", thread, count=2)
        batch = await harness.wait_button("C0OPS", thread, "approval_approve_all")
        ids = batch.buttons()[0].value.split(",")
        await harness.slack.click("U0BOB", "C0OPS", batch.ts, "approval_approve_all")
        await harness.wait_text("C0OPS", thread, "Done.")
        await harness.idle()
        await bot.decisions.decide_all(
            approval_ids=ids, choice="approve", user="U0DAVE", channel="C0OPS", thread_ts=thread
        )
        [told] = [e for e in harness.slack.ephemerals if e.user == "U0DAVE"]
        assert told.text == "Nothing left to decide here." and told.thread_ts == thread
