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

from bot.mrkdwn import MODAL_BLOCK_LIMIT, code_sections, cut, escape, section
from bot.store import Approval

JSON_BLOCK = "args_json"
TEXT_INPUT_LIMIT = 3000  # the most a plain_text_input holds
SIMPLE_TYPES = {"string", "integer", "number", "boolean"}


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


def _editable(approval: Approval, name: str) -> bool:
    allowed = approval.policy.editable
    return allowed is None or name in allowed


def _fits(value: object) -> bool:
    """Whether a text input can hold the value whole; a longer one is shown, not edited, so
    an edit never cuts what nobody touched."""
    return len(_text(value)) <= TEXT_INPUT_LIMIT


def kept_args(approval: Approval, editable: set[str]) -> dict[str, Any]:
    """The arguments the modal does not offer for change: they run exactly as asked."""
    return {k: v for k, v in approval.args.items() if k not in editable}


def edit_modal(approval: Approval, tool: BaseTool | None) -> dict[str, Any]:
    _, json_schema = _schema(tool)
    fields = _fields(json_schema)
    required = set(json_schema.get("required") or ())
    names = list(fields) if fields is not None else list(approval.args)
    editable = {n for n in names if _editable(approval, n) and _fits(approval.args.get(n, ""))}
    blocks: list[dict[str, Any]] = []
    for name, value in kept_args(approval, editable).items():
        why = "not editable (policy)" if not _editable(approval, name) else "too long to edit"
        blocks.append(section(f"*{escape(name)}* — _{why}; runs as it is_"))
        blocks.extend(code_sections(_text(value)))
    if fields is None:
        editable_args = {k: v for k, v in approval.args.items() if k in editable}
        initial = json.dumps(editable_args, indent=2, default=str)
        if editable_args and len(initial) <= TEXT_INPUT_LIMIT:
            blocks.append(
                _input(
                    JSON_BLOCK,
                    "Arguments you may change (JSON)",
                    {
                        "type": "plain_text_input",
                        "action_id": "value",
                        "multiline": True,
                        "initial_value": initial,
                    },
                    optional=False,
                )
            )
    else:
        for name, spec in fields.items():
            if name not in editable:
                continue
            current = approval.args.get(name)
            label = f"{spec.get('title') or name} ({spec.get('type', 'choice')})"
            if "enum" in spec:
                options = [_option(str(v)) for v in spec["enum"]][:100]
                element: dict[str, Any] = {
                    "type": "static_select",
                    "action_id": "value",
                    "options": options,
                }
                if current is not None and str(current) in [str(v) for v in spec["enum"]]:
                    element["initial_option"] = _option(str(current))
            else:
                element = {
                    "type": "plain_text_input",
                    "action_id": "value",
                    "max_length": TEXT_INPUT_LIMIT,
                }
                if current is not None:
                    element["initial_value"] = _text(current)
            blocks.append(_input(f"arg:{name}", label, element, optional=name not in required))
    return {
        "type": "modal",
        "callback_id": "edit_args",
        "private_metadata": approval.id,
        "title": {"type": "plain_text", "text": cut(f"Edit {approval.tool}", 24)},
        "submit": {"type": "plain_text", "text": "Approve edited"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": blocks[:MODAL_BLOCK_LIMIT],
    }


def _option(value: str) -> dict[str, Any]:
    return {"text": {"type": "plain_text", "text": cut(value, 75)}, "value": value}


def _input(block_id: str, label: str, element: dict[str, Any], *, optional: bool) -> dict[str, Any]:
    return {
        "type": "input",
        "block_id": block_id,
        "optional": optional,
        "label": {"type": "plain_text", "text": cut(label, 2000)},
        "element": element,
    }


def parse_edit(approval: Approval, tool: BaseTool | None, values: dict[str, Any]) -> dict[str, Any]:
    """The arguments to run: what the modal offered, as edited, and the rest exactly as asked,
    validated and coerced by the tool's schema as a whole; EditError if not."""
    model, json_schema = _schema(tool)
    properties = _fields(json_schema)
    names = list(properties) if properties is not None else list(approval.args)
    editable = {n for n in names if _editable(approval, n) and _fits(approval.args.get(n, ""))}
    if JSON_BLOCK in values:
        raw_text = _submitted(values[JSON_BLOCK]) or ""
        try:
            edited = json.loads(raw_text)
        except json.JSONDecodeError as exc:
            raise EditError(
                {JSON_BLOCK: f"Not valid JSON: {exc.msg} (line {exc.lineno})"}
            ) from None
        except RecursionError:
            raise EditError({JSON_BLOCK: "The JSON is nested too deeply."}) from None
        if not isinstance(edited, dict):
            raise EditError({JSON_BLOCK: "The arguments must be a JSON object."})
        locked = sorted(k for k in edited if k not in editable and k in approval.args)
        if locked:
            raise EditError({JSON_BLOCK: f"These may not be changed here: {', '.join(locked)}"})
        block_of = {name: JSON_BLOCK for name in edited}
    else:
        edited = {}
        block_of = {}
        for name, spec in (properties or {}).items():
            if name not in editable:
                continue
            block = f"arg:{name}"
            block_of[name] = block
            text = _submitted(values.get(block, {}))
            if text is None or text == "":
                continue
            edited[name] = _decode(text, spec)
    raw = {**kept_args(approval, editable), **edited}
    if model is None:
        return raw
    try:
        validated = model.model_validate(raw)
    except ValidationError as exc:
        errors: dict[str, str] = {}
        fallback = JSON_BLOCK if JSON_BLOCK in values else next(iter(block_of.values()), "")
        for err in exc.errors():
            name = str(err["loc"][0]) if err["loc"] else ""
            block = block_of.get(name, fallback)
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
