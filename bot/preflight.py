"""What is loaded and checked before the bot takes work: the tools and the policy, the
policy's user groups, and whether the model can be reached."""

from __future__ import annotations

import logging

import aiohttp
from langchain_core.tools import BaseTool
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from agent.demo_tools import DEMO_SAFE_TOOLS, DemoInventory, build_demo_tools
from agent.mcp import load_mcp_servers, tool_facts
from agent.policy import Policy, PolicyError
from agent.toolsets import check_tools, load_tools
from bot.settings import Settings

log = logging.getLogger(__name__)


async def tools_and_policy(settings: Settings) -> tuple[list[BaseTool], Policy]:
    if settings.approvals_graph or settings.langgraph_url:
        # The team's graph has its own tools, and its interrupts say which calls are gated.
        policy = Policy.load(settings.approvals_policy) if settings.approvals_policy else None
        return [], policy or Policy.default()
    if settings.approvals_tools:
        tools = await load_tools(settings.approvals_tools)
        default = Policy.default()
    else:
        inventory = DemoInventory(settings.demo_inventory)
        await inventory.setup()
        tools = build_demo_tools(inventory)
        default = Policy.default(DEMO_SAFE_TOOLS)
    if settings.approvals_mcp:
        # Gated by default like any other tool: only the policy can let one run freely.
        tools = check_tools([*tools, *await load_mcp_servers(settings.approvals_mcp)])
    policy = Policy.load(settings.approvals_policy) if settings.approvals_policy else default
    policy.check_tools(t.name for t in tools)
    policy.describe_tools({t.name: facts for t in tools if (facts := tool_facts(t))})
    policy.check_editable({t.name: t.args for t in tools})
    return tools, policy


OPENAI_BASE_URL = "https://api.openai.com/v1"
MODEL_PROBE_TIMEOUT_S = 5.0


def reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


async def probe_model(base_url: str, http: aiohttp.ClientSession) -> None:
    """Warn at start-up when the model endpoint cannot be reached at all. Any HTTP answer
    (even 401 or 404) means it can; the bot still starts, since the model may come back."""
    try:
        async with http.get(
            base_url.rstrip("/") + "/models",
            timeout=aiohttp.ClientTimeout(total=MODEL_PROBE_TIMEOUT_S),
        ):
            return
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        log.warning(
            "cannot reach the model at %s (%s): check the network or OPENAI_BASE_URL; "
            "the agent will fail to answer until it is reachable",
            base_url,
            reason(exc),
        )


async def check_groups(policy: Policy, client: AsyncWebClient) -> None:
    for group in sorted(policy.group_ids()):
        try:
            listed = await client.usergroups_users_list(usergroup=group)
        except SlackApiError as exc:
            raise PolicyError(
                f"{policy.source}:{policy.line_of(group)}: user group {group} is not usable "
                f"({exc.response.get('error')}); check the id and the usergroups:read scope"
            ) from None
        if not listed.get("users"):
            # Not fatal: people may join before anyone asks; each request says so meanwhile.
            log.warning(
                "%s:%s: user group %s has no members: requests it must approve can reach "
                "nobody until someone joins it",
                policy.source,
                policy.line_of(group),
                group,
            )
