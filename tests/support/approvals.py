"""An approval as the bot records it, without a database: for the pure parts that draw or
read one (cards, forms) in unit tests and the benchmarks' bare cards."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from agent.policy import Policy
from bot.store import Approval

DEFAULT_POLICY = Policy.default()


def an_approval(
    approval_id: str = "ap_0000000000000001",
    *,
    tool: str = "scale_down",
    args: dict[str, Any] | None = None,
    channel: str = "C0OPS",
    requester: str = "U0ALICE",
    policy: Policy = DEFAULT_POLICY,
    **more: Any,
) -> Approval:
    """Pending, with `policy`'s rules for `tool`. Fields it does not know (added to Approval
    later) are None, so a new optional field does not break its callers."""
    now = time.time()
    rules = policy.for_tool(tool)
    known: dict[str, Any] = {
        "id": approval_id,
        "interrupt_id": "i" + approval_id,
        "conversation": f"slack:T0SANDBOX:{channel}:{now:.6f}",
        "team_id": "T0SANDBOX",
        "channel": channel,
        "thread_ts": f"{now:.6f}",
        "tool_call_id": "call_" + approval_id,
        "tool": tool,
        "args": {"cluster_id": "cl-001", "replicas": 2} if args is None else args,
        "description": "Scale a cluster down to the given number of replicas.",
        "requester": requester,
        "status": "pending",
        "policy": rules.snapshot(),
        "created_at": now,
        "expires_at": (
            None if rules.expires_after is None else now + rules.expires_after.total_seconds()
        ),
        **more,
    }
    values: dict[str, Any] = {f.name: known.get(f.name) for f in dataclasses.fields(Approval)}
    return Approval(**values)
