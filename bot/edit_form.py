"""The Edit modal: inputs built from a tool's argument schema, and validation of what comes back.

LangGraph hands an edited call to the tool exactly as sent, with no coercion, so the
values are validated and coerced with the tool's own schema here, before the decision
is recorded. Schemas too rich for simple inputs fall back to one JSON field.
"""

from __future__ import annotations

import json
from typing import Any

from langchain_core.tools import BaseTool
from pydantic import BaseModel, ValidationError
from slack_sdk.models.blocks import InputBlock, Option, StaticSelectElement
from slack_sdk.models.views import View

from bot.blocks import cut
from bot.store import Approval

JSON_BLOCK = "args_json"
SIMPLE_TYPES = {"string", "integer", "number", "boolean"}
INPUT_LIMIT = 3000  # a plain_text_input's value; slack-sdk's models do not carry it


class EditError(ValueError):
    """Bad input in the modal: block id → message, as Slack's `response_action: errors`."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = errors


def _schema(tool: BaseTool | None) -> tuple[type[BaseModel] | None, dict[str, Any]]:
    schema = tool.tool_call_schema if tool is not None else None
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        return schema, schema.model_json_schema()
    return None, dict(schema) if isinstance(schema, dict) else {}


def _fields(json_schema: dict[str, Any]) -> dict[str, dict[str, Any]] | None:
    """The properties if every one of them fits a simple input, else None (use JSON)."""
    properties: dict[str, dict[str, Any]] = json_schema.get("properties") or {}
    if not properties:
        return None
    for spec in properties.values():
        if "enum" not in spec and spec.get("type") not in SIMPLE_TYPES:
            return None
    return properties


def _text(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def edit_modal(approval: Approval, tool: BaseTool | None) -> dict[str, Any]:
    _, json_schema = _schema(tool)
    fields = _fields(json_schema)
    required = set(json_schema.get("required") or ())
    blocks: list[dict[str, Any]] = []
    if fields is None:
        blocks.append(
            _input(
                JSON_BLOCK,
                "Arguments (JSON)",
                {
                    "type": "plain_text_input",
                    "action_id": "value",
                    "multiline": True,
                    "initial_value": cut(
                        json.dumps(approval.args, indent=2, default=str), INPUT_LIMIT
                    ),
                },
                optional=False,
            )
        )
    else:
        for name, spec in fields.items():
            current = approval.args.get(name)
            label = f"{spec.get('title') or name} ({spec.get('type', 'choice')})"
            if "enum" in spec:
                options = [_option(str(v)) for v in spec["enum"]][
                    : StaticSelectElement.options_max_length
                ]
                element: dict[str, Any] = {
                    "type": "static_select",
                    "action_id": "value",
                    "options": options,
                }
                if current is not None and str(current) in [str(v) for v in spec["enum"]]:
                    element["initial_option"] = _option(str(current))
            else:
                element = {"type": "plain_text_input", "action_id": "value"}
                if current is not None:
                    element["initial_value"] = cut(_text(current), INPUT_LIMIT)
            blocks.append(_input(f"arg:{name}", label, element, optional=name not in required))
    return {
        "type": "modal",
        "callback_id": "edit_args",
        "private_metadata": approval.id,
        "title": {
            "type": "plain_text",
            "text": cut(f"Edit {approval.tool}", View.title_max_length),
        },
        "submit": {"type": "plain_text", "text": "Approve edited"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": blocks,
    }


def _option(value: str) -> dict[str, Any]:
    return {
        "text": {"type": "plain_text", "text": cut(value, Option.label_max_length)},
        "value": value,
    }


def _input(block_id: str, label: str, element: dict[str, Any], *, optional: bool) -> dict[str, Any]:
    return {
        "type": "input",
        "block_id": block_id,
        "optional": optional,
        "label": {"type": "plain_text", "text": cut(label, InputBlock.label_max_length)},
        "element": element,
    }


def parse_edit(approval: Approval, tool: BaseTool | None, values: dict[str, Any]) -> dict[str, Any]:
    """The edited arguments, validated and coerced by the tool's schema; EditError if not."""
    model, json_schema = _schema(tool)
    if JSON_BLOCK in values:
        raw_text = _submitted(values[JSON_BLOCK]) or ""
        try:
            raw = json.loads(raw_text)
        except json.JSONDecodeError as exc:
            raise EditError(
                {JSON_BLOCK: f"Not valid JSON: {exc.msg} (line {exc.lineno})"}
            ) from None
        except RecursionError:
            raise EditError({JSON_BLOCK: "The JSON is nested too deeply."}) from None
        if not isinstance(raw, dict):
            raise EditError({JSON_BLOCK: "The arguments must be a JSON object."})
        block_of = {name: JSON_BLOCK for name in raw}
    else:
        properties = _fields(json_schema) or {}
        raw = {}
        block_of = {}
        for name, spec in properties.items():
            block = f"arg:{name}"
            block_of[name] = block
            text = _submitted(values.get(block, {}))
            if text is None or text == "":
                continue
            raw[name] = _decode(text, spec)
    if model is None:
        return raw
    try:
        validated = model.model_validate(raw)
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for err in exc.errors():
            name = str(err["loc"][0]) if err["loc"] else ""
            block = block_of.get(
                name,
                JSON_BLOCK if JSON_BLOCK in values else next(iter(block_of.values()), JSON_BLOCK),
            )
            errors.setdefault(block, f"{name}: {err['msg']}" if name else str(err["msg"]))
        raise EditError(errors) from None
    return validated.model_dump(mode="json", exclude_unset=True)


def _submitted(state: object) -> str | None:
    """The text one input sent, or None; the payload's shape is checked, not assumed."""
    element = state.get("value") if isinstance(state, dict) else None
    if not isinstance(element, dict):
        return None
    value = element.get("value")
    if element.get("type") == "static_select":
        option = element.get("selected_option")
        value = option.get("value") if isinstance(option, dict) else None
    return value if isinstance(value, str) else None


def _decode(text: str, spec: dict[str, Any]) -> Any:
    """Numbers and booleans arrive as text; pydantic's lax mode then checks them."""
    if spec.get("type") in {"integer", "number", "boolean"}:
        try:
            return json.loads(text.strip().lower() if spec.get("type") == "boolean" else text)
        except (json.JSONDecodeError, RecursionError):
            return text
    return text
