"""A rule-based chat model for running without an LLM (the sandbox, demos and tests).

It turns a few fixed phrases into tool calls and summarises tool results, deterministically, so
the whole approval flow can be shown and tested without an API key.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolCall, ToolMessage
from langchain_core.messages.tool import tool_call
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool

from agent.toolnames import model_name

OFFLINE_NOTE = "_(offline rule-based model — set OPENAI_API_KEY to use a real one)_"

# What HumanInTheLoopMiddleware marks its answers with: the tool did not run, a person's decision
# (a denial, or the bot's withdrawal or expiry notice) stands in for its result.
HITL_SOURCE = "hitl_interrupt_decision"

# How HumanInTheLoopMiddleware's note on an edited call names what really ran.
_EDIT_NOTE = re.compile(r"Executed instead: (?P<name>[\w.-]+) with arguments ")

# An id as people type it, without the punctuation that may follow it in a sentence.
_ID = r"[A-Za-z0-9](?:[\w.:-]*\w)?"
# Slack's user, group and special mentions (<@U0BOT>, <!subteam^S1>, <!here>, <#C1|name>).
_SLACK_TOKEN = re.compile(r"<[@!#][^>]*>")
# Any bound tool by name, for tools no phrase covers (a team's own, an MCP server's):
# `call infra.delete_repo with {"name": "web"}`.
_CALL = re.compile(r"\bcall\s+(?P<tool>[\w.-]+)(?:\s+with\s+(?=\{))?", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class _Rule:
    tool: str
    pattern: re.Pattern[str]
    args: Callable[[re.Match[str]], dict[str, Any]]
    example: str


def _rule(
    tool: str, pattern: str, args: Callable[[re.Match[str]], dict[str, Any]], example: str
) -> _Rule:
    return _Rule(tool, re.compile(pattern.replace("ID", _ID), re.IGNORECASE), args, example)


def _cluster(m: re.Match[str]) -> dict[str, Any]:
    return {"cluster_id": m["id"]}


def _scale(m: re.Match[str]) -> dict[str, Any]:
    return {"cluster_id": m["id"], "replicas": int(m["n"])}


_RULES = (
    _rule(
        "scale_down",
        r"\bscale\s+down\s+(?:the\s+)?(?:cluster\s+)?(?P<id>ID)\s+to\s+(?P<n>\d+)",
        _scale,
        "scale down cl-001 to 2",
    ),
    _rule(
        "scale_down",
        r"\bscale\s+(?:the\s+)?(?:cluster\s+)?(?P<id>ID)\s+down\s+to\s+(?P<n>\d+)",
        _scale,
        "scale cl-001 down to 2 replicas",
    ),
    _rule(
        "delete_cluster",
        r"\bdelete\s+(?:the\s+)?cluster\s+(?P<id>ID)",
        _cluster,
        "delete cluster cl-003",
    ),
    _rule(
        "terminate_instance",
        r"\bterminate\s+(?:the\s+)?instance\s+(?P<id>ID)",
        lambda m: {"instance_id": m["id"]},
        "terminate instance i-0abc",
    ),
    _rule(
        "drop_table",
        r"\bdrop\s+(?:the\s+)?table\s+(?P<id>ID)",
        lambda m: {"table": m["id"]},
        "drop table audit_2019",
    ),
    _rule(
        "list_clusters", r"\blist\s+(?:all\s+)?(?:the\s+)?clusters\b", lambda m: {}, "list clusters"
    ),
    _rule(
        "describe_cluster",
        r"\bdescribe\s+(?:the\s+)?(?:cluster\s+)?(?P<id>ID)",
        _cluster,
        "describe cl-002",
    ),
    _rule(
        "describe_cluster",
        r"\bstatus\s+of\s+(?:the\s+)?(?:cluster\s+)?(?P<id>ID)",
        _cluster,
        "status of cl-002",
    ),
)


class OfflineChatModel(BaseChatModel):
    """Deterministic stand-in for an LLM, used when no OPENAI_API_KEY is set.

    After a person's message it calls the bound tools their phrases ask for ("scale down cl-001
    to 2 and delete cluster cl-003" gives two calls); after tool results it answers with one line
    per call. Every text answer ends with a note saying it comes from this model.
    """

    bound_tools: tuple[str, ...] = ()
    """Names of the tools bound with `bind_tools`; phrases for any other tool are not understood."""

    @property
    def _llm_type(self) -> str:
        return "offline-rule-based"

    def bind_tools(
        self,
        tools: Sequence[Mapping[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        # The rules alone decide whether to call a tool, so tool_choice and the provider
        # options create_agent passes along have nothing to act on.
        names = tuple(convert_to_openai_tool(t)["function"]["name"] for t in tools)
        return self.model_copy(update={"bound_tools": names})

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self._respond(messages))])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        # Pure computation: no need for the default's detour through a thread pool.
        return self._generate(messages, stop, **kwargs)

    def _respond(self, messages: list[BaseMessage]) -> AIMessage:
        results = _trailing_tool_messages(messages)
        if results:
            return _text(_summary(results, _calls_answered(messages, len(results))))
        last = messages[-1] if messages else None
        if isinstance(last, HumanMessage):
            calls = self._parse(last.text)
            if calls:
                # Like an OpenAI model, no text beside the calls: the bot shows the calls itself.
                return AIMessage(content="", tool_calls=calls)
        return _text(self._help())

    def _parse(self, text: str) -> list[ToolCall]:
        text = _SLACK_TOKEN.sub(" ", text)
        found: list[tuple[int, int, ToolCall]] = []
        for rule in _RULES:
            if rule.tool not in self.bound_tools:
                continue
            for match in rule.pattern.finditer(text):
                call = tool_call(
                    name=rule.tool, args=rule.args(match), id=f"call_{uuid.uuid4().hex}"
                )
                found.append((match.start(), match.end(), call))
        found.extend(self._named_calls(text))
        calls: list[ToolCall] = []
        end_of_last = -1
        # In the order they were asked for; a phrase that overlaps an earlier one is part of it.
        for start, end, call in sorted(found, key=lambda item: (item[0], -item[1])):
            if start >= end_of_last:
                calls.append(call)
                end_of_last = end
        return calls

    def _named_calls(self, text: str) -> list[tuple[int, int, ToolCall]]:
        found = []
        for match in _CALL.finditer(text):
            # Typed as the policy names it (`server.tool`), bound as the model sees it.
            name = model_name(match["tool"])
            if name not in self.bound_tools:
                continue
            args: Any = {}
            end = match.end()
            if text[end : end + 1] == "{":
                try:
                    args, end = json.JSONDecoder().raw_decode(text, end)
                except ValueError:
                    continue
            if isinstance(args, dict):
                call = tool_call(name=name, args=args, id=f"call_{uuid.uuid4().hex}")
                found.append((match.start(), end, call))
        return found

    def _help(self) -> str:
        examples = list(dict.fromkeys(r.example for r in _RULES if r.tool in self.bound_tools))
        phrased = {r.tool for r in _RULES}
        others = [name for name in self.bound_tools if name not in phrased]
        if others:
            examples.append(f"call {others[0]} with {{…its arguments as JSON…}}")
        if not examples:
            return "I'm a rule-based stand-in for a language model and I have no tools to use."
        lines = "\n".join(f"• `{example}`" for example in examples)
        return (
            "I'm a rule-based stand-in for a language model and only understand requests like:\n"
            f"{lines}\n"
            "Several requests can go in one message, joined with “and”."
        )


def _text(body: str) -> AIMessage:
    return AIMessage(content=f"{body}\n{OFFLINE_NOTE}")


def _trailing_tool_messages(messages: list[BaseMessage]) -> list[ToolMessage]:
    results: list[ToolMessage] = []
    for message in reversed(messages):
        if not isinstance(message, ToolMessage):
            break
        results.append(message)
    results.reverse()
    return results


def _calls_answered(messages: list[BaseMessage], n_results: int) -> dict[str, ToolCall]:
    """The tool calls of the AI message that the trailing tool results answer, by id."""
    index = len(messages) - n_results - 1
    if index >= 0:
        asked = messages[index]
        if isinstance(asked, AIMessage):
            return {call["id"]: call for call in asked.tool_calls if call["id"]}
    return {}


def _summary(results: list[ToolMessage], calls: dict[str, ToolCall]) -> str:
    lines = []
    for result in results:
        call = calls.get(result.tool_call_id)
        name = result.name or (call["name"] if call else "a tool")
        args: dict[str, Any] = call["args"] if call else {}
        content = result.text.strip()
        edited = _edited_call(content)
        if edited is not None:
            name, args, content = edited
        what = f"`{name}`"
        if args:
            what += " (" + ", ".join(f"{k}={v}" for k, v in args.items()) + ")"
        if edited is not None:
            what += " as edited by a reviewer"
        # A multi-line result (a listing) reads better starting on a line of its own.
        gap = "\n" if "\n" in content else " "
        if result.additional_kwargs.get("lc_source") == HITL_SOURCE:
            lines.append(f"I did not run {what}:{gap}{content.rstrip('.')}. Nothing was changed.")
        elif result.status == "error":
            lines.append(f"{what} failed:{gap}{content}")
        else:
            lines.append(f"Ran {what}:{gap}{content}")
    return "\n".join(lines)


def _edited_call(content: str) -> tuple[str, dict[str, Any], str] | None:
    """The call that really ran and its own result, when a reviewer edited the call.

    The AI message keeps the arguments the model proposed; only the note HumanInTheLoopMiddleware
    puts before the result says what was executed, and the summary must not show the old ones.
    """
    match = _EDIT_NOTE.search(content)
    if match is None:
        return None
    try:
        args, end = json.JSONDecoder().raw_decode(content, match.end())
    except ValueError:
        return None
    if not isinstance(args, dict):
        return None
    rest = content[end:].removeprefix(".").strip().removeprefix("Tool response:").strip()
    return match["name"], args, rest
