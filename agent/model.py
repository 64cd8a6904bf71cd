"""The chat model: any OpenAI-compatible endpoint, or the offline rule-based model."""

from __future__ import annotations

import httpx
from langchain_core.language_models import BaseChatModel
from langchain_openai import ChatOpenAI
from pydantic import SecretStr

from agent.offline_model import OfflineChatModel


def make_model(
    api_key: str | None, base_url: str | None, model: str, *, timeout: float = 120.0
) -> BaseChatModel:
    """`ChatOpenAI` pinned to `/v1/chat/completions`, which every compatible server has."""
    if not api_key:
        return OfflineChatModel()
    return ChatOpenAI(
        api_key=SecretStr(api_key),
        base_url=base_url,
        model=model,
        use_responses_api=False,
        # An httpx.Timeout is unhashable, so langchain-openai does not reuse a process-wide
        # cached client bound to whichever event loop created it first.
        timeout=httpx.Timeout(timeout),
        max_retries=2,
    )


def describe_model(model: BaseChatModel) -> str:
    if isinstance(model, OfflineChatModel):
        return "the offline rule-based model"
    if isinstance(model, ChatOpenAI):
        return f"{model.model_name} at {model.openai_api_base or 'the OpenAI API'}"
    return type(model).__name__
