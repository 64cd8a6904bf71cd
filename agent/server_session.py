"""An agent deployed on LangGraph Server, driven through `langgraph-sdk`.

One server thread per Slack conversation, its id kept in the bot's database. Runs are
streamed (`updates`), so answers and tool results reach Slack as they happen. A thread
busy with a run refuses a second one (`multitask_strategy="reject"`) instead of racing it;
a run keeps going if the bot goes away mid-stream (`on_disconnect="continue"`). What is
pending is always read back from the server's thread state, so a restart of the bot or of
the server loses no approval, and what a run did while no bot watched is told afterwards.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Protocol

import httpx
from langgraph_sdk import get_client
from langgraph_sdk.errors import APIStatusError, NotFoundError
from pydantic import ValidationError

from agent.hitl import CallKeys, PendingCall, pending_calls
from agent.session import (
    Answers,
    Event,
    OnEvent,
    Session,
    ToolOutcome,
    event_of,
    events_of,
    with_call_key,
)

log = logging.getLogger(__name__)

# Thread metadata: how many of the thread's messages have reached Slack, so what a run did
# while no bot watched (the bot was restarted mid-run) is told at the next start.
RELAYED = "slack_approvals_relayed"


class ThreadIds(Protocol):
    """Where the server thread of each conversation is kept (the bot's database)."""

    async def get(self, conversation: str) -> str | None: ...

    async def put(self, conversation: str, thread_id: str) -> str:
        """Keep `thread_id` unless the conversation has one already; return the one kept."""
        ...


class ServerError(RuntimeError):
    """The server ended a run with an error; the message is the server's."""


class ServerUnusable(ValueError):
    """At startup: the server cannot be reached, or has no such assistant."""


class ServerSession(Session):
    def __init__(
        self,
        url: str,
        assistant: str,
        threads: ThreadIds,
        call_keys: CallKeys,
        *,
        api_key: str | None = None,
    ) -> None:
        # api_key=None stops the SDK from picking a key out of the environment on its own.
        self._client = get_client(url=url, api_key=api_key)
        self._url = url
        self._assistant = assistant
        self._threads = threads
        self._call_keys = call_keys

    async def check(self) -> None:
        """Fail at startup, clearly, when the server or the assistant is not there."""
        try:
            await self._client.assistants.get_graph(self._assistant)
        except NotFoundError:
            raise ServerUnusable(
                f"LANGGRAPH_ASSISTANT={self._assistant!r} is neither an assistant id nor a "
                f"graph name on the server at {self._url}"
            ) from None
        except (httpx.HTTPError, APIStatusError) as exc:
            raise ServerUnusable(
                f"LANGGRAPH_URL={self._url}: the server cannot be used ({exc}); check the URL "
                "and LANGGRAPH_API_KEY"
            ) from None

    async def close(self) -> None:
        await self._client.aclose()

    async def _thread(self, conversation: str, *, create: bool) -> str | None:
        thread_id = await self._threads.get(conversation)
        if thread_id is None and create:
            made = await self._client.threads.create(metadata={"slack_conversation": conversation})
            thread_id = await self._threads.put(conversation, str(made["thread_id"]))
        return thread_id

    async def _state(self, conversation: str, *, settle: bool = True) -> dict[str, Any] | None:
        """The thread's state, by default once no run is going: a run the bot stopped
        watching (it was restarted) goes on on the server, and what is pending is what that
        run leaves."""
        thread_id = await self._thread(conversation, create=False)
        if thread_id is None:
            return None
        try:
            for run in await self._client.runs.list(thread_id, status="running") if settle else ():
                await self._client.runs.join(thread_id, run["run_id"])
            state = dict(await self._client.threads.get_state(thread_id))
        except NotFoundError:
            log.warning("the server has no thread %s for %s", thread_id, conversation)
            return None
        state["thread_id"] = thread_id
        return state

    async def pending(self, thread_id: str) -> list[PendingCall]:
        state = await self._state(thread_id)
        if state is None:
            return []
        return pending_calls(state.get("interrupts") or (), _messages(state))

    async def start_turn(self, thread_id: str, text: str, on_event: OnEvent) -> list[PendingCall]:
        payload = {"input": {"messages": [{"role": "user", "content": text}]}}
        return await self._drive(thread_id, payload, on_event)

    async def _answer(
        self, thread_id: str, answers: Answers, on_event: OnEvent
    ) -> list[PendingCall]:
        payload = {"command": {"resume": answers.by_interrupt}}
        return await self._drive(thread_id, payload, on_event, answers.call_keys)

    async def stopped_part_way(self, thread_id: str) -> bool:
        state = await self._state(thread_id)
        if state is None:
            return False
        halted = bool(state.get("next")) and not state.get("interrupts")
        return halted or len(_messages(state)) > await self._relayed(state["thread_id"])

    async def carry_on(self, thread_id: str, on_event: OnEvent) -> list[PendingCall]:
        """Tell what a run did while no bot watched, and go on from the last checkpoint if
        the graph still has steps left."""
        state = await self._state(thread_id)
        if state is None:
            return []
        if state.get("next") and not state.get("interrupts"):
            return await self._drive(thread_id, {"input": None}, on_event)
        messages = _messages(state)
        for message in messages[await self._relayed(state["thread_id"]) :]:
            told = event_of(message)
            if told is not None:
                await on_event(await self._keyed(thread_id, told, {}))
        await self._client.threads.update(state["thread_id"], metadata={RELAYED: len(messages)})
        return pending_calls(state.get("interrupts") or (), messages)

    async def _relayed(self, thread_id: str) -> int:
        thread = await self._client.threads.get(thread_id)
        return int((thread.get("metadata") or {}).get(RELAYED, 0))

    async def _drive(
        self,
        conversation: str,
        payload: dict[str, Any],
        on_event: OnEvent,
        keys: Mapping[str, str] | None = None,
    ) -> list[PendingCall]:
        thread_id = await self._thread(conversation, create=True)
        assert thread_id is not None
        # Resuming one of several sibling calls re-emits the siblings' finished results.
        reported = await self._answered_calls(conversation)
        async for part in self._client.runs.stream(
            thread_id,
            self._assistant,
            stream_mode="updates",
            multitask_strategy="reject",
            on_disconnect="continue",
            durability="sync",
            **payload,
        ):
            if part.event == "error":
                raise _error_of(part.data)
            if part.event != "updates" or not isinstance(part.data, Mapping):
                continue
            for told in events_of(part.data):
                event = await self._keyed(conversation, told, keys or {})
                if isinstance(event, ToolOutcome):
                    if event.tool_call_id in reported:
                        continue
                    reported.add(event.tool_call_id)
                await on_event(event)
        state = await self._state(conversation)
        if state is None:
            return []
        messages = _messages(state)
        await self._client.threads.update(thread_id, metadata={RELAYED: len(messages)})
        return pending_calls(state.get("interrupts") or (), messages)

    async def _keyed(self, conversation: str, event: Event, keys: Mapping[str, str]) -> Event:
        """The outcome with its approval key: the server's results do not carry it."""
        event = with_call_key(event, keys)
        if isinstance(event, ToolOutcome) and event.call_key is None:
            key = await self._call_keys.call_key_for(conversation, event.tool_call_id)
            event = with_call_key(event, {event.tool_call_id: key} if key else {})
        return event

    async def _answered_calls(self, conversation: str) -> set[str]:
        # Not waiting for a run that is going: the server refuses ours instead.
        state = await self._state(conversation, settle=False)
        return {
            str(m.get("tool_call_id"))
            for m in _messages(state or {})
            if isinstance(m, Mapping) and m.get("type") == "tool"
        }


def _error_of(data: Any) -> Exception:
    """The server's report of a failed run as an exception. An answer the graph's schema
    refused (nothing was saved) stays a `ValidationError`, as it is in process, so the bot can
    turn a refused edit into a denial instead of leaving the call waiting."""
    if isinstance(data, Mapping) and data.get("error") == "ValidationError":
        return ValidationError.from_exception_data(
            "decision",
            [
                {
                    "type": "value_error",
                    "loc": (),
                    "input": None,
                    "ctx": {"error": data.get("message")},
                }
            ],
        )
    return ServerError(str(data))


def _messages(state: Mapping[str, Any]) -> list[Any]:
    values = state.get("values") or {}
    return list(values.get("messages", ())) if isinstance(values, Mapping) else []
