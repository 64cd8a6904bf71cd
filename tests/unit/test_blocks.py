"""Block Kit for cards (`bot.blocks`): what came from people, the model or a tool pings nobody,
and every text fits Slack's limits (slack-sdk's models validate the result)."""

from __future__ import annotations

import json

from slack_sdk.models.blocks import Block

from agent.policy import Policy
from bot import blocks
from tests.support.approvals import an_approval


def parsed(drawn: list[dict[str, object]]) -> None:
    """Each block as slack-sdk reads it, validated against its limits."""
    for block in drawn:
        model = Block.parse(block)
        assert model is not None, block
        model.validate_json()


def test_a_card_escapes_what_it_shows_and_offers_its_decisions() -> None:
    policy = Policy.parse("tools:\n  scale_down: {decisions: [approve, reject, edit]}\n")
    approval = an_approval(args={"cluster_id": "<!channel> & <@U0BOB>"}, policy=policy)
    card = blocks.approval_card(approval)
    parsed(card)
    text = json.dumps(card)
    assert "<!channel>" not in text and "&lt;!channel&gt; &amp; &lt;@U0BOB&gt;" in text
    actions = [b for b in card if b["type"] == "actions"]
    assert [e["action_id"] for e in actions[0]["elements"]] == [
        blocks.APPROVE_ACTION,
        blocks.DENY_ACTION,
        blocks.EDIT_ACTION,
    ]
    assert all(e["value"] == approval.id for e in actions[0]["elements"])


def test_edit_is_offered_only_when_one_approval_decides() -> None:
    policy = Policy.parse(
        "tools:\n  scale_down: {decisions: [approve, reject, edit], approvals_needed: 2}\n"
    )
    card = blocks.approval_card(an_approval(policy=policy), votes=["U0BOB"])
    [actions] = [b for b in card if b["type"] == "actions"]
    assert blocks.EDIT_ACTION not in [e["action_id"] for e in actions["elements"]]
    assert "1 of 2 approvals" in json.dumps(card)


def test_long_and_many_arguments_are_cut_to_slacks_limits() -> None:
    args = {f"arg{i}": "x" * 5000 for i in range(30)}
    card = blocks.approval_card(an_approval(tool="t" * 400, args=args))
    parsed(card)
    sections = [b for b in card if b["type"] == "section" and "fields" in b]
    assert all(len(s["fields"]) <= blocks.FIELDS_PER_SECTION for s in sections)


def test_a_batch_names_every_call_in_one_button_up_to_its_limit() -> None:
    approvals = [an_approval(f"ap_{i:016x}") for i in range(blocks.BATCH_LIMIT)]
    card = blocks.batch_card(approvals)
    parsed(card)
    [actions] = [b for b in card if b["type"] == "actions"]
    assert actions["elements"][0]["value"].split(",") == [a.id for a in approvals]
    many = blocks.batch_card([*approvals, an_approval("ap_one_more")])
    assert not [b for b in many if b["type"] == "actions"]
    assert "decide each card above" in json.dumps(many)


def test_cut_marks_what_it_left_out() -> None:
    assert blocks.cut("abc", 3) == "abc"
    assert blocks.cut("abcd", 3) == "ab…"
    assert blocks.escape("a<b>&c") == "a&lt;b&gt;&amp;c"
