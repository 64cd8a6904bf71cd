"""Reading LangChain's human-in-the-loop interrupts, and answering them in their own shape.

`HumanInTheLoopMiddleware` asks in two ways: `per_call` raises one `ToolApprovalRequest` per
gated call (answered with one decision, keyed by interrupt id); `batched` raises one
`HITLRequest` per model turn, `{action_requests, review_configs}`, answered with
`{"decisions": [...]}` matched by position. A graph may also raise the batched shape by hand
with `interrupt()`. Each call becomes one `PendingCall` — one approval, one card — whatever
the shape; the answers go back in the shape each interrupt asked for.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from langchain_core.messages import AIMessage, BaseMessage, convert_to_messages
from langgraph.errors import UnknownInterruptError


class CallKeys(Protocol):
    """Where the bot finds the approval key of a tool call of a team's graph, whose results
    do not carry it (only the bot's own approval gate puts it there)."""

    async def call_key_for(self, thread_id: str, tool_call_id: str) -> str | None: ...

    async def approval_id_for(self, call_key: str) -> str | None:
        """The approval id (the call's idempotency key) recorded under this call key."""
        ...


@dataclass(frozen=True)
class PendingCall:
    """One gated tool call waiting for a decision."""

    interrupt_id: str
    """The approval's key: the LangGraph interrupt id, or `<interrupt id>:<position>` for one
    call of a batched request (several calls share that interrupt)."""
    tool_call_id: str
    name: str
    args: dict[str, Any]
    description: str
    allowed_decisions: tuple[str, ...] | None = None
    """What the graph accepts for this call, or None when it does not say (the policy's
    `decisions` then stand)."""
    request_id: str = ""
    """The LangGraph interrupt this call belongs to (the key without its position)."""
    position: int | None = None
    """The call's place in a batched request; None for a per-call interrupt."""

    @property
    def interrupt(self) -> str:
        return self.request_id or self.interrupt_id


def pending_calls(
    interrupts: Iterable[Any], messages: Sequence[Any] = (), *, graph_decides: bool = True
) -> list[PendingCall]:
    """The calls the interrupts ask about. `interrupts` are LangGraph `Interrupt`s or their
    JSON form (LangGraph Server's thread state); `messages` are the thread's, for the tool
    call ids a batched request does not carry. Interrupts of another shape are not ours."""
    calls: list[PendingCall] = []
    ai_calls = _last_tool_calls(messages)
    for item in interrupts:
        interrupt_id, value, schema = _parts(item)
        if not isinstance(value, Mapping):
            continue
        if value.get("type") == "tool_approval":
            calls.append(
                PendingCall(
                    interrupt_id=interrupt_id,
                    tool_call_id=str(value["tool_call_id"]),
                    name=str(value["name"]),
                    args=dict(value["args"]),
                    description=str(value.get("description", "")),
                    allowed_decisions=_schema_decisions(schema) if graph_decides else None,
                    request_id=interrupt_id,
                )
            )
        elif isinstance(value.get("action_requests"), list):
            calls.extend(_batched(interrupt_id, value, ai_calls, graph_decides))
    return calls


def _batched(
    interrupt_id: str,
    request: Mapping[str, Any],
    ai_calls: list[dict[str, Any]],
    graph_decides: bool,
) -> list[PendingCall]:
    allowed_by_name = {
        str(config["action_name"]): tuple(str(d) for d in config.get("allowed_decisions", ()))
        for config in request.get("review_configs", ())
        if isinstance(config, Mapping) and "action_name" in config
    }
    unmatched = list(ai_calls)
    calls = []
    for position, action in enumerate(request["action_requests"]):
        name, args = str(action["name"]), dict(action.get("args", {}))
        # The request lists the gated calls of the model's last turn in order, without ids.
        match = next((c for c in unmatched if c["name"] == name and c["args"] == args), None)
        if match is not None:
            unmatched.remove(match)
        key = f"{interrupt_id}:{position}"
        calls.append(
            PendingCall(
                interrupt_id=key,
                tool_call_id=str(match["id"]) if match is not None else key,
                name=name,
                args=args,
                description=str(action.get("description", "")),
                allowed_decisions=allowed_by_name.get(name) if graph_decides else None,
                request_id=interrupt_id,
                position=position,
            )
        )
    return calls


def resume_payload(
    decisions: Mapping[str, Mapping[str, Any]], pending: Sequence[PendingCall]
) -> dict[str, Any]:
    """`Command(resume=...)` for the decided calls, keyed by interrupt id. A batched request
    is answered only once every call in it is decided: its answer is one list, by position.
    A decision for a call that is not pending is refused, never passed on."""
    if not all(isinstance(d, Mapping) for d in decisions.values()):
        raise ValueError("each decision must be a mapping keyed by the call's interrupt id")
    unknown = set(decisions) - {call.interrupt_id for call in pending}
    if unknown:
        raise UnknownInterruptError(
            f"no pending call has the key(s) {sorted(unknown)}",
            reason="not_pending",
            interrupt_ids=sorted(unknown),
            pending_ids=[call.interrupt_id for call in pending],
        )
    by_interrupt: dict[str, list[PendingCall]] = {}
    for call in pending:
        by_interrupt.setdefault(call.interrupt, []).append(call)
    resume: dict[str, Any] = {}
    for interrupt_id, calls in by_interrupt.items():
        if calls[0].position is None:
            if calls[0].interrupt_id in decisions:
                resume[interrupt_id] = dict(decisions[calls[0].interrupt_id])
        elif all(c.interrupt_id in decisions for c in calls):
            ordered = sorted(calls, key=lambda c: c.position or 0)
            resume[interrupt_id] = {"decisions": [dict(decisions[c.interrupt_id]) for c in ordered]}
    return resume


def call_keys(pending: Sequence[PendingCall]) -> dict[str, str]:
    """Each pending call's key by its tool call id: how a result is matched to its approval
    when the graph does not put the key on it (only the bot's own approval gate does)."""
    return {call.tool_call_id: call.interrupt_id for call in pending}


def _parts(item: Any) -> tuple[str, Any, Any]:
    if isinstance(item, Mapping):
        return str(item["id"]), item.get("value"), item.get("response_schema")
    return str(item.id), item.value, getattr(item, "response_schema", None)


def _schema_decisions(schema: Any) -> tuple[str, ...] | None:
    """The decision types a per-call `response_schema` (JSON Schema) accepts."""
    if not isinstance(schema, Mapping):
        return None
    defs = schema.get("$defs", {})

    def decision_type(branch: Any) -> str | None:
        if isinstance(branch, Mapping) and "$ref" in branch:
            branch = defs.get(str(branch["$ref"]).rsplit("/", 1)[-1], {})
        const = branch.get("properties", {}).get("type", {}).get("const")
        return str(const) if const is not None else None

    branches = schema.get("oneOf") or schema.get("anyOf") or [schema]
    found = [t for t in map(decision_type, branches) if t is not None]
    return tuple(found) or None


def _last_tool_calls(messages: Sequence[Any]) -> list[dict[str, Any]]:
    if not messages:
        return []
    parsed: list[BaseMessage] = convert_to_messages(list(messages))
    for message in reversed(parsed):
        if isinstance(message, AIMessage) and message.tool_calls:
            return [dict(c) for c in message.tool_calls]
    return []
