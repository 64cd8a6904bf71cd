"""Block Kit for approval messages and thread notices; pure functions, no I/O.

Everything that came from a person, the model or a tool is escaped before it goes
into mrkdwn, so `<!channel>` in an argument pings nobody, and cut to Slack's limits.
"""

from __future__ import annotations

import json
import time
from typing import Any

from bot.store import Approval

APPROVE_ACTION = "approval_approve"
DENY_ACTION = "approval_deny"

SECTION_TEXT_LIMIT = 3000
FIELD_LIMIT = 2000
HEADER_LIMIT = 150
FIELDS_PER_SECTION = 10
MAX_ARG_FIELDS = 20

Block = dict[str, Any]


def escape(text: str) -> str:
    """Slack's three control characters; anything else is literal in mrkdwn."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


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
    approvers = approval.policy.get("approvers") or []
    who = (
        ", ".join(f"<!subteam^{a}>" if a.startswith("S") else mention(a) for a in approvers)
        if approvers
        else "anyone in the channel"
    )
    if not approval.policy.get("allow_self_approval", True):
        who += f" (not {mention(approval.requester)})"
    return who


def _card_top(approval: Approval, title: str) -> list[Block]:
    blocks: list[Block] = [
        {"type": "header", "text": {"type": "plain_text", "text": cut(title, HEADER_LIMIT)}},
        _section(f"*`{escape(approval.tool)}`* — {escape(approval.description)}"),
        *_arg_sections(approval.args),
    ]
    return blocks


def approval_card(approval: Approval) -> list[Block]:
    expiry = f" · expires {clock(approval.expires_at)}" if approval.expires_at is not None else ""
    return [
        *_card_top(approval, f"Approval needed: {approval.tool}"),
        _context(
            f"Requested by {mention(approval.requester)} · may approve: "
            f"{_who_may_approve(approval)}{expiry}"
        ),
        {
            "type": "actions",
            "block_id": f"approval:{approval.id}",
            "elements": [
                {
                    "type": "button",
                    "action_id": APPROVE_ACTION,
                    "text": {"type": "plain_text", "text": "Approve"},
                    "style": "primary",
                    "value": approval.id,
                },
                {
                    "type": "button",
                    "action_id": DENY_ACTION,
                    "text": {"type": "plain_text", "text": "Deny"},
                    "style": "danger",
                    "value": approval.id,
                },
            ],
        },
    ]


def outcome_line(approval: Approval) -> str:
    """One line saying how the approval ended; 'expired' is never worded as a denial."""
    by = mention(approval.decided_by) if approval.decided_by else "someone"
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
        case _:
            return ":hourglass_flowing_sand: Waiting for a decision"


def decided_card(approval: Approval) -> list[Block]:
    return [
        *_card_top(approval, f"{approval.status.capitalize()}: {approval.tool}"),
        _section(outcome_line(approval)),
        _context(f"Requested by {mention(approval.requester)}"),
    ]


def card_text(approval: Approval) -> str:
    """The notification / fallback text of a card."""
    if approval.status == "pending":
        return f"Approval needed: {approval.tool} (requested by {mention(approval.requester)})"
    return f"{approval.tool}: {outcome_line(approval)}"


def notice(text: str) -> list[Block]:
    """A plain threaded notice as a single section (text already escaped by the caller)."""
    return [_section(text)]
