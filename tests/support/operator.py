"""A fake model whose answers depend only on the conversation, not on the order of requests:
several bot processes share one fake, and a restarted bot asks again in any order."""

from __future__ import annotations

import re
from typing import Any

from tests.fakes.openai_server import FakeOpenAI, Reply, message_text, reply_text, reply_tool_calls

ENOUGH_REPLIES = 5000

_SCALE = re.compile(r"scale down (?P<id>\S+) to (?P<n>\d+)")
_ONE_ARG = re.compile(r"(?P<verb>restart|drain|wipe) (?P<id>\S+)")
_TOOL_OF = {"restart": "restart_service", "drain": "drain_node", "wipe": "wipe_cache"}
# The MCP test server's tool (tests.support.mcp_server), as the model calls it.
_DELETE_REPO = re.compile(r"delete repo (?P<name>\S+)")


def operator(body: dict[str, Any]) -> Reply:
    last = body["messages"][-1]
    text = message_text(last)
    if last.get("role") == "tool":
        return reply_text(f"Summary: {text}")
    if scales := list(_SCALE.finditer(text)):
        return reply_tool_calls(
            *(("scale_down", {"cluster_id": m["id"], "replicas": int(m["n"])}) for m in scales)
        )
    if match := _DELETE_REPO.search(text):
        return reply_tool_calls(("infra__delete_repo", {"name": match["name"]}))
    if match := _ONE_ARG.search(text):
        return reply_tool_calls((_TOOL_OF[match["verb"]], {"cluster_id": match["id"]}))
    return reply_text(f"You said: {text}")


async def operator_model() -> FakeOpenAI:
    """A started fake that answers every request with `operator`."""
    fake = FakeOpenAI()
    await fake.start()
    fake.script(*[operator] * ENOUGH_REPLIES)
    return fake
