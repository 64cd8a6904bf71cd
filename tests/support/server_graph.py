"""A team's agent as LangGraph Server runs it: `langgraph dev` loads `graph` (per-call review)
and `batched_graph` (one review per model turn) from here, per `langgraph.json`, and `auth`
when the test asks for an API key.

The tools run in the server's process, so each execution is appended to the file named by
`SERVER_TOOLS_LOG` for the test to count. While `<SERVER_TOOLS_HOLD>/<cluster_id>` exists, a
call waits inside the tool (to stop the bot while the server runs it).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from langchain.agents import create_agent
from langchain.agents.middleware import HumanInTheLoopMiddleware
from langchain.agents.middleware.human_in_the_loop import InterruptMode
from langchain_core.tools import BaseTool, tool
from langchain_openai import ChatOpenAI
from langgraph_sdk import Auth


def _record(name: str, args: dict[str, object]) -> None:
    with Path(os.environ["SERVER_TOOLS_LOG"]).open("a") as log:
        log.write(json.dumps([name, args]) + "\n")
    hold = Path(os.environ.get("SERVER_TOOLS_HOLD", "/nonexistent")) / str(args.get("cluster_id"))
    while hold.exists():  # a sync tool: the server runs it in a worker thread
        time.sleep(0.02)


@tool
def list_clusters() -> str:
    """List the clusters and their replica counts."""
    _record("list_clusters", {})
    return "cl-001 (3 replicas), cl-002 (5 replicas)"


@tool
def scale_down(cluster_id: str, replicas: int) -> str:
    """Scale a cluster down to the given number of replicas."""
    _record("scale_down", {"cluster_id": cluster_id, "replicas": replicas})
    return f"{cluster_id} scaled down to {replicas} replicas"


@tool
def delete_cluster(cluster_id: str) -> str:
    """Delete a cluster for good."""
    _record("delete_cluster", {"cluster_id": cluster_id})
    return f"{cluster_id} deleted"


TOOLS: list[BaseTool] = [list_clusters, scale_down, delete_cluster]


def _agent(mode: InterruptMode):  # type: ignore[no-untyped-def]
    model = ChatOpenAI(
        model="fake-model",
        api_key="test",  # type: ignore[arg-type]
        base_url=os.environ["SERVER_OPENAI_BASE_URL"],
        use_responses_api=False,
    )
    review = HumanInTheLoopMiddleware(
        interrupt_on={
            "scale_down": {"allowed_decisions": ["approve", "edit", "reject"]},
            "delete_cluster": {"allowed_decisions": ["approve", "reject"]},
        },
        interrupt_mode=mode,
    )
    return create_agent(model=model, tools=TOOLS, middleware=[review])


graph = _agent("per_call")
batched_graph = _agent("batched")


auth = Auth()


@auth.authenticate
async def authenticate(headers: dict[bytes, bytes]) -> Auth.types.MinimalUserDict:
    """With `SERVER_API_KEY` set, only requests carrying it in `x-api-key` get in."""
    expected = os.environ.get("SERVER_API_KEY", "")
    if headers.get(b"x-api-key", b"").decode() != expected:
        raise Auth.exceptions.HTTPException(status_code=401, detail="missing or wrong API key")
    return {"identity": "slack-approvals"}
