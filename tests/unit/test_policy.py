"""Policy files (`agent.policy`): durations, defaults, and mistakes named with their line."""

from __future__ import annotations

from datetime import timedelta

import pytest

from agent.policy import Policy, PolicyError, parse_duration

POLICY = """\
defaults:
  approvers: [S0SREONCALL]
  allow_self_approval: false
  expires_after: 2h
tools:
  list_clusters: {approval: never}
  drop_table:
    approvers: [U0DBA]
    approvals_needed: 2
    decisions: [approve, reject, edit]
    expires_after: never
    confirm: true
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("45s", timedelta(seconds=45)),
        ("30m", timedelta(minutes=30)),
        ("2h", timedelta(hours=2)),
        ("1d", timedelta(days=1)),
        (90, timedelta(seconds=90)),
        ("never", None),
        (" Never ", None),
    ],
)
def test_durations(text: object, expected: timedelta | None) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["0m", "5", "5y", "-1h", "", True, 0, None, "1.5h"])
def test_what_is_not_a_duration_says_how_to_write_one(text: object) -> None:
    with pytest.raises(ValueError, match="use a positive number with s, m, h or d"):
        parse_duration(text)


def test_a_tool_takes_the_defaults_it_does_not_set() -> None:
    policy = Policy.parse(POLICY)
    unnamed = policy.for_tool("scale_down")
    assert unnamed.gated and unnamed.approvers == ("S0SREONCALL",)
    assert unnamed.allow_self_approval is False and unnamed.approvals_needed == 1
    assert unnamed.expires_after == timedelta(hours=2)
    assert unnamed.decisions == ("approve", "reject") and not unnamed.confirm

    named = policy.for_tool("drop_table")
    assert named.approvers == ("U0DBA",) and named.approvals_needed == 2
    assert named.expires_after is None and named.confirm
    assert named.allow_self_approval is False  # not set on the tool: the default's
    assert not policy.for_tool("list_clusters").gated
    assert policy.group_ids() == {"S0SREONCALL"}


def test_what_is_gated_and_what_people_are_offered() -> None:
    policy = Policy.parse(POLICY)
    assert policy.gated(["scale_down", "list_clusters", "drop_table"]) == [
        "scale_down",
        "drop_table",
    ]
    # Edit skips the other approvers, so a quorum is never offered it.
    quorum = policy.for_tool("drop_table").snapshot()
    assert quorum.needs_quorum and quorum.offered() == ("approve", "reject")
    single = Policy.parse("tools:\n  x: {decisions: [approve, edit]}\n").for_tool("x")
    assert single.snapshot().offers("edit") and not single.snapshot().offers("reject")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("defaults:\n  aprovers: []\n", r"<p>:2: defaults\.aprovers"),
        ("tools:\n  x:\n    approvals_needed: 0\n", r"<p>:3: tools\.x\.approvals_needed"),
        ("tools:\n  x: {approvers: [bob]}\n", r"'bob' is not a Slack user id"),
        ("tools:\n  x: {decisions: [reject]}\n", r"must include 'approve'"),
        ("defaults: {expires_after: soon}\n", r"'soon' is not a duration"),
        ("- a list\n", r"a policy is a mapping"),
        ("tools: [\n", r"not valid YAML"),
    ],
)
def test_a_mistake_is_named_with_its_line(text: str, problem: str) -> None:
    with pytest.raises(PolicyError, match=problem):
        Policy.parse(text, source="<p>")


def test_a_tool_the_agent_lacks_is_a_mistake() -> None:
    policy = Policy.parse("tools:\n  scale_dwon: {approval: never}\n", source="p.yml")
    with pytest.raises(PolicyError, match=r"'scale_dwon' \(line 2\).*Known tools: scale_down"):
        policy.check_tools(["scale_down"])
