"""A gated call runs at most once, only after a recorded approval, whatever changes meanwhile
(a policy edited and applied by a restart, a model that numbers its call ids per answer, a
late click), and no thread is left stuck (a tool that raises, a cancel, Slack refusing posts).
Each through the real bot, the emulator and the real ChatOpenAI against the fake."""

from __future__ import annotations

import json

import aiohttp

from bot.clock import Clock
from bot.db import Database
from bot.store import Store
from tests.bot.test_faults import samples
from tests.bot.test_flow import tool_messages
from tests.conftest import Harness
from tests.fakes.openai_server import reply_text, reply_tool_calls
from tests.support.clock import ManualClock
from tests.support.tools import executions

CHANNEL = "C0OPS"
GATED = (
    "defaults:\n  approvers: []\n  expires_after: {expiry}\ntools:\n"
    "  list_clusters: {{approval: never}}\n  describe_cluster: {{approval: never}}\n"
    "  delete_cluster: {{}}\n  scale_down: {{decisions: [approve, reject, edit]{extra}}}\n"
)
UNGATED = (
    "tools:\n  list_clusters: {approval: never}\n  describe_cluster: {approval: never}\n"
    "  delete_cluster: {}\n  scale_down: {approval: never}\n"
)


def use_policy(harness: Harness, text: str) -> None:
    harness.policy_file.write_text(text)


def gated(expiry: str = "30m", extra: str = "") -> str:
    return GATED.format(expiry=expiry, extra=extra)


async def scale_down_card(harness: Harness, replicas: int = 2) -> tuple[str, str]:
    thread, card = await harness.ask_scale_down(replicas, channel=CHANNEL)
    return thread, card.ts


async def card_left_waiting(harness: Harness, clock: Clock | None = None) -> tuple[str, str]:
    """A card posted by a bot that has stopped since: the thread and the card's ts."""
    async with harness.bot(clock):
        return await scale_down_card(harness)


async def bot_database(harness: Harness) -> Database:
    """The bot's own SQLite database, opened beside it (or while it is stopped)."""
    return await Database.open(f"sqlite:///{harness.tmp / 'bot.sqlite3'}")


async def audit_events(harness: Harness) -> list[str]:
    return [r.event for r in await harness.running.store.audit_log()]


async def test_an_expired_call_never_runs_after_a_restart_that_ungates_its_tool(
    harness: Harness,
) -> None:
    use_policy(harness, gated(expiry="30m"))
    clock = ManualClock()
    thread, card = await card_left_waiting(harness, clock)
    clock.advance(31 * 60)  # the deadline passes while no bot runs
    use_policy(harness, UNGATED)
    async with harness.bot(clock):
        await harness.wait_text(CHANNEL, thread, "All done here.")  # the model's next answer
        await harness.idle()
        assert executions("scale_down") == []
        assert "Expired" in json.dumps(harness.slack.message(CHANNEL, card).blocks)
        events = await audit_events(harness)
        assert "expired" in events and "executed" not in events
        assert not any("ran" in t for t in harness.texts(CHANNEL, thread) if "scale_down" in t)


async def test_a_denied_call_never_runs_after_a_restart_that_ungates_its_tool(
    harness: Harness,
) -> None:
    use_policy(harness, gated())
    thread, _ = await card_left_waiting(harness)
    await _claim_stopped(harness, "rejected", reason="not today", event="denied")
    use_policy(harness, UNGATED)
    async with harness.bot():
        await harness.wait_text(CHANNEL, thread, "All done here.")  # the model's next answer
        await harness.idle()
        assert executions("scale_down") == []
        events = await audit_events(harness)
        assert "denied" in events and "executed" not in events
        assert "not today" in tool_messages(harness.model.requests[-1])[-1]["content"]


async def test_an_edit_the_new_policy_no_longer_offers_still_reaches_the_agent(
    harness: Harness,
) -> None:
    use_policy(harness, gated())
    thread, _ = await card_left_waiting(harness)
    edited = {
        "type": "edit",
        "edited_action": {"name": "scale_down", "args": {"cluster_id": "cl-001", "replicas": 1}},
    }
    await _claim_stopped(harness, "approved", decision=edited, event="edited")
    use_policy(harness, gated().replace("[approve, reject, edit]", "[approve, reject]"))
    async with harness.bot() as bot:
        await harness.wait_text(CHANNEL, thread, "All done here.")
        await harness.idle()
        assert executions("scale_down") == [{"cluster_id": "cl-001", "replicas": 1}]
        [ran] = [t for t in harness.texts(CHANNEL, thread) if "`scale_down` ran" in t]
        assert "with replicas `2` → `1` (edited by <@U0BOB>)" in ran
        assert "human reviewer" not in ran.lower() and "Note:" not in ran
        [executed] = [r for r in await bot.store.audit_log() if r.event == "executed"]
        assert json.loads(executed.args) == {"cluster_id": "cl-001", "replicas": 1}


async def _claim_stopped(harness: Harness, status: str, **details: object) -> None:
    async with await bot_database(harness) as db:
        store = Store(db)
        rows = await db.fetchall("SELECT id FROM approvals WHERE status = 'pending'")
        [row] = rows
        claimed = await store.claim(row["id"], status, by="U0BOB", **details)  # type: ignore[arg-type]
        assert claimed is not None


async def test_revoking_an_approver_applies_to_pending_calls_and_loosening_never_backwards(
    harness: Harness,
) -> None:
    use_policy(harness, gated(extra=", approvers: [U0BOB]"))
    thread, card = await card_left_waiting(harness)
    use_policy(harness, gated(extra=", approvers: [U0DAVE]"))  # bob is no longer trusted
    async with harness.bot():
        await harness.approve("U0BOB", CHANNEL, card)
        assert executions("scale_down") == []
        assert any("can't approve" in e.text for e in harness.slack.ephemerals if e.user == "U0BOB")
    use_policy(harness, gated())  # anyone may approve new requests now, not this one
    async with harness.bot():
        await harness.approve("U0CAROL", CHANNEL, card)
        assert executions("scale_down") == []
        await harness.slack.click("U0BOB", CHANNEL, card, "approval_approve")  # both allow bob
        await harness.wait_text(CHANNEL, thread, "All done here.")
        assert len(executions("scale_down")) == 1


async def test_a_member_removed_from_the_group_cannot_approve_the_next_card(
    harness: Harness,
) -> None:
    use_policy(harness, gated(extra=", approvers: [S0SREONCALL]"))
    async with harness.bot():
        thread, card = await scale_down_card(harness)
        await harness.slack.click("U0DAVE", CHANNEL, card, "approval_approve")
        await harness.wait_text(CHANNEL, thread, "All done here.")
        harness.slack.workspace.usergroups["S0SREONCALL"].remove("U0DAVE")
        _, second = await scale_down_card(harness, replicas=1)
        await harness.approve("U0DAVE", CHANNEL, second)
        assert len(executions("scale_down")) == 1
        assert harness.slack.message(CHANNEL, second).buttons()


async def test_a_click_after_the_deadline_never_approves(harness: Harness) -> None:
    use_policy(harness, gated(expiry="30m"))
    harness.model.script(
        reply_tool_calls(("scale_down", {"cluster_id": "cl-001", "replicas": 2})),
        reply_text("It expired."),
    )
    clock = ManualClock()
    async with harness.bot(clock) as bot:
        thread = await harness.ask("scale down cl-001 to 2")
        [card] = await harness.wait_cards(CHANNEL, thread)
        [approval] = await bot.store.for_conversation(f"slack:{bot.team_id}:{CHANNEL}:{thread}")
        # Just past the deadline, before any expiry sweep could have seen it.
        assert approval.expires_at is not None
        clock.advance(approval.expires_at - clock.now() + 0.3)
        await harness.slack.click("U0BOB", CHANNEL, card.ts, "approval_approve")
        await harness.wait_text(CHANNEL, thread, "It expired.")
        await harness.idle()
        assert executions("scale_down") == []
        assert (await bot.store.get(approval.id)).status == "expired"  # type: ignore[union-attr]
        assert any("Expired" in e.text for e in harness.slack.ephemerals if e.user == "U0BOB")


async def test_call_ids_numbered_per_answer_never_replay_another_call(harness: Harness) -> None:
    harness.model.numbered_call_ids = True  # `call_0` in every answer
    harness.model.script(
        reply_tool_calls(("scale_down", {"cluster_id": "cl-001", "replicas": 2})),
        reply_tool_calls(("scale_down", {"cluster_id": "cl-002", "replicas": 1})),
        reply_text("Both scaled down."),
    )
    async with harness.bot():
        thread = await harness.ask("scale down cl-001 to 2, then cl-002 to 1")
        [first] = await harness.wait_cards(CHANNEL, thread)
        await harness.slack.click("U0BOB", CHANNEL, first.ts, "approval_approve")
        second = await harness.slack.wait_for(
            lambda: next((c for c in harness.cards(CHANNEL, thread) if c.ts != first.ts), None)
        )
        await harness.slack.click("U0BOB", CHANNEL, second.ts, "approval_approve")
        await harness.wait_text(CHANNEL, thread, "Both scaled down.")
        await harness.idle()
        assert executions("scale_down") == [
            {"cluster_id": "cl-001", "replicas": 2},
            {"cluster_id": "cl-002", "replicas": 1},
        ]
        ran = [t for t in harness.texts(CHANNEL, thread) if "`scale_down` ran" in t]
        assert len(ran) == 2 and "cl-002 scaled down to 1" in ran[1]


async def test_a_tool_that_raises_becomes_an_error_result_and_the_run_goes_on(
    harness: Harness,
) -> None:
    harness.model.script(
        reply_tool_calls(
            ("describe_cluster", {"cluster_id": "explode"}),  # ungated, raises
            ("delete_cluster", {"cluster_id": "explode"}),  # gated, raises
            ("scale_down", {"cluster_id": "cl-001", "replicas": 2}),  # gated, fine
        ),
        reply_text("One failed, one ran."),
        reply_text("Are you there?"),
    )
    async with harness.bot() as bot:
        thread = await harness.ask("describe explode, delete explode, scale cl-001")
        cards = await harness.wait_cards(CHANNEL, thread, count=2)
        await harness.wait_text(CHANNEL, thread, ":x: `describe_cluster` failed")
        for card in cards:
            await harness.slack.click("U0BOB", CHANNEL, card.ts, "approval_approve")
        await harness.wait_text(CHANNEL, thread, "One failed, one ran.")
        await harness.idle()
        texts = harness.texts(CHANNEL, thread)
        failed = ":x: `delete_cluster` failed: RuntimeError: the disk is on fire"
        assert any(failed in t for t in texts)
        assert any("`scale_down` ran" in t for t in texts)
        assert not any("Something went wrong" in t for t in texts)
        contents = [m["content"] for m in tool_messages(harness.model.requests[-1])]
        assert any("ConnectionError: inventory service unreachable" in c for c in contents)
        events = [r.event for r in await bot.store.audit_log()]
        assert events.count("failed") == 2 and events.count("executed") == 1
        # The thread is not stuck: the next message reaches the agent.
        await harness.slack.post_user_message(
            "U0ALICE", CHANNEL, f"<@{bot.bot_user_id}> hello?", thread_ts=thread
        )
        await harness.wait_text(CHANNEL, thread, "Are you there?")
        assert not any("waiting on" in t for t in harness.texts(CHANNEL, thread))


async def test_cancel_as_a_plain_reply_withdraws_and_others_are_told_who_can(
    harness: Harness,
) -> None:
    harness.model.script(
        reply_tool_calls(("delete_cluster", {"cluster_id": "cl-009"})),
        reply_text("Withdrawn, nothing deleted."),
    )
    async with harness.bot() as bot:
        thread = await harness.ask("delete cluster cl-009")
        [card] = await harness.wait_cards(CHANNEL, thread)
        await harness.slack.post_user_message(
            "U0ALICE", CHANNEL, f"<@{bot.bot_user_id}> also list clusters", thread_ts=thread
        )
        held = await harness.wait_text(CHANNEL, thread, "waiting on 1 approval above")
        permalink = (await bot.runner.cards.links([await _only_approval(bot, thread)]))[0]
        assert permalink.split("|")[0].lstrip("<") in held.text
        await harness.slack.post_user_message("U0CAROL", CHANNEL, "stop", thread_ts=thread)
        await harness.wait_text(CHANNEL, thread, "Only <@U0ALICE> (who asked) can withdraw")
        await harness.slack.post_user_message("U0ALICE", CHANNEL, "cancel", thread_ts=thread)
        await harness.wait_text(CHANNEL, thread, "Withdrawn, nothing deleted.")
        await harness.idle()
        assert executions("delete_cluster") == []
        assert "Withdrawn by <@U0ALICE>" in json.dumps(
            harness.slack.message(CHANNEL, card.ts).blocks
        )
        # People talking in the thread are not the agent's business.
        await harness.slack.post_user_message("U0BOB", CHANNEL, "thanks all", thread_ts=thread)
        await harness.idle()
        assert not any("thanks all" in json.dumps(r) for r in harness.model.requests)


async def _only_approval(bot: object, thread: str):  # type: ignore[no-untyped-def]
    [approval] = await bot.store.for_conversation(  # type: ignore[attr-defined]
        f"slack:{bot.team_id}:{CHANNEL}:{thread}",
        ("pending",),  # type: ignore[attr-defined]
    )
    return approval


async def test_posts_slack_refused_are_retried_while_the_bot_runs_and_posted_once(
    harness: Harness,
) -> None:
    harness.model.script(
        reply_tool_calls(("delete_cluster", {"cluster_id": "cl-008"})),
        reply_text("cl-008 is gone."),
    )
    slack = harness.slack
    async with harness.bot() as bot:
        # Past slack-sdk's retries: the card's post fails.
        slack.inject_fault("chat.postMessage", "error", status=200, error="fatal_error")
        thread = await slack.post_user_message(
            "U0ALICE", CHANNEL, f"<@{bot.bot_user_id}> delete cluster cl-008"
        )
        await harness.idle()
        assert harness.cards(CHANNEL, thread) == []
        _, metrics = await _metrics(bot.health_port)
        assert samples(metrics, "slack_approvals_waiting_for_slack")['{what="card"}'] == 1.0
        await slack.post_user_message(
            "U0ALICE", CHANNEL, f"<@{bot.bot_user_id}> and list clusters", thread_ts=thread
        )
        held = await harness.wait_text(CHANNEL, thread, "waiting on 1 approval")
        # "above" only once the card is in the thread (the retry may have posted it by now).
        earlier = [c for c in harness.cards(CHANNEL, thread) if float(c.ts) < float(held.ts)]
        assert ("above" in held.text) == bool(earlier), held.text
        [card] = await harness.wait_cards(CHANNEL, thread)  # posted once Slack answers again
        # Messages too: the answer waits out an outage and is posted exactly once.
        slack.inject_fault("chat.postMessage", "error", status=200, error="fatal_error", times=2)
        await slack.click("U0BOB", CHANNEL, card.ts, "approval_approve")
        await slack.wait_for(
            lambda: any("cl-008 is gone." in t for t in harness.texts(CHANNEL, thread)),
            timeout=30,
        )
        await harness.idle()
        texts = harness.texts(CHANNEL, thread)
        assert sum("cl-008 is gone." in t for t in texts) == 1
        assert sum("`delete_cluster` ran" in t for t in texts) == 1
        assert executions("delete_cluster") == [{"cluster_id": "cl-008"}]


async def _metrics(port: int | None) -> tuple[int, str]:
    url = f"http://127.0.0.1:{port}/metrics"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


async def test_a_pending_call_with_no_approval_on_record_gets_one_at_startup(
    harness: Harness,
) -> None:
    thread, _ = await card_left_waiting(harness)
    # As if the process had stopped after LangGraph saved the pause, before the bot recorded
    # the approval: the run is on record, the approval is not.
    async with await bot_database(harness) as db:
        [row] = await db.fetchall("SELECT conversation, requester FROM approvals")
        await db.execute("DELETE FROM approvals")
        await db.execute("DELETE FROM audit")
        await db.execute(
            "INSERT INTO runs (conversation, requester, started_at) VALUES (?, ?, 0)",
            (row["conversation"], row["requester"]),
        )
    async with harness.bot() as bot:
        await harness.slack.wait_for(lambda: len(harness.cards(CHANNEL, thread)) == 2)
        card = harness.cards(CHANNEL, thread)[-1]
        await harness.approve_and_wait(thread, card, "All done here.")
        assert executions("scale_down") == [{"cluster_id": "cl-001", "replicas": 2}]
        assert [r.event for r in await bot.store.audit_log()][:1] == ["requested"]


async def test_an_approval_whose_call_is_gone_from_the_graph_is_closed_not_waited_on(
    harness: Harness,
) -> None:
    thread, card = await card_left_waiting(harness)
    # The graph's checkpoints of the thread are gone (pruned by hand, say): nothing waits on
    # the approval any more.
    async with await bot_database(harness) as db:
        await db.execute("DELETE FROM checkpoints")
        await db.execute("DELETE FROM writes")
    harness.model.script(reply_text("Fresh start."))
    async with harness.bot() as bot:
        await harness.slack.post_user_message(
            "U0ALICE", CHANNEL, f"<@{bot.bot_user_id}> hello again", thread_ts=thread
        )
        await harness.wait_text(CHANNEL, thread, "All done here.")  # a new turn, not held
        await harness.idle()
        blocks = json.dumps(harness.slack.message(CHANNEL, card).blocks)
        assert "No longer pending" in blocks and not harness.slack.message(CHANNEL, card).buttons()
        assert executions("scale_down") == []
        assert not any("waiting on" in t for t in harness.texts(CHANNEL, thread))
