from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain.agents.middleware import HumanInTheLoopMiddleware
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.messages.tool import tool_call
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from agent.demo_tools import DemoInventory, build_demo_tools
from agent.offline_model import HITL_SOURCE, OFFLINE_NOTE, OfflineChatModel

SCALED = (
    "Ran `scale_down` (cluster_id=cl-001, replicas=2): Scaled cl-001 down from 5 to 2 replicas."
)


@pytest.fixture
def inventory(tmp_path: Path) -> DemoInventory:
    return DemoInventory(tmp_path / "inventory.sqlite")


@pytest.fixture
def tools(inventory: DemoInventory) -> list[BaseTool]:
    return build_demo_tools(inventory)


def bound_model(names: list[str] | None = None) -> OfflineChatModel:
    model = OfflineChatModel().bind_tools(build_demo_tools(DemoInventory("unused.sqlite")))
    assert isinstance(model, OfflineChatModel)
    if names is not None:
        model = model.model_copy(update={"bound_tools": tuple(names)})
    return model


async def answer(model: OfflineChatModel, messages: list[BaseMessage]) -> AIMessage:
    result = await model.ainvoke(messages)
    assert isinstance(result, AIMessage)
    return result


def calls(message: AIMessage) -> list[tuple[str, dict[str, Any]]]:
    return [(c["name"], c["args"]) for c in message.tool_calls]


def test_bind_tools_remembers_names() -> None:
    model = OfflineChatModel()
    assert model.bound_tools == ()
    bound = model.bind_tools(
        [
            *build_demo_tools(DemoInventory("unused.sqlite"))[:2],
            {"type": "function", "function": {"name": "restart_pod", "parameters": {}}},
        ],
        tool_choice="auto",
    )
    assert isinstance(bound, OfflineChatModel)
    assert bound.bound_tools == ("list_clusters", "describe_cluster", "restart_pod")
    assert model.bound_tools == ()  # binding returns a copy
    assert model._llm_type == "offline-rule-based"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("scale down cl-001 to 2", ("scale_down", {"cluster_id": "cl-001", "replicas": 2})),
        (
            "scale cl-001 down to 2 replicas",
            ("scale_down", {"cluster_id": "cl-001", "replicas": 2}),
        ),
        (
            "Please scale down cluster cl-004 to 0.",
            ("scale_down", {"cluster_id": "cl-004", "replicas": 0}),
        ),
        ("delete cluster cl-003", ("delete_cluster", {"cluster_id": "cl-003"})),
        ("Delete the cluster cl-003!", ("delete_cluster", {"cluster_id": "cl-003"})),
        ("terminate instance i-0abc", ("terminate_instance", {"instance_id": "i-0abc"})),
        ("drop table audit_2019", ("drop_table", {"table": "audit_2019"})),
        ("list clusters", ("list_clusters", {})),
        ("can you list all clusters?", ("list_clusters", {})),
        ("describe cl-002", ("describe_cluster", {"cluster_id": "cl-002"})),
        ("describe cluster cl-002", ("describe_cluster", {"cluster_id": "cl-002"})),
        ("what's the status of cl-002?", ("describe_cluster", {"cluster_id": "cl-002"})),
        (
            "<@U0BOT> scale down cl-001 to 2",
            ("scale_down", {"cluster_id": "cl-001", "replicas": 2}),
        ),
    ],
)
async def test_parses_each_phrase(text: str, expected: tuple[str, dict[str, Any]]) -> None:
    result = await answer(bound_model(), [HumanMessage(text)])
    assert calls(result) == [expected]
    assert result.content == ""
    assert (result.tool_calls[0]["id"] or "").startswith("call_")


async def test_several_requests_in_one_message() -> None:
    result = await answer(
        bound_model(),
        [
            HumanMessage(
                "<@U0BOT> scale down cl-001 to 2 and delete cluster cl-003, then list clusters"
            )
        ],
    )
    assert calls(result) == [
        ("scale_down", {"cluster_id": "cl-001", "replicas": 2}),
        ("delete_cluster", {"cluster_id": "cl-003"}),
        ("list_clusters", {}),
    ]
    ids = [c["id"] for c in result.tool_calls]
    assert len(set(ids)) == 3


async def test_mention_is_not_taken_for_an_id() -> None:
    result = await answer(bound_model(), [HumanMessage("describe <@U0BOT> cl-002")])
    assert calls(result) == [("describe_cluster", {"cluster_id": "cl-002"})]


async def test_ids_are_unique_across_turns() -> None:
    model = bound_model()
    first = await answer(model, [HumanMessage("list clusters")])
    second = await answer(model, [HumanMessage("list clusters")])
    assert first.tool_calls[0]["id"] != second.tool_calls[0]["id"]


async def test_unrecognised_gets_help() -> None:
    result = await answer(bound_model(), [HumanMessage("hello there")])
    assert not result.tool_calls
    assert isinstance(result.content, str)
    assert "`scale down cl-001 to 2`" in result.content
    assert "`drop table audit_2019`" in result.content
    assert result.content.endswith(OFFLINE_NOTE)


async def test_only_bound_tools_are_called() -> None:
    model = bound_model(["list_clusters", "describe_cluster"])
    result = await answer(model, [HumanMessage("delete cluster cl-003 and list clusters")])
    assert calls(result) == [("list_clusters", {})]
    help_text = await answer(model, [HumanMessage("delete cluster cl-003")])
    assert not help_text.tool_calls
    assert "delete" not in help_text.text
    assert "`list clusters`" in help_text.text


async def test_without_tools_it_says_so() -> None:
    result = await answer(OfflineChatModel(), [HumanMessage("list clusters")])
    assert not result.tool_calls
    assert "no tools" in result.text
    assert result.text.endswith(OFFLINE_NOTE)


def test_sync_invoke() -> None:
    result = bound_model().invoke([HumanMessage("describe cl-002")])
    assert isinstance(result, AIMessage)
    assert calls(result) == [("describe_cluster", {"cluster_id": "cl-002"})]


def asked(*requests: tuple[str, dict[str, Any]]) -> AIMessage:
    return AIMessage(
        content="",
        tool_calls=[tool_call(name=n, args=a, id=f"call_{i}") for i, (n, a) in enumerate(requests)],
    )


async def test_summary_of_success_rejection_and_error() -> None:
    rejection = ToolMessage(
        "User rejected the tool call for `delete_cluster` with reason: not during the freeze",
        name="delete_cluster",
        tool_call_id="call_1",
        status="error",
        additional_kwargs={"lc_source": HITL_SOURCE, "lc_data": {"decision": "reject"}},
    )
    messages: list[BaseMessage] = [
        HumanMessage("scale down cl-001 to 2, delete cluster cl-003 and drop table orders"),
        asked(
            ("scale_down", {"cluster_id": "cl-001", "replicas": 2}),
            ("delete_cluster", {"cluster_id": "cl-003"}),
            ("drop_table", {"table": "orders"}),
        ),
        ToolMessage(
            "Scaled cl-001 down from 5 to 2 replicas.", name="scale_down", tool_call_id="call_0"
        ),
        rejection,
        ToolMessage(
            "Unknown table 'orders'.", name="drop_table", tool_call_id="call_2", status="error"
        ),
    ]
    result = await answer(bound_model(), messages)
    assert not result.tool_calls
    assert result.text.splitlines() == [
        SCALED,
        "I did not run `delete_cluster` (cluster_id=cl-003): User rejected the tool call for "
        "`delete_cluster` with reason: not during the freeze. Nothing was changed.",
        "`drop_table` (table=orders) failed: Unknown table 'orders'.",
        OFFLINE_NOTE,
    ]


async def test_expiry_notice_reaches_the_answer() -> None:
    notice = (
        "User rejected the tool call for `scale_down` with reason: nobody decided within 30 "
        "minutes, so the request expired."
    )
    expired = ToolMessage(
        notice,
        name="scale_down",
        tool_call_id="call_0",
        status="error",
        additional_kwargs={"lc_source": HITL_SOURCE},
    )
    result = await answer(
        bound_model(), [asked(("scale_down", {"cluster_id": "cl-001", "replicas": 2})), expired]
    )
    assert "nobody decided within 30 minutes, so the request expired. Nothing was changed." in (
        result.text
    )


async def test_multiline_result_starts_on_its_own_line() -> None:
    result = await answer(
        bound_model(),
        [
            asked(("list_clusters", {})),
            ToolMessage(
                "cl-001: running\ncl-002: running", name="list_clusters", tool_call_id="call_0"
            ),
        ],
    )
    assert result.text.splitlines()[:3] == [
        "Ran `list_clusters`:",
        "cl-001: running",
        "cl-002: running",
    ]


async def test_agent_runs_tools_end_to_end(tools: list[BaseTool], inventory: DemoInventory) -> None:
    agent = create_agent(model=OfflineChatModel(), tools=tools)
    state = await agent.ainvoke(
        {
            "messages": [
                HumanMessage("<@U0BOT> scale cl-001 down to 2 replicas and delete cluster cl-003")
            ]
        }
    )
    messages = state["messages"]
    assert [type(m).__name__ for m in messages] == [
        "HumanMessage",
        "AIMessage",
        "ToolMessage",
        "ToolMessage",
        "AIMessage",
    ]
    assert messages[-1].text.splitlines() == [
        SCALED,
        "Ran `delete_cluster` (cluster_id=cl-003): Deleted cluster cl-003 (legacy-batch).",
        OFFLINE_NOTE,
    ]
    assert (await inventory.get_cluster("cl-001")).replicas == 2
    assert (await inventory.get_cluster("cl-003")).status == "deleted"


async def test_agent_reports_tool_errors(tools: list[BaseTool], inventory: DemoInventory) -> None:
    agent = create_agent(model=OfflineChatModel(), tools=tools)
    state = await agent.ainvoke({"messages": [HumanMessage("scale down cl-002 to 7")]})
    final = state["messages"][-1].text
    assert final.startswith("`scale_down` (cluster_id=cl-002, replicas=7) failed: Cannot scale")
    assert (await inventory.get_cluster("cl-002")).replicas == 3


async def test_agent_memory_spans_turns(tools: list[BaseTool]) -> None:
    agent = create_agent(model=OfflineChatModel(), tools=tools, checkpointer=InMemorySaver())
    config: RunnableConfig = {"configurable": {"thread_id": "slack:T1:C1:1.0"}}
    await agent.ainvoke({"messages": [HumanMessage("scale down cl-004 to 1")]}, config)
    state = await agent.ainvoke({"messages": [HumanMessage("describe cl-004")]}, config)
    assert "running, 1 replica" in state["messages"][-1].text
    assert len(state["messages"]) == 8


# One conversation of the agents below.
HITL_THREAD: RunnableConfig = {"configurable": {"thread_id": "t"}}


def gated_agent(tools: list[BaseTool], *gated: str) -> Any:
    """The offline model behind LangChain's own approval gate on `gated`, in memory."""
    return create_agent(
        model=OfflineChatModel(),
        tools=tools,
        checkpointer=InMemorySaver(),
        middleware=[
            HumanInTheLoopMiddleware(
                interrupt_on=dict.fromkeys(gated, True), interrupt_mode="per_call"
            )
        ],
    )


async def test_real_hitl_rejection_is_reported(
    tools: list[BaseTool], inventory: DemoInventory
) -> None:
    # The marker the summary relies on, as the middleware really writes it.
    agent = gated_agent(tools, "scale_down", "delete_cluster")
    await agent.ainvoke(
        {"messages": [HumanMessage("scale down cl-001 to 2 and delete cluster cl-003")]},
        HITL_THREAD,
    )
    pending = {i.value["name"]: i.id for i in (await agent.aget_state(HITL_THREAD)).interrupts}
    state = await agent.ainvoke(
        Command(
            resume={
                pending["scale_down"]: {"type": "approve"},
                pending["delete_cluster"]: {"type": "reject", "message": "too risky"},
            }
        ),
        HITL_THREAD,
    )
    assert state["messages"][-1].text.splitlines() == [
        SCALED,
        "I did not run `delete_cluster` (cluster_id=cl-003): User rejected the tool call for "
        "`delete_cluster` with reason: too risky. Nothing was changed.",
        OFFLINE_NOTE,
    ]
    assert (await inventory.get_cluster("cl-003")).status == "running"


async def test_real_hitl_edit_reports_what_ran(
    tools: list[BaseTool], inventory: DemoInventory
) -> None:
    # The AI message keeps the proposed replicas=2; the summary must show the edited 3.
    agent = gated_agent(tools, "scale_down")
    await agent.ainvoke({"messages": [HumanMessage("scale down cl-001 to 2")]}, HITL_THREAD)
    (pending,) = (await agent.aget_state(HITL_THREAD)).interrupts
    edit = {
        "type": "edit",
        "edited_action": {"name": "scale_down", "args": {"cluster_id": "cl-001", "replicas": 3}},
    }
    state = await agent.ainvoke(Command(resume={pending.id: edit}), HITL_THREAD)
    assert state["messages"][-1].text.splitlines() == [
        "Ran `scale_down` (cluster_id=cl-001, replicas=3) as edited by a reviewer: "
        "Scaled cl-001 down from 5 to 3 replicas.",
        OFFLINE_NOTE,
    ]
    assert (await inventory.get_cluster("cl-001")).replicas == 3


async def test_any_bound_tool_can_be_called_by_name() -> None:
    """Tools no phrase covers (a team's own, an MCP server's) are called as
    `call NAME with {json}`, by the policy's `server.tool` name or the model-facing one."""
    model = bound_model(["list_clusters", "infra__delete_repo", "ping"])
    said = 'call infra.delete_repo with {"name": "web", "force": true} and call ping'
    reply = await answer(model, [HumanMessage(said)])
    assert calls(reply) == [("infra__delete_repo", {"name": "web", "force": True}), ("ping", {})]
    assert calls(await answer(model, [HumanMessage("call nothing_bound")])) == []
    helped = (await answer(model, [HumanMessage("hello")])).text
    assert "`call infra__delete_repo with {…its arguments as JSON…}`" in helped
