"""Block Kit for approval cards (one call, a batch, decided) and their texts; pure functions.

Text helpers and limits are in `bot.mrkdwn`, the modals in `bot.modals`; both are
importable from here too.
"""

from __future__ import annotations

import json
from typing import Any

# `as` marks a re-export: callers reach these as `blocks.X`.
from bot.modals import args_modal as args_modal
from bot.modals import deny_modal as deny_modal
from bot.mrkdwn import BATCH_LIMIT as BATCH_LIMIT
from bot.mrkdwn import CONFIRM_TEXT_LIMIT, FIELD_LIMIT, HEADER_LIMIT, MAX_ARG_FIELDS
from bot.mrkdwn import FIELDS_PER_SECTION as FIELDS_PER_SECTION
from bot.mrkdwn import SECTION_TEXT_LIMIT as SECTION_TEXT_LIMIT
from bot.mrkdwn import Block as Block
from bot.mrkdwn import clock as clock
from bot.mrkdwn import count as count
from bot.mrkdwn import cut as cut
from bot.mrkdwn import escape as escape
from bot.mrkdwn import mention as mention
from bot.mrkdwn import notice as notice
from bot.mrkdwn import section as section
from bot.store import Approval, Status

APPROVE_ACTION = "approval_approve"
DENY_ACTION = "approval_deny"
EDIT_ACTION = "approval_edit"
SHOW_ARGS_ACTION = "approval_show_args"
APPROVE_ALL_ACTION = "approval_approve_all"
DENY_ALL_ACTION = "approval_deny_all"


# How a decided approval's status is said to people: one word for each, everywhere.
STATUS_WORDS: dict[Status, str] = {
    "pending": "Waiting",
    "approved": "Approved",
    "rejected": "Denied",
    "withdrawn": "Withdrawn",
    "expired": "Expired",
    "dropped": "No longer pending",
}


def _value_text(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _field(key: str, value: object) -> tuple[Block, bool]:
    """One argument as a card field, and whether it is shown whole. A value too long for a
    field shows its start and its end, so what a long statement ends with is never hidden."""
    text = _value_text(value)
    whole = f"*{escape(key)}*\n`{escape(text)}`"
    if len(whole) <= FIELD_LIMIT:
        return {"type": "mrkdwn", "text": whole}, True
    label = f"*{escape(key)}* _({len(text):,} characters; all of it: Show all arguments)_\n"
    keep = (FIELD_LIMIT - len(label)) // 2
    while True:
        head, tail = escape(text[:keep]), escape(text[-keep:])
        shown = f"{label}`{head}` … `{tail}`"
        if len(shown) <= FIELD_LIMIT:
            return {"type": "mrkdwn", "text": shown}, False
        keep = keep * 9 // 10


def _arg_sections(args: dict[str, Any]) -> tuple[list[Block], bool]:
    """The arguments as section fields within Slack's limits, and whether all of them show
    whole; when not, the card offers "Show all arguments"."""
    if not args:
        return [section("_no arguments_")], True
    items = list(args.items())
    shown = items if len(items) <= MAX_ARG_FIELDS else items[: MAX_ARG_FIELDS - 1]
    drawn = [_field(key, value) for key, value in shown]
    fields = [field for field, _ in drawn]
    complete = all(whole for _, whole in drawn) and len(shown) == len(items)
    if len(shown) < len(items):
        more = len(items) - len(shown)
        fields.append(
            {
                "type": "mrkdwn",
                "text": f"_…and {count(more, 'more argument')}: Show all arguments_",
            }
        )
    sections = [
        {"type": "section", "fields": fields[i : i + FIELDS_PER_SECTION]}
        for i in range(0, len(fields), FIELDS_PER_SECTION)
    ]
    return sections, complete


def _context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": cut(text, 3000)}]}


def _who_may_approve(approval: Approval) -> str:
    approvers = approval.policy.approvers
    who = (
        ", ".join(f"<!subteam^{a}>" if a.startswith("S") else mention(a) for a in approvers)
        if approvers
        else "anyone in the channel"
    )
    if not approval.policy.allow_self_approval:
        who += f" (not {mention(approval.requester)})"
    return who


def _card_top(approval: Approval, title: str) -> tuple[list[Block], bool]:
    """Header, description and arguments; and whether every argument shows whole."""
    args, complete = _arg_sections(approval.args)
    blocks: list[Block] = [
        {"type": "header", "text": {"type": "plain_text", "text": cut(title, HEADER_LIMIT)}},
        section(f"*`{escape(approval.tool)}`* — {escape(approval.description)}"),
        *args,
    ]
    if facts := approval.policy.tool:
        blocks.insert(2, _context(_tool_facts(facts)))
    return blocks, complete


def _show_all(approval: Approval) -> Block:
    return _button(SHOW_ARGS_ACTION, "Show all arguments", approval.id)


def target_line(tool: str, args: dict[str, Any], verb: str = "Run") -> str:
    """What a call acts on, first: its first argument (the cluster, the table, …)."""
    if not args:
        return f"{verb} `{escape(tool)}`?"
    key, value = next(iter(args.items()))
    return f"{verb} `{escape(tool)}` on {escape(key)} `{escape(cut(_value_text(value), 80))}`?"


def confirm_dialog(title: str, first_line: str, rest: list[str], button: str) -> Block:
    """A confirm dialog whose first line says what is at stake; what does not fit in Slack's
    300 characters is on the card (or behind "Show all arguments")."""
    text = first_line
    for line in rest:
        if len(text) + 1 + len(line) > CONFIRM_TEXT_LIMIT - 40:
            text += "\n…and more: see the card"
            break
        text += "\n" + line
    return {
        "title": {"type": "plain_text", "text": cut(title, 100)},
        "text": {"type": "mrkdwn", "text": cut(text, CONFIRM_TEXT_LIMIT)},
        "confirm": {"type": "plain_text", "text": button},
        "deny": {"type": "plain_text", "text": "Cancel"},
        "style": "primary",
    }


def _tool_facts(facts: dict[str, Any]) -> str:
    """The MCP server and what it declares about the tool: hints, which the policy overrides."""
    parts = [f"MCP server `{escape(str(facts.get('mcp_server')))}`"]
    if facts.get("title"):
        parts.append(f"“{escape(str(facts['title']))}”")
    if facts.get("destructiveHint") is True:
        parts.append(":warning: declared destructive")
    elif facts.get("destructiveHint") is False:
        parts.append("declared not destructive")
    if facts.get("readOnlyHint") is True:
        parts.append("declared read-only")
    return " · ".join(parts)


def _button(action_id: str, text: str, value: str, style: str | None = None) -> Block:
    button: Block = {
        "type": "button",
        "action_id": action_id,
        "text": {"type": "plain_text", "text": text},
        "value": value,
    }
    if style:
        button["style"] = style
    return button


def _progress(approval: Approval, votes: list[str]) -> str:
    needed = approval.policy.approvals_needed
    if needed <= 1:
        return ""
    so_far = ", ".join(mention(v) for v in votes) or "none yet"
    return f"\n*{len(votes)} of {needed} approvals:* {so_far} — {needed - len(votes)} more needed"


def approval_card(approval: Approval, votes: list[str] | None = None) -> list[Block]:
    votes = votes or []
    rules = approval.policy
    offered = rules.offered()
    expiry = f" · expires {clock(approval.expires_at)}" if approval.expires_at is not None else ""
    approve = _button(APPROVE_ACTION, "Approve", approval.id, "primary")
    if rules.confirm:
        approve["confirm"] = confirm_dialog(
            "Run this call?",
            target_line(approval.tool, approval.args),
            [
                f"{escape(k)}: `{escape(cut(_value_text(v), 60))}`"
                for k, v in list(approval.args.items())[1:]
            ],
            "Approve",
        )
    buttons = [approve]
    if "reject" in offered:
        buttons.append(_button(DENY_ACTION, "Deny", approval.id, "danger"))
    if "edit" in offered:
        buttons.append(_button(EDIT_ACTION, "Edit", approval.id))
    top, complete = _card_top(approval, f"Approval needed: {approval.tool}")
    if not complete:
        buttons.append(_show_all(approval))
    return [
        *top,
        _context(
            f"Requested by {mention(approval.requester)} · may approve: "
            f"{_who_may_approve(approval)}{expiry}{_progress(approval, votes)}"
        ),
        {"type": "actions", "block_id": f"approval:{approval.id}", "elements": buttons},
    ]


def batch_text(approvals: list[Approval]) -> str:
    waiting = [a for a in approvals if a.status == "pending"]
    if not waiting:
        return f"All {count(len(approvals), 'call')} decided"
    return f"{count(len(waiting), 'call')} of {len(approvals)} wait for a decision"


def batch_card(approvals: list[Approval]) -> list[Block]:
    """'Approve all' / 'Deny all' for the calls one turn asked for, still pending; the value
    lists their ids. "Deny all" only where every one of them offers Deny, and a confirm
    dialog where any of them asks for one. Decided calls show how they ended. Past
    BATCH_LIMIT calls the ids do not fit a button, so each card is decided on its own."""
    waiting = [a for a in approvals if a.status == "pending"]
    decided = [f"`{escape(a.tool)}`: {outcome_line(a)}" for a in approvals if a.status != "pending"]
    if not waiting:
        return [section(f"*All {count(len(approvals), 'call')} decided*\n" + "\n".join(decided))]
    tools = ", ".join(f"`{escape(a.tool)}`" for a in waiting)
    summary = f"*{count(len(waiting), 'call')} wait for a decision:* {tools}"
    if decided:
        summary += "\n" + "\n".join(decided)
    if len(waiting) > BATCH_LIMIT:
        return [section(summary + "\nToo many to decide at once: decide each card above.")]
    ids = ",".join(a.id for a in waiting)
    approve = _button(APPROVE_ALL_ACTION, "Approve all", ids, "primary")
    if any(a.policy.confirm for a in waiting):
        approve["confirm"] = confirm_dialog(
            "Run all of these calls?",
            f"Approve {count(len(waiting), 'call')}:",
            [target_line(a.tool, a.args) for a in waiting],
            "Approve all",
        )
    buttons = [approve]
    if all(a.policy.offers("reject") for a in waiting):
        buttons.append(_button(DENY_ALL_ACTION, "Deny all", ids, "danger"))
    return [
        section(summary),
        {"type": "actions", "block_id": "approval_batch", "elements": buttons},
    ]


def _edit_line(approval: Approval) -> str:
    decision = approval.decision or {}
    if decision.get("type") != "edit":
        return ""
    edited = decision["edited_action"]["args"]
    changes = [
        f"{escape(key)}: `{escape(_value_text(approval.args.get(key, '∅')))}` → "
        f"`{escape(_value_text(edited.get(key, '∅')))}`"
        for key in sorted(set(approval.args) | set(edited))
        if approval.args.get(key) != edited.get(key)
    ]
    by = mention(approval.decided_by) if approval.decided_by else "someone"
    return f"\n:pencil2: {', '.join(changes) or 'no changes'}, edited by {by}"


def outcome_line(approval: Approval, votes: list[str] | None = None) -> str:
    """One line saying how the approval ended; 'expired' is never worded as a denial."""
    by = mention(approval.decided_by) if approval.decided_by else "someone"
    if approval.status == "approved" and votes and len(votes) > 1:
        by = ", ".join(mention(v) for v in votes)
    at = f" at {clock(approval.decided_at)}" if approval.decided_at else ""
    reason = f": {escape(approval.reason)}" if approval.reason else ""
    match approval.status:
        case "approved":
            return f":white_check_mark: Approved by {by}{at}"
        case "rejected":
            return f":no_entry: Denied by {by}{at}{reason}"
        case "withdrawn":
            return f":leftwards_arrow_with_hook: Withdrawn by {by}{at}"
        case "expired":
            return f":hourglass: Expired{at} — nobody decided in time"
        case "dropped":
            return ":heavy_minus_sign: No longer pending — the agent moved on without this call"
        case _:
            return ":hourglass_flowing_sand: Waiting for a decision"


def decided_card(approval: Approval, votes: list[str] | None = None) -> list[Block]:
    top, complete = _card_top(approval, f"{STATUS_WORDS[approval.status]}: {approval.tool}")
    card = [
        *top,
        section(outcome_line(approval, votes) + _edit_line(approval)),
        _context(f"Requested by {mention(approval.requester)}"),
    ]
    if not complete:  # what was decided stays readable in full; nothing here decides
        card.append({"type": "actions", "elements": [_show_all(approval)]})
    return card


def card_text(approval: Approval) -> str:
    """The notification / fallback text of a card."""
    if approval.status == "pending":
        return f"Approval needed: {approval.tool} (requested by {mention(approval.requester)})"
    return f"{approval.tool}: {outcome_line(approval)}"


def with_link(card: list[Block], permalink: str | None) -> list[Block]:
    """A copy's card: the thread's, with a link back to the conversation."""
    if permalink is None:
        return card
    return before_buttons(card, f":link: <{permalink}|Open the conversation>")


def before_buttons(card: list[Block], text: str) -> list[Block]:
    """`card` with a context line of `text` above its buttons (or at its end)."""
    line = _context(text)
    if card and card[-1].get("type") == "actions":
        return [*card[:-1], line, card[-1]]
    return [*card, line]
