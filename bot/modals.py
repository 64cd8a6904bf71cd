"""The modals a card opens: every argument whole, and the reason for a denial."""

from __future__ import annotations

import json
from typing import Any

from bot.mrkdwn import (
    MODAL_BLOCK_LIMIT,
    MODAL_TITLE_LIMIT,
    Block,
    code_sections,
    count,
    cut,
    escape,
    mention,
    section,
)
from bot.store import Approval


def args_modal(approval: Approval) -> dict[str, Any]:
    """Every argument of a call, whole: code blocks of at most a section's text each."""
    blocks: list[Block] = [
        section(
            f"*`{escape(approval.tool)}`* requested by {mention(approval.requester)} — "
            f"{count(len(approval.args), 'argument')}"
        )
    ]
    for key, value in approval.args.items():
        text = value if isinstance(value, str) else json.dumps(value, indent=2, default=str)
        blocks.append({"type": "header", "text": {"type": "plain_text", "text": cut(key, 150)}})
        blocks.extend(code_sections(text))
    if len(blocks) > MODAL_BLOCK_LIMIT:
        hidden = len(blocks) - MODAL_BLOCK_LIMIT + 1
        blocks = blocks[: MODAL_BLOCK_LIMIT - 1]
        blocks.append(
            section(
                f"_{count(hidden, 'more part')} too long for one Slack view: "
                "`slack-approvals audit --json` has every argument whole._"
            )
        )
    return {
        "type": "modal",
        "callback_id": "show_args",
        "title": {"type": "plain_text", "text": cut("All arguments", MODAL_TITLE_LIMIT)},
        "close": {"type": "plain_text", "text": "Close"},
        "blocks": blocks,
    }


def deny_modal(approval: Approval) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": "deny_reason",
        "private_metadata": approval.id,
        "title": {"type": "plain_text", "text": "Deny this call"},
        "submit": {"type": "plain_text", "text": "Deny"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            section(
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
