"""What Slack checks in the blocks an app sends: Block Kit's limits and shapes, refused with
Slack's own `invalid_blocks` error, and the block and action ids Slack fills in."""

from __future__ import annotations

import copy
import json
from typing import Any

from slack_sdk.models.blocks import (
    ButtonElement,
    ConfirmObject,
    HeaderBlock,
    InteractiveElement,
    SectionBlock,
)
from slack_sdk.models.views import View

from bot.sandbox.records import ApiError, find_buttons, interactive_elements, random_id

# Slack's Block Kit limits, from slack-sdk's models where they carry them; exceeding them is
# the kind of bug (a long argument dump in a section) that only shows up in production if the
# emulator lets it through.
MAX_BLOCKS = 50  # in a message; the models carry only a view's
MAX_VIEW_BLOCKS = View.blocks_max_length
MAX_VIEW_TITLE = View.title_max_length
MAX_SECTION_TEXT = SectionBlock.text_max_length
MAX_SECTION_FIELDS = SectionBlock.fields_max_length
MAX_FIELD_TEXT = 2000  # a section field's text; not in the models
MAX_CONFIRM_TEXT = ConfirmObject.text_max_length
MAX_HEADER_TEXT = HeaderBlock.text_max_length
MAX_BUTTON_TEXT = ButtonElement.text_max_length
MAX_BUTTON_VALUE = ButtonElement.value_max_length
MAX_ACTION_ID = InteractiveElement.action_id_max_length


def decode_json_param(value: Any) -> Any:
    """Form-encoded calls send blocks and views as JSON strings; JSON calls send objects."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def normalize_blocks(raw: Any, limit: int = MAX_BLOCKS) -> list[dict[str, Any]]:
    """Validate blocks like Slack does and fill in the block_ids Slack generates; `limit` is
    50 for a message, 100 for a view."""
    if raw is None or raw == "":
        return []
    raw = decode_json_param(raw)
    if not isinstance(raw, list):
        raise ApiError(
            "invalid_blocks", response_metadata={"messages": ["[ERROR] must be an array"]}
        )
    problems: list[str] = []
    if len(raw) > limit:
        problems.append(f"[ERROR] no more than {limit} items allowed [json-pointer:/blocks]")
    blocks: list[dict[str, Any]] = []
    block_ids: set[str] = set()
    for index, item in enumerate(raw):
        pointer = f"/blocks/{index}"
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            problems.append(f"[ERROR] missing required field: type [json-pointer:{pointer}]")
            continue
        block = copy.deepcopy(item)
        block_id = str(block.setdefault("block_id", random_id(5)))
        for element in interactive_elements(block):
            element.setdefault("action_id", random_id(5))
        if block_id in block_ids:
            problems.append(f"[ERROR] duplicate block_id {block_id!r} [json-pointer:{pointer}]")
        block_ids.add(block_id)
        problems.extend(_block_problems(block, pointer))
        blocks.append(block)
    if problems:
        raise ApiError("invalid_blocks", response_metadata={"messages": problems})
    return blocks


def _text_of(obj: Any) -> str:
    return str(obj.get("text", "")) if isinstance(obj, dict) else ""


def _block_problems(block: dict[str, Any], pointer: str) -> list[str]:
    problems: list[str] = []
    kind = block["type"]
    if kind == "section" and len(_text_of(block.get("text"))) > MAX_SECTION_TEXT:
        problems.append(
            f"[ERROR] must be less than {MAX_SECTION_TEXT + 1} characters "
            f"[json-pointer:{pointer}/text/text]"
        )
    fields = block.get("fields") if kind == "section" else None
    if isinstance(fields, list):
        if len(fields) > MAX_SECTION_FIELDS:
            problems.append(
                f"[ERROR] no more than {MAX_SECTION_FIELDS} items allowed "
                f"[json-pointer:{pointer}/fields]"
            )
        for i, field in enumerate(fields):
            if len(_text_of(field)) > MAX_FIELD_TEXT:
                problems.append(
                    f"[ERROR] must be less than {MAX_FIELD_TEXT + 1} characters "
                    f"[json-pointer:{pointer}/fields/{i}/text]"
                )
    if kind == "header" and len(_text_of(block.get("text"))) > MAX_HEADER_TEXT:
        problems.append(
            f"[ERROR] must be less than {MAX_HEADER_TEXT + 1} characters "
            f"[json-pointer:{pointer}/text/text]"
        )
    if kind == "actions" and not isinstance(block.get("elements"), list):
        problems.append(f"[ERROR] missing required field: elements [json-pointer:{pointer}]")
    for element in interactive_elements(block):
        confirm = element.get("confirm")
        if isinstance(confirm, dict) and len(_text_of(confirm.get("text"))) > MAX_CONFIRM_TEXT:
            problems.append(
                f"[ERROR] confirm text must be less than {MAX_CONFIRM_TEXT + 1} characters "
                f"[json-pointer:{pointer}]"
            )
    action_ids: set[str] = set()
    for button in find_buttons([block]):
        where = f"[json-pointer:{pointer}]"
        if button.action_id in action_ids:
            problems.append(f"[ERROR] duplicate action_id {button.action_id!r} {where}")
        action_ids.add(button.action_id)
        if len(button.action_id) > MAX_ACTION_ID:
            problems.append(
                f"[ERROR] action_id must be less than {MAX_ACTION_ID + 1} characters {where}"
            )
        if not button.text or len(button.text) > MAX_BUTTON_TEXT:
            problems.append(f"[ERROR] button text must be 1-{MAX_BUTTON_TEXT} characters {where}")
        if button.value is not None and len(button.value) > MAX_BUTTON_VALUE:
            problems.append(
                f"[ERROR] button value must be less than {MAX_BUTTON_VALUE + 1} characters {where}"
            )
        if button.style not in (None, "primary", "danger"):
            problems.append(f"[ERROR] button style must be primary or danger {where}")
    return problems
