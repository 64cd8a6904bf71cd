"""The approval flow end to end: Bolt app ↔ emulator over Socket Mode, ChatOpenAI ↔ fake."""

from __future__ import annotations

import asyncio
import json

from tests.conftest import Harness
from tests.fakes.openai_server import reply_text, reply_tool_calls
from tests.support.tools import executions


def tool_messages(body: dict) -> list[dict]:
    return [m for m in body["messages"] if m.get("role") == "tool"]


async def test_approve_runs_the_tool_once_and_reports(harness: Harness) -> None:
    harness.model.script(
        # A model that takes its time on the first turn: the thread shows the bot working.
        reply_tool_calls(("scale_down", {"cluster_id": "cl-001", "replicas": 2}), delay_s=1.5),
        reply_text("cl-001 now runs 2 replicas."),
    )
    async with harness.bot():
        thread = await harness.ask("scale down cl-001 to 2")
        [card] = await harness.wait_cards("C0OPS", thread)
        assert executions("scale_down") == []  # nothing runs before a decision
        buttons = {b.action_id: b for b in card.buttons()}
        assert set(buttons) == {"approval_approve", "approval_deny"}
        approval_id = buttons["approval_approve"].value
        assert approval_id.startswith("ap_") and buttons["approval_deny"].value == approval_id
        assert "cl-001" in json.dumps(card.blocks) and "<@U0ALICE>" in json.dumps(card.blocks)

        await harness.approve_and_wait(thread, card, "cl-001 now runs 2 replicas.")

        updated = harness.slack.message("C0OPS", card.ts)
        assert updated.buttons() == []
        assert "Approved by <@U0BOB>" in json.dumps(updated.blocks)
        assert executions("scale_down") == [{"cluster_id": "cl-001", "replicas": 2}]
        assert any("scaled down to 2" in t and "ran" in t for t in harness.texts("C0OPS", thread))
        # A "working" sign on the thread while the slow run lasted, gone afterwards; the
        # resume was over at once, so it showed none.
        reactions = [c.method for c in harness.slack.calls if c.method.startswith("reactions.")]
        assert reactions == ["reactions.add", "reactions.remove"]
        assert harness.slack.reactions("C0OPS", thread) == []
        # The model saw the real tool result.
        assert "scaled down to 2" in tool_messages(harness.model.requests[-1])[-1]["content"]


async def test_deny_tells_the_model_and_never_runs_the_tool(harness: Harness) -> None:
    async with harness.bot():
        thread, card = await harness.ask_call(
            "delete cluster cl-003",
            "delete_cluster",
            {"cluster_id": "cl-003"},
            "Understood, I left cl-003 alone.",
        )
        await harness.deny("U0BOB", "C0OPS", card.ts, "not during the freeze")
        await harness.wait_text("C0OPS", thread, "I left cl-003 alone")
        await harness.idle()

        assert executions("delete_cluster") == []
        assert "Denied by <@U0BOB>" in json.dumps(harness.slack.message("C0OPS", card.ts).blocks)
        assert any("was not run" in t and "Denied" in t for t in harness.texts("C0OPS", thread))
        told = tool_messages(harness.model.requests[-1])[-1]["content"]
        assert "rejected" in told and "bob" in told and "not during the freeze" in told
        assert any("not during the freeze" in t for t in harness.texts("C0OPS", thread))


async def test_two_gated_calls_are_decided_independently(harness: Harness) -> None:
    async with harness.bot():
        thread, cards = await harness.ask_two_calls("Scaled cl-001; cl-002 stays.")
        by_tool = {("scale_down" if "scale_down" in c.text else "delete_cluster"): c for c in cards}

        await harness.slack.click("U0BOB", "C0OPS", by_tool["scale_down"].ts, "approval_approve")
        await harness.wait_text("C0OPS", thread, "scaled down to 1")
        await harness.idle()
        assert executions("scale_down") == [{"cluster_id": "cl-001", "replicas": 1}]
        # The sibling still waits: no model turn happened yet.
        assert len(harness.model.requests) == 1

        await harness.deny("U0BOB", "C0OPS", by_tool["delete_cluster"].ts)
        await harness.wait_text("C0OPS", thread, "Scaled cl-001; cl-002 stays.")
        await harness.idle()
        assert executions("delete_cluster") == []
        assert executions("scale_down") == [{"cluster_id": "cl-001", "replicas": 1}]
        texts = harness.texts("C0OPS", thread)
        # The approved result is posted once, even though LangGraph re-emits it on the 2nd resume.
        assert sum("scaled down to 1" in t for t in texts) == 1
        final = tool_messages(harness.model.requests[-1])
        assert final[0]["content"].startswith("cl-001 scaled")
        assert "rejected" in final[1]["content"]


async def test_safe_tool_runs_without_approval(harness: Harness) -> None:
    harness.model.script(
        reply_tool_calls(("list_clusters", {})),
        reply_text("You have cl-001 and cl-002."),
    )
    async with harness.bot():
        thread = await harness.ask("list clusters")
        await harness.wait_text("C0OPS", thread, "You have cl-001 and cl-002.")
        await harness.idle()
        assert harness.cards("C0OPS", thread) == []
        assert len(executions("list_clusters")) == 1


async def test_follow_up_mention_in_thread_has_memory(harness: Harness) -> None:
    harness.model.script(reply_text("Hello Alice."), reply_text("You asked me to say hello."))
    async with harness.bot() as bot:
        thread = await harness.ask("say hello")
        await harness.wait_text("C0OPS", thread, "Hello Alice.")
        await harness.idle()
        await harness.slack.post_user_message(
            "U0ALICE", "C0OPS", f"<@{bot.bot_user_id}> what did I ask?", thread_ts=thread
        )
        await harness.wait_text("C0OPS", thread, "You asked me to say hello.")
        contents = [m.get("content") for m in harness.model.requests[-1]["messages"]]
        assert "say hello" in contents and "Hello Alice." in contents
        assert "what did I ask?" in contents


async def test_twenty_concurrent_clicks_run_the_tool_once(harness: Harness) -> None:
    async with harness.bot():
        thread, card = await harness.ask_scale_down(0, answer="Done.")
        clickers = ["U0BOB", "U0DAVE", "U0CAROL", "U0ALICE"]
        await asyncio.gather(
            *(
                harness.slack.click(clickers[i % 4], "C0OPS", card.ts, "approval_approve")
                for i in range(20)
            )
        )
        await harness.wait_text("C0OPS", thread, "Done.")
        await harness.idle()
        assert len(executions("scale_down")) == 1
        told = await harness.slack.wait_for(
            lambda: (
                len(t := [e for e in harness.slack.ephemerals if "Already decided" in e.text]) >= 19
                and t
            )
        )
        assert len(told) == 19


async def test_pending_approval_survives_a_restart(harness: Harness) -> None:
    async with harness.bot():
        thread, card = await harness.ask_scale_down(3, cluster="cl-002", answer="cl-002 is at 3.")
    # A new process would see only the database: a fresh bot on the same files.
    async with harness.bot():
        await harness.approve_and_wait(thread, card, "cl-002 is at 3.")
    assert executions("scale_down") == [{"cluster_id": "cl-002", "replicas": 3}]


async def test_new_message_while_pending_is_held_and_cancel_withdraws(harness: Harness) -> None:
    async with harness.bot() as bot:
        thread, card = await harness.ask_call(
            "delete cluster cl-009",
            "delete_cluster",
            {"cluster_id": "cl-009"},
            "Withdrawn, nothing deleted.",
        )
        mention = f"<@{bot.bot_user_id}>"
        await harness.slack.post_user_message(
            "U0ALICE", "C0OPS", f"{mention} also list clusters", thread_ts=thread
        )
        await harness.wait_text("C0OPS", thread, "waiting on 1 approval")
        await harness.idle()
        assert len(harness.model.requests) == 1  # the message was not fed to the agent

        await harness.slack.post_user_message("U0CAROL", "C0OPS", f"{mention} cancel", thread)
        await harness.wait_text("C0OPS", thread, "Only <@U0ALICE> (who asked) can withdraw")
        await harness.slack.post_user_message("U0ALICE", "C0OPS", f"{mention} cancel", thread)
        await harness.wait_text("C0OPS", thread, "Withdrawn, nothing deleted.")
        await harness.idle()
        assert executions("delete_cluster") == []
        assert "Withdrawn by <@U0ALICE>" in json.dumps(
            harness.slack.message("C0OPS", card.ts).blocks
        )
        assert "withdrew" in tool_messages(harness.model.requests[-1])[-1]["content"]


async def test_a_dm_delivered_twice_starts_one_turn(harness: Harness) -> None:
    harness.model.script(reply_text("Hi from the agent."))
    async with harness.bot() as bot:
        dm = harness.slack.dm_channel("U0ALICE")
        # A mention in a DM arrives as both message.im and app_mention.
        await harness.slack.post_user_message("U0ALICE", dm, f"<@{bot.bot_user_id}> hi")
        await harness.slack.wait_for(
            lambda: any("Hi from the agent." in m.text for m in harness.slack.messages(dm))
        )
        await harness.idle()
        kinds = [d.payload.get("event", {}).get("type") for d in harness.slack.deliveries]
        assert kinds.count("message") == 1 and kinds.count("app_mention") == 1
        assert len(harness.model.requests) == 1


async def test_a_stale_click_never_decides_a_newer_call(harness: Harness) -> None:
    harness.model.script(
        reply_tool_calls(("scale_down", {"cluster_id": "cl-001", "replicas": 2})),
        reply_tool_calls(("delete_cluster", {"cluster_id": "cl-001"})),
        reply_text("Stopping here."),
    )
    async with harness.bot():
        thread = await harness.ask("scale down cl-001 to 2, then delete it")
        [first] = await harness.wait_cards("C0OPS", thread)
        click = await harness.slack.click("U0BOB", "C0OPS", first.ts, "approval_approve")
        second = await harness.slack.wait_for(
            lambda: next((c for c in harness.cards("C0OPS", thread) if c.ts != first.ts), None)
        )
        await harness.idle()
        assert "delete_cluster" in second.text

        # The first card's click, replayed onto the second card's message.
        moved = json.loads(json.dumps(click.payload))
        moved["container"]["message_ts"] = moved["message"]["ts"] = second.ts
        await harness.slack.deliver("interactive", moved)
        # And replayed as it was: the call it named is decided already.
        await harness.slack.deliver("interactive", click.payload)
        await harness.idle()

        assert executions("delete_cluster") == []
        assert executions("scale_down") == [{"cluster_id": "cl-001", "replicas": 2}]
        told = [e.text for e in harness.slack.ephemerals]
        assert any("does not belong" in t for t in told)
        assert any("Already decided" in t for t in told)
        assert harness.slack.message("C0OPS", second.ts).buttons()  # still waiting


async def test_model_errors_are_reported_in_the_thread(harness: Harness) -> None:
    harness.model.fail_next(status=500, times=10)
    async with harness.bot():
        thread = await harness.ask("list clusters")
        await harness.wait_text("C0OPS", thread, "Something went wrong")
        await harness.idle()


async def test_a_failing_tool_is_reported_in_the_thread(harness: Harness) -> None:
    async with harness.bot():
        thread, card = await harness.ask_scale_down(
            1, cluster="explode", answer="The scale-down failed; nothing else was tried."
        )
        await harness.approve_and_wait(thread, card, "The scale-down failed")
        assert any(
            "failed" in t and "cluster explode is on fire" in t
            for t in harness.texts("C0OPS", thread)
        )
