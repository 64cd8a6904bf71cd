"""Text for Block Kit: escaping, cutting to Slack's limits, and plain sections; pure functions.

Everything that came from a person, the model or a tool is escaped before it goes
into mrkdwn, so `<!channel>` in an argument pings nobody, and cut to Slack's limits.
"""

from __future__ import annotations

import time
from typing import Any

from slack_sdk.models.blocks import ConfirmObject, HeaderBlock, SectionBlock
from slack_sdk.models.views import View

# Block Kit's limits, from slack-sdk's models where it states them.
SECTION_TEXT_LIMIT = SectionBlock.text_max_length
FIELDS_PER_SECTION = SectionBlock.fields_max_length
HEADER_LIMIT = HeaderBlock.text_max_length
CONFIRM_TEXT_LIMIT = ConfirmObject.text_max_length
MODAL_BLOCK_LIMIT = View.blocks_max_length
MODAL_TITLE_LIMIT = View.title_max_length
FIELD_LIMIT = 2000  # a section field's text
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
    """A time each reader sees in their own time zone; the fallback (UTC) is for clients that
    cannot format it, and for notifications."""
    fallback = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(epoch))
    return f"<!date^{int(epoch)}^{{date_short_pretty}} at {{time}}|{fallback}>"


def section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": cut(text, SECTION_TEXT_LIMIT)}}


def code_sections(text: str) -> list[Block]:
    """`text` whole, escaped, as code blocks in as many sections as it takes."""
    return [section(f"```{chunk}```") for chunk in _chunks(text)]


def _chunks(text: str) -> list[str]:
    """`text` escaped, in pieces that each fit a section between ``` fences."""
    room = SECTION_TEXT_LIMIT - 6
    chunks: list[str] = []
    start = 0
    while start < len(text):
        size = room
        while len(piece := escape(text[start : start + size])) > room:
            size = size * 3 // 4
        chunks.append(piece)
        start += size
    return chunks or [""]


def notice(text: str) -> list[Block]:
    """A plain threaded notice as a single section (text already escaped by the caller)."""
    return [section(text)]
