"""The names the model is shown for tools whose own names a function name cannot hold."""

from __future__ import annotations

import pytest
from langchain_core.tools import StructuredTool

from agent.toolnames import ModelToolNames, model_name
from agent.toolsets import ToolLoadError


def named(name: str) -> StructuredTool:
    return StructuredTool.from_function(lambda: "ok", name=name, description="A tool.")


def test_server_dot_tool_becomes_a_function_name() -> None:
    assert model_name("github.delete_repo") == "github__delete_repo"
    assert model_name("ops-team.restart pod") == "ops-team__restart_pod"
    ModelToolNames([named("github.delete_repo"), named("scale_down")])


def test_a_name_the_model_cannot_tell_apart_is_refused_at_startup() -> None:
    with pytest.raises(ToolLoadError, match=r"'github\.delete_repo'.*taken by another tool"):
        ModelToolNames([named("github.delete_repo"), named("github__delete_repo")])
    with pytest.raises(ToolLoadError, match="too long"):
        ModelToolNames([named("s." + "x" * 70)])
