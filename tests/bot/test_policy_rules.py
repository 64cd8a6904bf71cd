"""Every policy rule, enforced server-side, through the real bot and emulator."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from agent.policy import PolicyError
from bot.service import RunningBot
from tests.conftest import Harness
from tests.support.cli import cli
from tests.support.clock import ManualClock
from tests.support.tools import executions

# Policies: scale_down decided by the on-call group only; scale_down with Edit offered.
ONCALL_ONLY = ("delete_cluster: {}", "scale_down: {approvers: [S0SREONCALL]}")
EDITABLE = "scale_down: {decisions: [approve, reject, edit]}"


def use_policy(harness: Harness, *tools: str, defaults: str = "") -> None:
    """A policy of `defaults` (the inside of a flow mapping) and one entry per tool, beside
    list_clusters, which never needs approval."""
    lines = [f"defaults: {{{defaults}}}"] if defaults else []
    lines += ["tools:", "  list_clusters: {approval: never}"]
    lines += ["  " + line for tool in tools for line in tool.splitlines()]
    harness.policy_file.write_text("\n".join(lines) + "\n")


def card_json(harness: Harness, ts: str) -> str:
    return json.dumps(harness.slack.message("C0OPS", ts).blocks, ensure_ascii=False)


def ephemerals_for(harness: Harness, user: str) -> list[str]:
    return [e.text for e in harness.slack.ephemerals if e.user == user]


async def scale_down_card(harness: Harness) -> tuple[str, str]:
    thread, card = await harness.ask_scale_down()
    return thread, card.ts


@asynccontextmanager
async def card_under(
    harness: Harness, *tools: str, defaults: str = ""
) -> AsyncIterator[tuple[RunningBot, str, str]]:
    """The bot running under the policy `use_policy` writes, a scale_down card waiting: the
    bot, the thread and the card's ts."""
    use_policy(harness, *tools, defaults=defaults)
    async with harness.bot() as bot:
        thread, card = await scale_down_card(harness)
        yield bot, thread, card


async def test_only_listed_approvers_may_decide(harness: Harness) -> None:
    async with card_under(harness, *ONCALL_ONLY) as (bot, thread, card):
        assert "<!subteam^S0SREONCALL>" in card_json(harness, card)
        await harness.slack.click("U0CAROL", "C0OPS", card, "approval_approve")
        await harness.deny("U0CAROL", "C0OPS", card, "I say no")
        await harness.idle()
        refusals = ephemerals_for(harness, "U0CAROL")
        assert len(refusals) == 2 and all("can't approve this; allowed:" in t for t in refusals)
        assert executions("scale_down") == []
        assert harness.slack.message("C0OPS", card).buttons()  # nothing changed

        await harness.slack.click("U0DAVE", "C0OPS", card, "approval_approve")  # in the group
        await harness.wait_text("C0OPS", thread, "All done here.")
        await harness.idle()
        assert len(executions("scale_down")) == 1
        audit = await bot.store.audit_log()
        refused = [r for r in audit if r.event == "refused"]
        assert [r.actor for r in refused] == ["U0CAROL", "U0CAROL"]


async def test_group_membership_is_refreshed_on_a_miss(harness: Harness) -> None:
    async with card_under(harness, *ONCALL_ONLY) as (_, thread, card):
        await harness.approve("U0CAROL", "C0OPS", card)
        assert executions("scale_down") == []
        # Carol joins the on-call group while the card waits: the cached list is stale.
        harness.slack.workspace.usergroups["S0SREONCALL"].append("U0CAROL")
        await harness.slack.click("U0CAROL", "C0OPS", card, "approval_approve")
        await harness.wait_text("C0OPS", thread, "All done here.")
        assert len(executions("scale_down")) == 1


async def test_requester_cannot_approve_their_own_call(harness: Harness) -> None:
    async with card_under(harness, defaults="allow_self_approval: false") as (_, thread, card):
        assert "(not <@U0ALICE>)" in card_json(harness, card)
        await harness.approve("U0ALICE", "C0OPS", card)
        assert any("someone else has to decide" in t for t in ephemerals_for(harness, "U0ALICE"))
        assert executions("scale_down") == []
        await harness.slack.click("U0BOB", "C0OPS", card, "approval_approve")
        await harness.wait_text("C0OPS", thread, "All done here.")


async def test_quorum_needs_distinct_approvers(harness: Harness) -> None:
    async with card_under(harness, defaults="approvals_needed: 2") as (_, thread, card):
        assert "0 of 2 approvals" in card_json(harness, card)
        await harness.approve("U0BOB", "C0OPS", card)
        assert "1 of 2 approvals:* <@U0BOB>" in card_json(harness, card)
        await harness.approve("U0BOB", "C0OPS", card)  # counts once
        assert any("already approved" in t for t in ephemerals_for(harness, "U0BOB"))
        assert executions("scale_down") == []
        await harness.slack.click("U0DAVE", "C0OPS", card, "approval_approve")
        await harness.wait_text("C0OPS", thread, "All done here.")
        await harness.idle()
        assert len(executions("scale_down")) == 1
        assert "Approved by <@U0BOB>, <@U0DAVE>" in card_json(harness, card)


async def test_one_deny_rejects_a_quorum_at_once(harness: Harness) -> None:
    async with card_under(harness, defaults="approvals_needed: 3") as (_, thread, card):
        await harness.slack.click("U0BOB", "C0OPS", card, "approval_approve")
        await harness.deny("U0DAVE", "C0OPS", card, "too risky")
        await harness.wait_text("C0OPS", thread, "All done here.")
        await harness.idle()
        assert executions("scale_down") == []
        assert "Denied by <@U0DAVE>" in card_json(harness, card)


async def test_expired_approval_is_its_own_outcome(harness: Harness) -> None:
    async with card_under(harness, defaults="expires_after: 1s") as (bot, thread, card):
        await harness.wait_text("C0OPS", thread, "All done here.")
        await harness.idle()
        blocks = card_json(harness, card)
        assert "Expired" in blocks and "nobody decided in time" in blocks
        assert "Denied" not in blocks and harness.slack.message("C0OPS", card).buttons() == []
        assert any("was not run" in t and "Expired" in t for t in harness.texts("C0OPS", thread))
        told = [m for m in harness.model.requests[-1]["messages"] if m["role"] == "tool"]
        assert "EXPIRED" in told[-1]["content"] and "not a denial" in told[-1]["content"]
        events = [r.event for r in await bot.store.audit_log()]
        assert "expired" in events and "denied" not in events
        # A late click changes nothing.
        await harness.slack.deliver("interactive", harness.slack.deliveries[-1].payload)
    assert executions("scale_down") == []


async def test_expiry_is_swept_after_a_restart(harness: Harness) -> None:
    use_policy(harness, defaults="expires_after: 30m")
    clock = ManualClock()
    async with harness.bot(clock):
        thread, card = await scale_down_card(harness)
    clock.advance(31 * 60)  # the deadline passes while no bot runs
    async with harness.bot(clock):
        await harness.wait_text("C0OPS", thread, "All done here.")
        assert "Expired" in card_json(harness, card)
    assert executions("scale_down") == []


async def test_never_expires(harness: Harness) -> None:
    async with card_under(harness, defaults="expires_after: never") as (bot, _, card):
        [approval] = await bot.store.db.fetchall("SELECT expires_at FROM approvals")
        assert approval["expires_at"] is None
        assert "expires" not in card_json(harness, card)


async def test_edit_validates_and_runs_the_edited_call(harness: Harness) -> None:
    async with card_under(harness, EDITABLE) as (_, thread, card):
        await harness.slack.click("U0BOB", "C0OPS", card, "approval_edit")
        view = await harness.slack.wait_for(lambda: harness.slack.views and harness.slack.views[-1])
        inputs = {b["block_id"]: b["element"] for b in view.view["blocks"]}
        assert inputs["arg:replicas"]["initial_value"] == "2"
        assert inputs["arg:cluster_id"]["initial_value"] == "cl-001"

        def values(replicas: str) -> dict:
            text = {"type": "plain_text_input"}
            return {
                "arg:cluster_id": {"value": {**text, "value": "cl-001"}},
                "arg:replicas": {"value": {**text, "value": replicas}},
            }

        bad = await harness.slack.submit_view("U0BOB", view.id, values("three"))
        assert bad.ack is not None and bad.ack.body["response_action"] == "errors"
        assert "arg:replicas" in bad.ack.body["errors"]
        assert executions("scale_down") == []

        await harness.slack.submit_view("U0BOB", view.id, values("3"))
        await harness.wait_text("C0OPS", thread, "All done here.")
        await harness.idle()
        assert executions("scale_down") == [{"cluster_id": "cl-001", "replicas": 3}]
        blocks = card_json(harness, card)
        assert "replicas: `2` → `3`, edited by <@U0BOB>" in blocks


async def test_edit_is_not_offered_where_the_policy_does_not_allow_it(harness: Harness) -> None:
    async with harness.bot():
        _, card = await scale_down_card(harness)
        actions = {b.action_id for b in harness.slack.message("C0OPS", card).buttons()}
        assert actions == {"approval_approve", "approval_deny"}


async def test_confirm_puts_a_dialog_on_approve(harness: Harness) -> None:
    async with card_under(harness, "scale_down: {confirm: true}") as (_, _, card):
        [approve] = [
            e
            for b in harness.slack.message("C0OPS", card).blocks
            if b["type"] == "actions"
            for e in b["elements"]
            if e["action_id"] == "approval_approve"
        ]
        assert approve["confirm"]["confirm"]["text"] == "Approve"


async def test_approve_all_needs_a_right_to_every_call(harness: Harness) -> None:
    use_policy(harness, "delete_cluster: {approvers: [U0BOB]}")
    async with harness.bot():
        thread, _ = await harness.ask_two_calls("Both handled.")
        batch = await harness.wait_button("C0OPS", thread, "approval_approve_all")
        await harness.slack.click("U0DAVE", "C0OPS", batch.ts, "approval_approve_all")
        await harness.idle()
        assert any("can't decide all" in t for t in ephemerals_for(harness, "U0DAVE"))
        assert executions("scale_down") == [] and executions("delete_cluster") == []

        await harness.slack.click("U0BOB", "C0OPS", batch.ts, "approval_approve_all")
        await harness.wait_text("C0OPS", thread, "Both handled.")
        await harness.idle()
        assert len(executions("scale_down")) == 1 and len(executions("delete_cluster")) == 1


async def test_deny_all(harness: Harness) -> None:
    async with harness.bot():
        thread, cards = await harness.ask_two_calls("Nothing was changed.")
        batch = await harness.wait_button("C0OPS", thread, "approval_deny_all")
        await harness.slack.click("U0BOB", "C0OPS", batch.ts, "approval_deny_all")
        await harness.wait_text("C0OPS", thread, "Nothing was changed.")
        await harness.idle()
        assert executions("scale_down") == [] and executions("delete_cluster") == []
        assert all("Denied by <@U0BOB>" in card_json(harness, c.ts) for c in cards)


async def test_unknown_group_in_policy_is_a_startup_error(harness: Harness) -> None:
    use_policy(harness, "scale_down:\n  approvers: [S0NOSUCH]")
    with pytest.raises(PolicyError, match=r"policy.yml:4: user group S0NOSUCH .*no_such_subteam"):
        async with harness.bot():
            pass


async def test_audit_command_prints_filtered_records(harness: Harness) -> None:
    async with harness.bot():
        thread, card = await scale_down_card(harness)
        await harness.slack.click("U0BOB", "C0OPS", card, "approval_approve")
        await harness.wait_text("C0OPS", thread, "All done here.")
        await harness.idle()
    database = {"DATABASE_URL": harness.settings().database_url}
    _, out = await cli("audit", "--json", "--tool", "scale_down", cwd=harness.tmp, **database)
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["event"] for r in rows] == ["requested", "approved", "executed"]
    assert rows[1]["actor"] == "U0BOB" and rows[2]["detail"].startswith("cl-001 scaled")
    _, out = await cli("audit", "--user", "U0BOB", cwd=harness.tmp, **database)
    assert out.count("approved") == 1 and "requested" not in out
