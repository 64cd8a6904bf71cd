"""In a DM the agent answers in the main view, as a chat does; in a thread only when the person
started one there."""

from __future__ import annotations

from tests.conftest import Harness
from tests.fakes.openai_server import reply_text, reply_tool_calls
from tests.support.tools import executions


async def test_dm_answers_and_cards_stay_in_the_main_view(harness: Harness) -> None:
    harness.model.script(
        reply_text("Two clusters."),
        reply_tool_calls(("scale_down", {"cluster_id": "cl-001", "replicas": 2})),
        reply_text("Scaled."),
        reply_text("In the thread."),
    )
    async with harness.bot():
        dm = harness.slack.dm_channel("U0ALICE")
        await harness.slack.post_user_message("U0ALICE", dm, "how many clusters?")
        answer = await harness.slack.wait_for(
            lambda: next((m for m in harness.slack.messages(dm) if "Two" in m.text), None)
        )
        assert answer.thread_ts is None
        await harness.idle()

        # The same conversation goes on in the main view: the model sees the earlier turn.
        await harness.slack.post_user_message("U0ALICE", dm, "scale down cl-001 to 2")
        card = await harness.slack.wait_for(
            lambda: next((m for m in harness.slack.messages(dm) if m.buttons()), None)
        )
        assert card.thread_ts is None
        assert "how many clusters?" in str(harness.model.requests[-1]["messages"])
        await harness.slack.click("U0ALICE", dm, card.ts, "approval_approve")
        ran = await harness.slack.wait_for(
            lambda: next((m for m in harness.slack.messages(dm) if "ran" in m.text), None)
        )
        assert ran.thread_ts is None and executions("scale_down")
        await harness.slack.wait_for(
            lambda: any(m.text == "Scaled." for m in harness.slack.messages(dm))
        )
        await harness.idle()

        # A thread the person starts is answered in that thread.
        first = harness.slack.messages(dm)[0].ts
        await harness.slack.post_user_message("U0ALICE", dm, "and here?", thread_ts=first)
        reply = await harness.wait_text(dm, first, "In the thread.")
        assert reply.thread_ts == first
        await harness.idle()
    assert harness.slack.reactions(dm, first) == []
