"""A scripted OpenAI-compatible server on loopback, for tests that drive the real `ChatOpenAI`.

Point `ChatOpenAI(api_key="test", base_url=fake.base_url, model="fake-model",
use_responses_api=False)` at it, queue the model's replies with `fake.script(...)`, and read what
the client sent in `fake.requests`. Only `/v1/chat/completions` (plain and streamed) and
`/v1/models` are served.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from aiohttp import web

MODEL_ID = "fake-model"


@dataclass(frozen=True, slots=True)
class ScriptedToolCall:
    name: str
    arguments: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Reply:
    """One assistant message: text, tool calls, or both."""

    content: str | None = None
    tool_calls: tuple[ScriptedToolCall, ...] = field(default=())
    delay_s: float = 0.0
    """How long the model "thinks" before it answers."""


Responder = Callable[[dict[str, Any]], Reply]
"""Builds a reply from the request body, for replies that depend on the conversation."""


def reply_text(text: str) -> Reply:
    return Reply(content=text)


def reply_tool_calls(
    *calls: tuple[str, Mapping[str, Any]], content: str | None = None, delay_s: float = 0.0
) -> Reply:
    """A reply calling each `(tool name, arguments)` in order, in one assistant message."""
    return Reply(
        content=content,
        tool_calls=tuple(ScriptedToolCall(name, args) for name, args in calls),
        delay_s=delay_s,
    )


def message_text(message: Mapping[str, Any]) -> str:
    """The text of a request message, whether its content is a string or a list of parts."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part.get("text", "")
            for part in content
            if isinstance(part, dict) and part.get("type") == "text"
        )
    return ""


def default_reply(body: dict[str, Any]) -> Reply:
    """What an unscripted turn gets: a text that names and quotes the last message."""
    messages = body.get("messages") or [{}]
    last = messages[-1]
    return reply_text(
        f"(unscripted) last {last.get('role', 'unknown')} message: {message_text(last)}"
    )


class FakeOpenAI:
    """A loopback OpenAI chat-completions server that answers from a script.

    Use it with `async with FakeOpenAI() as fake:` or `start()` / `stop()`.
    """

    def __init__(self) -> None:
        self.numbered_call_ids = False
        """Number tool-call ids per answer (`call_0`, `call_1`), as some OpenAI-compatible
        servers do, instead of making each one unique."""
        self.requests: list[dict[str, Any]] = []
        """Every request body received by `/v1/chat/completions`, in order, failures included."""
        self._script: deque[Reply | Responder] = deque()
        self._fail_status = 500
        self._fail_times = 0
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    @property
    def base_url(self) -> str:
        if self._port is None:
            raise RuntimeError("FakeOpenAI is not started")
        return f"http://127.0.0.1:{self._port}/v1"

    @property
    def pending_replies(self) -> int:
        """Scripted replies not used yet."""
        return len(self._script)

    def script(self, *replies: Reply | Responder) -> None:
        """Queue replies; each request takes the next, and `default_reply` once none is left."""
        self._script.extend(replies)

    def fail_next(self, status: int = 500, times: int = 1) -> None:
        """Answer the next `times` chat requests with HTTP `status`, without using the script."""
        self._fail_status = status
        self._fail_times = times

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat_completions)
        app.router.add_get("/v1/models", self._models)
        # A short shutdown bound: a test's client may still hold a keep-alive connection.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            self._port = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "object": "list",
                "data": [
                    {"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "fake-openai"}
                ],
            }
        )

    async def _chat_completions(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "The request body is not JSON.")
        if not isinstance(body, dict):
            return _error(400, "The request body must be a JSON object.")
        self.requests.append(body)
        if self._fail_times > 0:
            self._fail_times -= 1
            return _error(self._fail_status, f"Injected failure (HTTP {self._fail_status}).")
        item = self._script.popleft() if self._script else default_reply
        reply = item if isinstance(item, Reply) else item(body)
        await asyncio.sleep(reply.delay_s)
        completion = _Completion(body, reply, numbered=self.numbered_call_ids)
        if body.get("stream"):
            response = web.StreamResponse(
                headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
            )
            await response.prepare(request)
            for chunk in completion.chunks():
                await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
            return response
        return web.json_response(completion.message())


def _error(status: int, message: str) -> web.Response:
    return web.json_response(
        {
            "error": {
                "message": message,
                "type": "server_error" if status >= 500 else "invalid_request_error",
                "param": None,
                "code": None,
            }
        },
        status=status,
        # The openai client honours this, so a test that lets it retry does not wait seconds.
        headers={"retry-after-ms": "10"},
    )


def _count_tokens(text: str) -> int:
    """A stand-in for a tokenizer: deterministic, roughly proportional to the text."""
    return len(text.split())


class _Completion:
    """One reply rendered the way the chat-completions API returns it."""

    def __init__(self, body: dict[str, Any], reply: Reply, *, numbered: bool = False) -> None:
        self.id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        self.created = int(time.time())
        self.model = str(body.get("model", MODEL_ID))
        self.include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        self.content = reply.content
        self.tool_calls: list[dict[str, Any]] = [
            {
                "id": f"call_{index}" if numbered else f"call_{uuid.uuid4().hex[:24]}",
                "type": "function",
                "function": {"name": call.name, "arguments": json.dumps(dict(call.arguments))},
            }
            for index, call in enumerate(reply.tool_calls)
        ]
        self.finish_reason = "tool_calls" if self.tool_calls else "stop"
        prompt = sum(_count_tokens(message_text(m)) for m in body.get("messages") or [])
        completion = _count_tokens(self.content or "") + sum(
            _count_tokens(call["function"]["arguments"]) + 1 for call in self.tool_calls
        )
        self.usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }

    def message(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": self.content, "refusal": None}
        if self.tool_calls:
            message["tool_calls"] = self.tool_calls
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": self.finish_reason,
                }
            ],
            "usage": self.usage,
        }

    def chunks(self) -> Iterator[dict[str, Any]]:
        yield self._chunk({"role": "assistant", "content": ""})
        # Several pieces per text and per argument string, so the client's merging is exercised.
        for piece in re.findall(r"\s*\S+", self.content or ""):
            yield self._chunk({"content": piece})
        for index, call in enumerate(self.tool_calls):
            yield self._chunk(
                {
                    "tool_calls": [
                        {
                            "index": index,
                            "id": call["id"],
                            "type": "function",
                            "function": {"name": call["function"]["name"], "arguments": ""},
                        }
                    ]
                }
            )
            arguments = call["function"]["arguments"]
            half = len(arguments) // 2
            for part in (arguments[:half], arguments[half:]):
                yield self._chunk(
                    {"tool_calls": [{"index": index, "function": {"arguments": part}}]}
                )
        yield self._chunk({}, finish_reason=self.finish_reason)
        if self.include_usage:
            yield {**self._envelope(), "choices": [], "usage": self.usage}

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        chunk = {
            **self._envelope(),
            "choices": [
                {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            ],
        }
        if self.include_usage:
            chunk["usage"] = None
        return chunk

    def _envelope(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
        }
