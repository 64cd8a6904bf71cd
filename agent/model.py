"""The chat model: any OpenAI-compatible endpoint, or the offline rule-based model."""

from __future__ import annotations

from langchain_core.language_models import BaseChatModel
from pydantic import SecretStr

from agent.offline_model import OfflineChatModel


def make_model(
    api_key: str | None, base_url: str | None, model: str, *, timeout: float = 120.0
) -> BaseChatModel:
    """`ChatOpenAI` pinned to `/v1/chat/completions`, which every compatible server has."""
    if not api_key:
        return OfflineChatModel()
    # Imported here: langchain-openai costs about a second at start-up, which the
    # sandbox and the offline model never need.
    import httpx
    from langchain_openai import ChatOpenAI

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
    name = getattr(model, "model_name", None)
    if name:
        return f"{name} at {getattr(model, 'openai_api_base', None) or 'the OpenAI API'}"
    return type(model).__name__
