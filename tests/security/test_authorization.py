"""Who may decide is checked on the server for every decision path, against the payload's
own user, and a decision only lands on the approval its button or modal was made for.

tests/bot/test_policy_rules.py covers a non-approver's click and deny modal, self-approval,
quorum and "approve all" by a non-approver; these add the paths that carry an approval id
somewhere a person (or a replayed payload) could point elsewhere.
"""

from __future__ import annotations

import json
from typing import Any

from bot.service import RunningBot
from tests.conftest import Harness
from tests.security.support import (
    BOB_ONLY_POLICY,
    approvals,
    audit_events,
    click_payload,
    deny_values,
    edit_values,
    ephemerals_for,
    open_view,
    submission_payload,
)
from tests.support.tools import executions

ORIGINAL = {"cluster_id": "cl-001", "replicas": 2}


async def scale_down_card(harness: Harness, channel: str = "C0OPS") -> tuple[str, str]:
    thread, card = await harness.ask_scale_down(channel=channel)
    await harness.idle()  # the card's ts is recorded just after it is posted
    return thread, card.ts


async def unchanged(bot: RunningBot, before: list[dict[str, Any]]) -> None:
    await bot.runner.wait_idle(20)
    assert await approvals(bot) == before
    assert executions("scale_down") == []


async def test_an_edit_submitted_by_a_non_approver_is_refused(harness: Harness) -> None:
    harness.policy_file.write_text(BOB_ONLY_POLICY)
    async with harness.bot() as bot:
        thread, card = await scale_down_card(harness)
        before = await approvals(bot)
        # The modal opens for anyone: the check that counts is the one on submission.
        view = await open_view(harness, "U0CAROL", card, "approval_edit")
        await harness.slack.submit_view("U0CAROL", view.id, edit_values("cl-001", "0"))
        await unchanged(bot, before)
        assert any("can't approve this" in t for t in ephemerals_for(harness, "U0CAROL"))
        assert ("refused", "U0CAROL") in await audit_events(bot)

        await harness.slack.click("U0BOB", "C0OPS", card, "approval_approve")
        await harness.wait_text("C0OPS", thread, "All done here.")
        await harness.idle()
    assert executions("scale_down") == [ORIGINAL]  # Carol's edit never landed


async def test_a_submission_is_checked_against_its_submitter(harness: Harness) -> None:
    """Bob may decide and opened both modals; a submission of his views in Carol's name
    (a replayed or crafted payload) is judged as Carol's."""
    harness.policy_file.write_text(BOB_ONLY_POLICY)
    async with harness.bot() as bot:
        _, card = await scale_down_card(harness)
        before = await approvals(bot)
        deny_view = await open_view(harness, "U0BOB", card, "approval_deny")
        edit_view = await open_view(harness, "U0BOB", card, "approval_edit")
        for view, values in (
            (deny_view, deny_values("Carol says no")),
            (edit_view, edit_values("cl-001", "0")),
        ):
            payload = submission_payload(harness.slack, "U0CAROL", view, values)
            delivery = await harness.slack.deliver("interactive", payload)
            assert delivery.ack is not None
        await unchanged(bot, before)
        refused = [actor for event, actor in await audit_events(bot) if event == "refused"]
        assert refused == ["U0CAROL", "U0CAROL"]


async def test_edit_is_refused_where_the_policy_does_not_offer_it(harness: Harness) -> None:
    harness.policy_file.write_text(
        "tools:\n  list_clusters: {approval: never}\n  scale_down: {decisions: [approve, reject]}\n"
    )
    async with harness.bot() as bot:
        _, card = await scale_down_card(harness)
        before = await approvals(bot)
        # Any modal of the bot's will do as a carrier: only its callback id and metadata count.
        deny_view = await open_view(harness, "U0BOB", card, "approval_deny")
        forged = {
            **deny_view.view,
            "callback_id": "edit_args",
            "blocks": [],
            "private_metadata": before[0]["id"],
        }
        payload = submission_payload(harness.slack, "U0BOB", deny_view, edit_values("cl-001", "0"))
        payload["view"] = {**forged, "state": payload["view"]["state"]}
        await harness.slack.deliver("interactive", payload)
        await unchanged(bot, before)
        assert any("does not allow 'edit'" in t for t in ephemerals_for(harness, "U0BOB"))
        assert ("refused", "U0BOB") in await audit_events(bot)


async def test_an_approval_id_from_another_channel_is_refused(harness: Harness) -> None:
    async with harness.bot() as bot:
        _, card_ts = await scale_down_card(harness)
        card = harness.slack.message("C0OPS", card_ts)
        [row] = before = await approvals(bot)
        # A message of the bot's in #general, carrying the #ops card's buttons.
        elsewhere = await bot.runner.client.chat_postMessage(
            channel="C0GENERAL", text="copy", blocks=card.blocks
        )
        copy = harness.slack.message("C0GENERAL", elsewhere["ts"])
        for action in ("approval_approve", "approval_deny"):
            payload = click_payload(harness.slack, "U0BOB", copy, action, value=row["id"])
            await harness.slack.deliver("interactive", payload)
        await unchanged(bot, before)
        told = ephemerals_for(harness, "U0BOB")
        assert len(told) == 2 and all("does not belong" in t for t in told)
        audit = await bot.store.audit_log()
        assert [r.detail for r in audit if r.event == "refused"] == [
            "button from another message"
        ] * 2
        assert harness.slack.views == []


async def test_an_approval_id_from_another_message_is_refused_by_every_button(
    harness: Harness,
) -> None:
    harness.policy_file.write_text(BOB_ONLY_POLICY)
    async with harness.bot() as bot:
        thread, card_ts = await scale_down_card(harness)
        [row] = before = await approvals(bot)
        # Another message of the bot's in the same thread, carrying the card's buttons.
        posted = await bot.runner.client.chat_postMessage(
            channel="C0OPS",
            thread_ts=thread,
            text="copy",
            blocks=harness.slack.message("C0OPS", card_ts).blocks,
        )
        other = harness.slack.message("C0OPS", posted["ts"])
        for action in ("approval_approve", "approval_deny", "approval_edit"):
            payload = click_payload(harness.slack, "U0BOB", other, action, value=row["id"])
            await harness.slack.deliver("interactive", payload)
        await unchanged(bot, before)
        assert sum("does not belong" in t for t in ephemerals_for(harness, "U0BOB")) == 3
        assert harness.slack.views == []


async def test_approve_all_ignores_ids_from_another_thread(harness: Harness) -> None:
    async with harness.bot() as bot:
        # "Nothing to do." answers the second thread's question.
        thread, _ = await harness.ask_two_calls("Nothing to do.")
        batch = await harness.wait_button("C0OPS", thread, "approval_approve_all")
        other_thread = await harness.ask("say hello")
        await harness.wait_text("C0OPS", other_thread, "Nothing to do.")
        await harness.idle()
        before = await approvals(bot)
        ids = ",".join(r["id"] for r in before)
        # The batch card's buttons, on a message in another thread of the same channel.
        copy = await bot.runner.client.chat_postMessage(
            channel="C0OPS", thread_ts=other_thread, text="copy", blocks=batch.blocks
        )
        message = harness.slack.message("C0OPS", copy["ts"])
        for action in ("approval_approve_all", "approval_deny_all"):
            payload = click_payload(harness.slack, "U0BOB", message, action, value=ids)
            await harness.slack.deliver("interactive", payload)
        await harness.idle()
        assert await approvals(bot) == before
        assert executions("scale_down") == [] and executions("delete_cluster") == []
        told = ephemerals_for(harness, "U0BOB")
        assert told == ["Nothing left to decide here."] * 2


async def test_a_decided_approval_stays_decided_on_every_path(harness: Harness) -> None:
    harness.policy_file.write_text(
        "tools:\n  list_clusters: {approval: never}\n"
        "  scale_down: {decisions: [approve, reject, edit]}\n"
    )
    async with harness.bot() as bot:
        thread, card = await scale_down_card(harness)
        # Modals opened while it was pending, submitted after it was decided.
        deny_view = await open_view(harness, "U0DAVE", card, "approval_deny")
        edit_view = await open_view(harness, "U0DAVE", card, "approval_edit")
        pending_card = harness.slack.message("C0OPS", card)
        late_clicks = [
            click_payload(harness.slack, "U0DAVE", pending_card, action)
            for action in ("approval_approve", "approval_deny", "approval_edit")
        ]
        await harness.slack.click("U0BOB", "C0OPS", card, "approval_approve")
        await harness.wait_text("C0OPS", thread, "All done here.")
        await harness.idle()
        decided = await approvals(bot)
        audit = await audit_events(bot)

        for payload in late_clicks:
            await harness.slack.deliver("interactive", payload)
        await harness.slack.submit_view("U0DAVE", deny_view.id, deny_values("too late"))
        await harness.slack.submit_view("U0DAVE", edit_view.id, edit_values("cl-001", "0"))
        await harness.idle()

        assert await approvals(bot) == decided
        assert decided[0]["status"] == "approved" and decided[0]["decided_by"] == "U0BOB"
        assert executions("scale_down") == [ORIGINAL]
        told = ephemerals_for(harness, "U0DAVE")
        assert len(told) == 5 and all("Already decided" in t for t in told)
        # Late decisions are answered, not recorded as decisions.
        assert await audit_events(bot) == audit
        assert "Approved by <@U0BOB>" in json.dumps(harness.slack.message("C0OPS", card).blocks)
