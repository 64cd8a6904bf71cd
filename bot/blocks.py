"""Block Kit for approval messages and thread notices; pure functions, no I/O.

Everything that came from a person, the model or a tool is escaped before it goes
into mrkdwn, so `<!channel>` in an argument pings nobody, and cut to Slack's limits.
"""

from __future__ import annotations

import json
import time
from typing import Any

from slack_sdk.models.blocks import HeaderBlock, SectionBlock

from bot.store import Approval

APPROVE_ACTION = "approval_approve"
DENY_ACTION = "approval_deny"
EDIT_ACTION = "approval_edit"
APPROVE_ALL_ACTION = "approval_approve_all"
DENY_ALL_ACTION = "approval_deny_all"

SECTION_TEXT_LIMIT = SectionBlock.text_max_length
FIELD_LIMIT = 2000  # a section field's text; slack-sdk's models do not carry it
HEADER_LIMIT = HeaderBlock.text_max_length
FIELDS_PER_SECTION = SectionBlock.fields_max_length
MAX_ARG_FIELDS = 20
# A button value holds at most 2,000 characters: 50 approval ids ("ap_" + 16 hex) and their
# commas take 999, so "approve all" can always name every call it decides.
BATCH_LIMIT = 50

Block = dict[str, Any]


def escape(text: str) -> str:
    """Slack's three control characters; anything else is literal in mrkdwn."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def count(n: int, noun: str) -> str:
    """`1 approval`, `2 approvals`: a number and a noun that agree."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def mention(user_id: str) -> str:
    return f"<@{user_id}>"


def clock(epoch: float) -> str:
    return time.strftime("%H:%M UTC", time.gmtime(epoch))


def _value_text(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _arg_sections(args: dict[str, Any]) -> list[Block]:
    if not args:
        return [_section("_no arguments_")]
    fields = [
        {
            "type": "mrkdwn",
            "text": cut(f"*{escape(key)}*\n`{escape(_value_text(value))}`", FIELD_LIMIT),
        }
        for key, value in list(args.items())[:MAX_ARG_FIELDS]
    ]
    if len(args) > MAX_ARG_FIELDS:
        fields[-1] = {"type": "mrkdwn", "text": f"_…and {len(args) - MAX_ARG_FIELDS + 1} more_"}
    return [
        {"type": "section", "fields": fields[i : i + FIELDS_PER_SECTION]}
        for i in range(0, len(fields), FIELDS_PER_SECTION)
    ]


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": cut(text, SECTION_TEXT_LIMIT)}}


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


def _card_top(approval: Approval, title: str) -> list[Block]:
    blocks: list[Block] = [
        {"type": "header", "text": {"type": "plain_text", "text": cut(title, HEADER_LIMIT)}},
        _section(f"*`{escape(approval.tool)}`* — {escape(approval.description)}"),
        *_arg_sections(approval.args),
    ]
    return blocks


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
        approve["confirm"] = {
            "title": {"type": "plain_text", "text": "Run this call?"},
            "text": {
                "type": "mrkdwn",
                "text": cut(
                    f"Approve `{escape(approval.tool)}` with "
                    f"`{escape(json.dumps(approval.args, default=str))}`?",
                    300,
                ),
            },
            "confirm": {"type": "plain_text", "text": "Approve"},
            "deny": {"type": "plain_text", "text": "Cancel"},
            "style": "primary",
        }
    buttons = [approve]
    if "reject" in offered:
        buttons.append(_button(DENY_ACTION, "Deny", approval.id, "danger"))
    if "edit" in offered:
        buttons.append(_button(EDIT_ACTION, "Edit", approval.id))
    return [
        *_card_top(approval, f"Approval needed: {approval.tool}"),
        _context(
            f"Requested by {mention(approval.requester)} · may approve: "
            f"{_who_may_approve(approval)}{expiry}{_progress(approval, votes)}"
        ),
        {"type": "actions", "block_id": f"approval:{approval.id}", "elements": buttons},
    ]


def batch_card(approvals: list[Approval]) -> list[Block]:
    """'Approve all' / 'Deny all' for the calls one turn asked for; the value lists their ids.
    Past BATCH_LIMIT calls the ids do not fit a button, so each card is decided on its own."""
    tools = ", ".join(f"`{escape(a.tool)}`" for a in approvals)
    if len(approvals) > BATCH_LIMIT:
        return [
            _section(
                f"*{len(approvals)} calls wait for a decision:* {tools}\n"
                "Too many to decide at once: decide each card above."
            )
        ]
    ids = ",".join(a.id for a in approvals)
    return [
        _section(f"*{len(approvals)} calls wait for a decision:* {tools}"),
        {
            "type": "actions",
            "block_id": "approval_batch",
            "elements": [
                _button(APPROVE_ALL_ACTION, "Approve all", ids, "primary"),
                _button(DENY_ALL_ACTION, "Deny all", ids, "danger"),
            ],
        },
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
    return [
        *_card_top(approval, f"{approval.status.capitalize()}: {approval.tool}"),
        _section(outcome_line(approval, votes) + _edit_line(approval)),
        _context(f"Requested by {mention(approval.requester)}"),
    ]


def card_text(approval: Approval) -> str:
    """The notification / fallback text of a card."""
    if approval.status == "pending":
        return f"Approval needed: {approval.tool} (requested by {mention(approval.requester)})"
    return f"{approval.tool}: {outcome_line(approval)}"


def deny_modal(approval: Approval) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": "deny_reason",
        "private_metadata": approval.id,
        "title": {"type": "plain_text", "text": "Deny this call"},
        "submit": {"type": "plain_text", "text": "Deny"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            _section(
                f"Deny *`{escape(approval.tool)}`* requested by {mention(approval.requester)}?"
            ),
            {
                "type": "input",
                "block_id": "reason",
                "optional": True,
                "label": {"type": "plain_text", "text": "Reason (the agent reads it)"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": "reason",
                    "multiline": True,
                    "max_length": 1000,
                },
            },
        ],
    }


def notice(text: str) -> list[Block]:
    """A plain threaded notice as a single section (text already escaped by the caller)."""
    return [_section(text)]
