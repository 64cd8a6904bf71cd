"""The Edit modal (`bot.edit_form`): inputs from the tool's schema, and what comes back
validated and coerced by that schema before any decision is recorded."""

from __future__ import annotations

from typing import Any, Literal

import pytest
from langchain_core.tools import tool
from slack_sdk.models.views import View

from bot.edit_form import JSON_BLOCK, EditError, edit_modal, parse_edit
from tests.support.approvals import an_approval


@tool
def scale_down(cluster_id: str, replicas: int, mode: Literal["soft", "hard"] = "soft") -> str:
    """Scale a cluster down."""
    return "ok"


@tool
def tag(labels: dict[str, list[int]]) -> str:
    """Too rich for simple inputs."""
    return "ok"


def typed(value: str) -> dict[str, Any]:
    return {"value": {"type": "plain_text_input", "value": value}}


def chosen(value: str) -> dict[str, Any]:
    return {"value": {"type": "static_select", "selected_option": {"value": value}}}


def test_the_modal_has_an_input_per_argument_filled_with_the_call() -> None:
    approval = an_approval(args={"cluster_id": "cl-001", "replicas": 2, "mode": "hard"})
    modal = edit_modal(approval, scale_down)
    View(**modal).validate_json()
    blocks = {b["block_id"]: b for b in modal["blocks"]}
    assert blocks["arg:cluster_id"]["element"]["initial_value"] == "cl-001"
    assert blocks["arg:replicas"]["element"]["initial_value"] == "2"
    assert blocks["arg:mode"]["element"]["initial_option"]["value"] == "hard"
    assert blocks["arg:mode"]["optional"] and not blocks["arg:replicas"]["optional"]


def test_what_comes_back_is_coerced_by_the_tools_schema() -> None:
    values = {"arg:cluster_id": typed("cl-002"), "arg:replicas": typed("3"), "arg:mode": {}}
    assert parse_edit(an_approval(), scale_down, values) == {
        "cluster_id": "cl-002",
        "replicas": 3,
    }
    values["arg:mode"] = chosen("hard")
    assert parse_edit(an_approval(), scale_down, values)["mode"] == "hard"


def test_a_bad_value_is_named_on_its_own_input() -> None:
    values = {"arg:cluster_id": typed("cl-002"), "arg:replicas": typed("three")}
    with pytest.raises(EditError) as raised:
        parse_edit(an_approval(), scale_down, values)
    assert list(raised.value.errors) == ["arg:replicas"]


def test_a_rich_schema_is_edited_as_json() -> None:
    approval = an_approval(tool="tag", args={"labels": {"a": [1]}})
    modal = edit_modal(approval, tag)
    assert [b["block_id"] for b in modal["blocks"]] == [JSON_BLOCK]
    edited = parse_edit(approval, tag, {JSON_BLOCK: typed('{"labels": {"b": [2, "3"]}}')})
    assert edited == {"labels": {"b": [2, 3]}}
    for text, problem in (("{", "Not valid JSON"), ("[1]", "must be a JSON object")):
        with pytest.raises(EditError, match=problem):
            parse_edit(approval, tag, {JSON_BLOCK: typed(text)})
    with pytest.raises(EditError, match="labels"):
        parse_edit(approval, tag, {JSON_BLOCK: typed('{"labels": 5}')})
