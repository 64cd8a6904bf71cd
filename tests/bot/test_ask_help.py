"""`/ask` with nothing to do, or `help`, is answered by the bot from its policy; a command the
app did not register is answered by Slack (here, the emulator), not sent to the app."""

from __future__ import annotations

from tests.conftest import Harness


async def test_ask_help_is_answered_from_the_policy_not_the_model(harness: Harness) -> None:
    harness.policy_file.write_text(
        "defaults:\n  approvers: [S0SREONCALL]\n"
        "tools:\n"
        "  list_clusters: {approval: never}\n"
        "  scale_down: {approval: required, decisions: [approve, deny, edit],"
        " editable: [replicas]}\n"
        "  delete_cluster: {approval: required, approvals_needed: 2, allow_self_approval: false,"
        " expires_after: 2h}\n"
    )
    async with harness.bot():
        for text in ("", "help", "  HELP "):
            before = len(harness.slack.ephemerals)
            delivery = await harness.slack.slash_command("U0CAROL", "C0OPS", "/ask", text)
            assert delivery.ack is not None and delivery.ack.status == 200
            [answer] = harness.slack.ephemerals[before:]
            assert answer.user == "U0CAROL"
            assert "Runs without approval:* `list_clusters`" in answer.text
            assert (
                "`scale_down`: 1 approval from <!subteam^S0SREONCALL>; Approve / Deny /"
                " Edit (replicas); expires after 30 minutes" in answer.text
            )
            assert (
                "`delete_cluster`: 2 approvals from <!subteam^S0SREONCALL>; never the person who"
                " asked; Approve / Deny; expires after 2 hours" in answer.text
            )
        # Mentioned with "help" in a channel, it answers the same, in the thread.
        ts = await harness.slack.post_user_message("U0ALICE", "C0OPS", "<@U0BOT> help")
        await harness.wait_text("C0OPS", ts, "Runs without approval")
        await harness.idle()
    assert harness.model.requests == []


async def test_an_unregistered_command_is_answered_like_slack(harness: Harness) -> None:
    async with harness.bot():
        delivered = len(harness.slack.deliveries)
        await harness.slack.slash_command("U0ALICE", "C0OPS", "/aks", "scale down cl-001")
        [answer] = harness.slack.ephemerals
        assert answer.text.startswith("/aks is not a valid command.")
        assert len(harness.slack.deliveries) == delivered  # nothing went to the app
