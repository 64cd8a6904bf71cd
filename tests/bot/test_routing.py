"""Requests reach the people who may decide them: copies of the card in their DMs and in an
approvals channel, reminders, escalation and the Home tab, through the real bot."""

from __future__ import annotations

import asyncio
import json
import logging
import re

import pytest

from agent.policy import PolicyError
from bot.reminders import Reminders
from bot.sandbox import payloads
from bot.sandbox.emulator import Message
from bot.sandbox.records import Button, find_buttons
from bot.service import RunningBot
from tests.conftest import Harness
from tests.fakes.openai_server import reply_text, reply_tool_calls
from tests.support.clock import ManualClock
from tests.support.tools import executions

ON_CALL = """\
tools:
  list_clusters: {approval: never}
  scale_down:
    approvers: [S0SREONCALL]
"""
ARGS = {"cluster_id": "cl-001", "replicas": 2}


def use_policy(harness: Harness, extra: str = "") -> None:
    harness.policy_file.write_text(ON_CALL + extra)


def script(harness: Harness) -> None:
    harness.model.script(reply_tool_calls(("scale_down", ARGS)), reply_text("All done here."))


async def copy_in(harness: Harness, channel: str) -> Message:
    """The card's copy posted in `channel` (a DM or an approvals channel)."""
    return await harness.slack.wait_for(
        lambda: next(
            (
                m
                for m in harness.slack.messages(channel)
                if m.bot_id and m.thread_ts is None and m.buttons()
            ),
            None,
        )
    )


async def said_in(harness: Harness, channel: str, needle: str) -> Message:
    """A message of the bot's in a DM's main view (a DM's answers are not threaded)."""
    return await harness.slack.wait_for(
        lambda: next((m for m in harness.slack.messages(channel) if needle in m.text), None)
    )


def shown(harness: Harness, channel: str, ts: str) -> str:
    return json.dumps(harness.slack.message(channel, ts).blocks, ensure_ascii=False)


async def events(bot: RunningBot, name: str) -> list[dict[str, object]]:
    return [r for r in await bot.store.audit_log() if r.event == name]


async def test_a_decision_on_the_dm_copy_updates_the_thread_and_the_channel_copy(
    harness: Harness,
) -> None:
    use_policy(harness, "    notify: [approvers, C0APPROVALS]\n")
    async with harness.bot():
        script(harness)
        thread = await harness.ask("scale down cl-001 to 2")
        [card] = await harness.wait_cards("C0OPS", thread)
        bob, dave = await copy_in(harness, "D0BOB"), await copy_in(harness, "D0DAVE")
        channel = await copy_in(harness, "C0APPROVALS")
        notice = await harness.wait_text("C0OPS", thread, "Asked")
        assert "<!subteam^S0SREONCALL> by DM and in <#C0APPROVALS>" in notice.text
        # Every copy links back to the conversation, with working buttons.
        assert "Open the conversation" in shown(harness, "D0BOB", bob.ts)
        assert f"archives/C0OPS/p{card.ts.replace('.', '')}" in shown(harness, "D0BOB", bob.ts)
        assert [b.action_id for b in channel.buttons()] == ["approval_approve", "approval_deny"]
        assert harness.slack.messages("D0ALICE") == []  # the requester is not an approver

        await harness.slack.click("U0BOB", "D0BOB", bob.ts, "approval_approve")
        await harness.wait_text("C0OPS", thread, "All done here.")
        await harness.idle()
        assert executions("scale_down") == [ARGS]
        for where, ts in (("C0OPS", card.ts), ("C0APPROVALS", channel.ts), ("D0DAVE", dave.ts)):
            assert "Approved by <@U0BOB>" in shown(harness, where, ts)
            assert harness.slack.message(where, ts).buttons() == []


async def test_two_approvers_clicking_different_copies_at_once_run_it_once(
    harness: Harness,
) -> None:
    use_policy(harness, "    notify: [approvers, C0APPROVALS]\n")
    async with harness.bot() as bot:
        script(harness)
        thread = await harness.ask("scale down cl-001 to 2")
        bob, channel = await copy_in(harness, "D0BOB"), await copy_in(harness, "C0APPROVALS")
        await harness.idle()
        await asyncio.gather(
            harness.slack.click("U0BOB", "D0BOB", bob.ts, "approval_approve"),
            harness.slack.click("U0DAVE", "C0APPROVALS", channel.ts, "approval_approve"),
        )
        await harness.wait_text("C0OPS", thread, "All done here.")
        await harness.idle()
        assert executions("scale_down") == [ARGS]
        assert len(await events(bot, "approved")) == 1
        loser = [e for e in harness.slack.ephemerals if "Already decided" in e.text]
        assert len(loser) == 1


async def test_a_request_in_a_dm_goes_to_the_approvers_unasked(harness: Harness) -> None:
    use_policy(harness)  # no notify: the approvers cannot see alice's DM
    async with harness.bot():
        script(harness)
        await harness.slack.post_user_message("U0ALICE", "D0ALICE", "scale down cl-001")
        await copy_in(harness, "D0ALICE")  # the card itself, in the DM's main view
        notice = await said_in(harness, "D0ALICE", "Asked")
        assert "by DM (nobody here may approve it)" in notice.text
        copy = await copy_in(harness, "D0DAVE")
        await copy_in(harness, "D0BOB")
        await harness.slack.click("U0DAVE", "D0DAVE", copy.ts, "approval_approve")
        await said_in(harness, "D0ALICE", "All done here.")
        assert executions("scale_down") == [ARGS]


async def test_a_channel_no_approver_is_in_sends_it_to_them(harness: Harness) -> None:
    use_policy(harness)
    harness.slack.set_members("C0GENERAL", ["U0ALICE", "U0CAROL"])
    async with harness.bot():
        script(harness)
        thread = await harness.ask("scale down cl-001 to 2", channel="C0GENERAL")
        await harness.wait_text("C0GENERAL", thread, "nobody here may approve it")
        await copy_in(harness, "D0BOB")
        await copy_in(harness, "D0DAVE")


async def test_a_channel_with_an_approver_in_it_keeps_the_request_there(
    harness: Harness,
) -> None:
    use_policy(harness)
    async with harness.bot():
        script(harness)
        thread = await harness.ask("scale down cl-001 to 2")
        await harness.wait_cards("C0OPS", thread)
        await harness.idle()
        assert harness.slack.messages("D0BOB") == [] and harness.slack.messages("D0DAVE") == []
        assert not any("Asked" in t for t in harness.texts("C0OPS", thread))


async def test_approvers_nobody_can_be_are_a_warning_and_a_notice(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    use_policy(harness)
    harness.slack.workspace.usergroups["S0SREONCALL"].clear()
    with caplog.at_level(logging.WARNING):
        async with harness.bot():
            assert "user group S0SREONCALL has no members" in caplog.text
            script(harness)
            thread = await harness.ask("scale down cl-001 to 2")
            notice = await harness.wait_text("C0OPS", thread, "Nobody can approve this request")
            assert "<!subteam^S0SREONCALL> has no one who may decide it" in notice.text


async def test_a_reminder_then_an_escalation_that_widens_the_approvers(
    harness: Harness,
) -> None:
    use_policy(
        harness,
        "    notify: [approvers]\n    remind_after: 1m\n"
        "    escalate_after: 2m\n    escalate_to: [U0CAROL]\n",
    )
    clock = ManualClock()
    async with harness.bot(clock) as bot:
        script(harness)
        thread = await harness.ask("scale down cl-001 to 2")
        [card] = await harness.wait_cards("C0OPS", thread)
        bob = await copy_in(harness, "D0BOB")
        # Carol may not decide yet.
        await harness.slack.click("U0CAROL", "C0OPS", card.ts, "approval_approve")
        await harness.slack.wait_for(
            lambda: any("can't approve" in e.text for e in harness.slack.ephemerals)
        )
        clock.advance(61)
        # Reminded once, as a reply in the thread and under each copy.
        await harness.wait_text("C0OPS", thread, "Reminder:")
        reminder = await harness.wait_text("D0BOB", bob.ts, "Reminder:")
        assert reminder.thread_ts == bob.ts
        clock.advance(60)
        escalated = await harness.wait_text("C0OPS", thread, "escalated to <@U0CAROL>")
        assert "Nobody decided within" in escalated.text
        carol = await copy_in(harness, "D0CAROL")
        await harness.idle()
        assert "Escalated to <@U0CAROL>" in shown(harness, "C0OPS", card.ts)
        assert "Escalated to <@U0CAROL>" in shown(harness, "D0BOB", bob.ts)
        await harness.slack.click("U0CAROL", "D0CAROL", carol.ts, "approval_approve")
        await harness.wait_text("C0OPS", thread, "All done here.")
        await harness.idle()
        assert executions("scale_down") == [ARGS]
        assert len(await events(bot, "reminded")) == 1
        [record] = await events(bot, "escalated")
        assert record.detail == "U0CAROL"
        reminders = [t for t in harness.texts("C0OPS", thread) if "Reminder:" in t]
        assert len(reminders) == 1


async def test_expiry_wins_over_a_reminder_due_with_it(harness: Harness) -> None:
    use_policy(harness, "    expires_after: 1m\n    remind_after: 1m\n")
    clock = ManualClock()
    async with harness.bot(clock) as bot:
        harness.model.script(
            reply_tool_calls(("scale_down", ARGS)), reply_text("It expired, nothing ran.")
        )
        thread = await harness.ask("scale down cl-001 to 2")
        await harness.wait_cards("C0OPS", thread)  # the request's deadlines are set
        clock.advance(61)
        await harness.wait_text("C0OPS", thread, "It expired, nothing ran.")
        await harness.idle()
        # The reminder's moment has passed too; a sweep now finds nothing to send.
        row = await bot.store.db.fetchone("SELECT remind_at FROM approval_routes")
        assert row is not None and clock.now() > row["remind_at"]
        assert await Reminders(bot.runner).sweep() == 0
        assert await events(bot, "reminded") == []
        assert not any("Reminder:" in t for t in harness.texts("C0OPS", thread))


async def test_the_home_tab_lists_what_waits_on_you_and_decides_it(harness: Harness) -> None:
    use_policy(harness)
    async with harness.bot():
        await harness.slack.open_home("U0ALICE")
        await harness.slack.open_home("U0BOB")
        await harness.slack.wait_for(lambda: harness.slack.home("U0BOB"))
        assert "Nothing waits on you" in json.dumps(harness.slack.home("U0BOB"))
        script(harness)
        thread = await harness.ask("scale down cl-001 to 2")
        [card] = await harness.wait_cards("C0OPS", thread)
        # Refreshed when the request is made, for those who opened it before.
        home = await harness.slack.wait_for(
            lambda: (
                "cl-001" in json.dumps(harness.slack.home("U0BOB")) and harness.slack.home("U0BOB")
            )
        )
        text = json.dumps(home["blocks"])
        assert "Waiting on you" in text and "cluster_id=cl-001, replicas=2" in text
        assert "Requested by <@U0ALICE>" in text and "|thread>" in text
        # Not an approver: nothing waits on carol; alice sees her own request.
        await harness.slack.open_home("U0CAROL")
        carol = await harness.slack.wait_for(lambda: harness.slack.home("U0CAROL"))
        assert "Nothing waits on you" in json.dumps(carol["blocks"])
        alice = await harness.slack.wait_for(lambda: harness.slack.home("U0ALICE"))
        assert "Waiting for a decision" in json.dumps(alice["blocks"])

        await harness.slack.click_home("U0BOB", "home_approve")
        await harness.wait_text("C0OPS", thread, "All done here.")
        await harness.idle()
        assert executions("scale_down") == [ARGS]
        assert "Approved by <@U0BOB>" in shown(harness, "C0OPS", card.ts)
        # Refreshed for the people concerned.
        assert "Approved by <@U0BOB>" in json.dumps(harness.slack.home("U0ALICE"))
        assert "Nothing waits on you" in json.dumps(harness.slack.home("U0BOB"))


async def test_a_home_tab_click_by_someone_not_allowed_is_refused(harness: Harness) -> None:
    use_policy(harness)
    async with harness.bot() as bot:
        script(harness)
        await harness.slack.post_user_message("U0ALICE", "D0ALICE", "scale down cl-001")
        card = await copy_in(harness, "D0ALICE")
        await harness.idle()
        await harness.slack.open_home("U0BOB")
        await harness.slack.open_home("U0CAROL")
        await harness.slack.wait_for(lambda: harness.slack.home("U0BOB"))
        await harness.slack.wait_for(lambda: harness.slack.home("U0CAROL"))
        # Bob's Home tab button, clicked on carol's (a replayed or forged payload).
        ws = harness.slack.workspace
        button = find_buttons(ws.homes["U0BOB"]["blocks"])[0]
        await harness.slack.deliver(
            "interactive",
            payloads.home_block_actions(
                ws, user="U0CAROL", button=button, trigger_id=ws.new_trigger("U0CAROL")
            ),
        )
        told = await harness.slack.wait_for(
            lambda: next((m for m in harness.slack.messages("D0CAROL")), None)
        )
        assert "can't approve this" in told.text
        await harness.idle()
        assert executions("scale_down") == []
        assert [r.actor for r in await events(bot, "refused")] == ["U0CAROL"]
        assert harness.slack.message("D0ALICE", card.ts).buttons()  # still waiting


@pytest.mark.parametrize(
    ("rule", "complaint"),
    [
        ("    notify: [bob]\n", "'bob' is not a place to notify"),
        ("    remind_after: soon\n", "'soon' is not a duration"),
        ("    escalate_after: 30m\n", "escalate_after is set but escalate_to is empty"),
        ("    escalate_to: [carol]\n", "'carol' is not a Slack user id"),
        ("    remind_after: 1m\n    remind_me: yes\n", "remind_me: unknown key"),
    ],
)
async def test_a_routing_key_with_a_mistake_stops_the_bot_at_startup(
    harness: Harness, rule: str, complaint: str
) -> None:
    use_policy(harness, rule)
    with pytest.raises(PolicyError, match=re.escape(complaint)) as raised:
        async with harness.bot():
            pass
    assert f"{harness.policy_file}:" in str(raised.value)


async def test_a_request_anyone_may_decide_stays_off_the_home_tab(harness: Harness) -> None:
    harness.policy_file.write_text("tools:\n  list_clusters: {approval: never}\n")
    async with harness.bot() as bot:
        script(harness)
        await harness.slack.post_user_message("U0ALICE", "D0ALICE", "scale down cl-001")
        card = await copy_in(harness, "D0ALICE")
        await harness.slack.open_home("U0CAROL")
        home = await harness.slack.wait_for(lambda: harness.slack.home("U0CAROL"))
        # "Anyone" means anyone who sees the card: carol does not see alice's DM.
        assert "Nothing waits on you" in json.dumps(home)
        ws = harness.slack.workspace
        [approval] = await bot.store.db.fetchall("SELECT id FROM approvals")
        forged = Button("home_approve", approval["id"], "Approve", "primary", "home:x")
        await harness.slack.deliver(
            "interactive",
            payloads.home_block_actions(
                ws, user="U0CAROL", button=forged, trigger_id=ws.new_trigger("U0CAROL")
            ),
        )
        told = await said_in(harness, "D0CAROL", "not on the Home tab")
        assert told.user is None
        await harness.idle()
        assert executions("scale_down") == []
        assert [r.actor for r in await events(bot, "refused")] == ["U0CAROL"]
        assert harness.slack.message("D0ALICE", card.ts).buttons()


async def test_votes_and_a_deny_on_copies_redraw_every_copy(harness: Harness) -> None:
    use_policy(harness, "    notify: [approvers, C0APPROVALS]\n    approvals_needed: 2\n")
    async with harness.bot():
        harness.model.script(
            reply_tool_calls(("scale_down", ARGS)), reply_text("Not run, as denied.")
        )
        thread = await harness.ask("scale down cl-001 to 2")
        [card] = await harness.wait_cards("C0OPS", thread)
        bob, dave = await copy_in(harness, "D0BOB"), await copy_in(harness, "D0DAVE")
        channel = await copy_in(harness, "C0APPROVALS")
        await harness.idle()
        await harness.approve("U0BOB", "D0BOB", bob.ts)
        places = (("C0OPS", card.ts), ("C0APPROVALS", channel.ts), ("D0DAVE", dave.ts))
        for where, ts in places:
            assert "1 of 2" in shown(harness, where, ts), where
        # The Deny modal opens from a copy too, and its decision lands everywhere.
        await harness.deny("U0DAVE", "D0DAVE", dave.ts, "not today")
        await harness.wait_text("C0OPS", thread, "Not run, as denied.")
        await harness.idle()
        assert executions("scale_down") == []
        for where, ts in (*places, ("D0BOB", bob.ts)):
            assert "Denied by <@U0DAVE>" in shown(harness, where, ts), where
            assert harness.slack.message(where, ts).buttons() == []
