from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage
from langchain_openai import ChatOpenAI
from pydantic import SecretStr

from agent.demo_tools import DemoInventory, build_demo_tools
from tests.fakes.openai_server import (
    FakeOpenAI,
    Reply,
    reply_text,
    reply_tool_calls,
)


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


def client(fake: FakeOpenAI, **kwargs: Any) -> ChatOpenAI:
    return ChatOpenAI(
        api_key=SecretStr("test"),
        base_url=fake.base_url,
        model="fake-model",
        use_responses_api=False,
        max_retries=0,
        **kwargs,
    )


async def streamed(model: ChatOpenAI, text: str) -> AIMessageChunk:
    merged: AIMessageChunk | None = None
    async for chunk in model.astream(text):
        merged = chunk if merged is None else merged + chunk
    assert merged is not None
    return merged


async def test_base_url(fake: FakeOpenAI) -> None:
    assert fake.base_url.startswith("http://127.0.0.1:")
    assert fake.base_url.endswith("/v1")


async def test_scripted_text(fake: FakeOpenAI) -> None:
    fake.script(reply_text("All clusters look healthy."))
    result = await client(fake).ainvoke([HumanMessage("how are the clusters?")])
    assert isinstance(result, AIMessage)
    assert result.content == "All clusters look healthy."
    assert result.tool_calls == []
    assert result.response_metadata["finish_reason"] == "stop"
    assert result.response_metadata["id"].startswith("chatcmpl-")
    assert result.usage_metadata is not None
    assert result.usage_metadata["total_tokens"] > 0
    assert fake.requests == [
        {
            "model": "fake-model",
            "stream": False,
            "messages": [{"role": "user", "content": "how are the clusters?"}],
        }
    ]
    assert fake.pending_replies == 0


async def test_scripted_tool_calls(fake: FakeOpenAI) -> None:
    fake.script(
        reply_tool_calls(
            ("scale_down", {"cluster_id": "cl-001", "replicas": 2}),
            ("delete_cluster", {"cluster_id": "cl-003"}),
        )
    )
    result = await client(fake).ainvoke("scale down cl-001 and delete cl-003")
    assert isinstance(result, AIMessage)
    assert [(c["name"], c["args"]) for c in result.tool_calls] == [
        ("scale_down", {"cluster_id": "cl-001", "replicas": 2}),
        ("delete_cluster", {"cluster_id": "cl-003"}),
    ]
    ids = [c["id"] for c in result.tool_calls]
    assert all(i is not None and i.startswith("call_") for i in ids)
    assert len(set(ids)) == 2
    assert result.response_metadata["finish_reason"] == "tool_calls"


async def test_streamed_text(fake: FakeOpenAI) -> None:
    fake.script(reply_text("Scaled cl-001 down to 2 replicas."))
    result = await streamed(client(fake, stream_usage=True), "go")
    assert result.content == "Scaled cl-001 down to 2 replicas."
    assert result.response_metadata["finish_reason"] == "stop"
    assert result.usage_metadata is not None
    assert result.usage_metadata["output_tokens"] == 6
    assert fake.requests[0]["stream"] is True
    assert fake.requests[0]["stream_options"] == {"include_usage": True}


async def test_streamed_tool_calls(fake: FakeOpenAI) -> None:
    fake.script(
        reply_tool_calls(
            ("scale_down", {"cluster_id": "cl-001", "replicas": 2}),
            ("drop_table", {"table": "audit_2019"}),
            content="On it.",
        )
    )
    result = await streamed(client(fake), "go")
    assert result.content == "On it."
    assert [(c["name"], c["args"]) for c in result.tool_calls] == [
        ("scale_down", {"cluster_id": "cl-001", "replicas": 2}),
        ("drop_table", {"table": "audit_2019"}),
    ]
    assert all((c["id"] or "").startswith("call_") for c in result.tool_calls)
    assert result.response_metadata["finish_reason"] == "tool_calls"
    assert result.usage_metadata is None  # not asked for


async def test_streaming_client_invoke(fake: FakeOpenAI) -> None:
    fake.script(reply_tool_calls(("list_clusters", {})))
    result = await client(fake, streaming=True).ainvoke("list")
    assert [(c["name"], c["args"]) for c in result.tool_calls] == [("list_clusters", {})]
    assert fake.requests[0]["stream"] is True


async def test_bound_tools_are_sent(fake: FakeOpenAI, tmp_path: Path) -> None:
    tools = build_demo_tools(DemoInventory(tmp_path / "inventory.sqlite"))
    await client(fake).bind_tools(tools).ainvoke("hi")
    sent = fake.requests[0]["tools"]
    assert [t["function"]["name"] for t in sent] == [t.name for t in tools]


async def test_callable_reply_sees_the_request(fake: FakeOpenAI) -> None:
    seen: list[dict[str, Any]] = []

    def echo_last_role(body: dict[str, Any]) -> Reply:
        seen.append(body)
        return reply_text(f"last role: {body['messages'][-1]['role']}")

    fake.script(echo_last_role)
    result = await client(fake).ainvoke([HumanMessage("hello")])
    assert result.content == "last role: user"
    assert seen == fake.requests


async def test_unscripted_turn_gets_the_default_reply(fake: FakeOpenAI) -> None:
    fake.script(reply_text("scripted"))
    model = client(fake)
    assert (await model.ainvoke("first")).content == "scripted"
    assert (await model.ainvoke("second")).content == "(unscripted) last user message: second"
    assert (await streamed(model, "third")).content == "(unscripted) last user message: third"


async def test_fail_next_surfaces_without_retries(fake: FakeOpenAI) -> None:
    fake.script(reply_text("after the failure"))
    fake.fail_next(status=500, times=1)
    model = client(fake)
    with pytest.raises(openai.InternalServerError, match="Injected failure"):
        await model.ainvoke("hi")
    # The failure used no scripted reply, and only the one request failed.
    assert (await model.ainvoke("hi")).content == "after the failure"
    assert len(fake.requests) == 2


async def test_fail_next_with_streaming_and_429(fake: FakeOpenAI) -> None:
    fake.fail_next(status=429)
    with pytest.raises(openai.RateLimitError):
        await streamed(client(fake), "hi")


async def test_retrying_client_recovers_quickly(fake: FakeOpenAI) -> None:
    fake.script(reply_text("third time lucky"))
    fake.fail_next(status=503, times=2)
    model = ChatOpenAI(
        api_key=SecretStr("test"),
        base_url=fake.base_url,
        model="fake-model",
        use_responses_api=False,
        max_retries=2,
    )
    result = await model.ainvoke("hi")
    assert result.content == "third time lucky"
    assert len(fake.requests) == 3


async def test_models_endpoint(fake: FakeOpenAI) -> None:
    async with openai.AsyncOpenAI(api_key="test", base_url=fake.base_url) as api:
        models = await api.models.list()
    assert [m.id for m in models.data] == ["fake-model"]


async def test_bad_json_is_a_400(fake: FakeOpenAI) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{fake.base_url}/chat/completions", data=b"{not json") as response,
    ):
        assert response.status == 400
        assert "not JSON" in (await response.json())["error"]["message"]
    assert fake.requests == []


async def test_stop_and_restart() -> None:
    fake = FakeOpenAI()
    with pytest.raises(RuntimeError):
        _ = fake.base_url
    await fake.start()
    await fake.stop()
    with pytest.raises(RuntimeError):
        _ = fake.base_url


async def test_drives_a_real_agent(fake: FakeOpenAI, tmp_path: Path) -> None:
    inventory = DemoInventory(tmp_path / "inventory.sqlite")

    def summarise(body: dict[str, Any]) -> Reply:
        last = body["messages"][-1]
        assert last["role"] == "tool"
        return reply_text(f"Done: {last['content']}")

    fake.script(
        reply_tool_calls(("scale_down", {"cluster_id": "cl-001", "replicas": 2})), summarise
    )
    agent = create_agent(model=client(fake), tools=build_demo_tools(inventory))
    state = await agent.ainvoke({"messages": [HumanMessage("scale down cl-001 to 2")]})
    assert state["messages"][-1].content == "Done: Scaled cl-001 down from 5 to 2 replicas."
    assert (await inventory.get_cluster("cl-001")).replicas == 2
    assert fake.requests[1]["messages"][1]["tool_calls"][0]["function"]["name"] == "scale_down"
