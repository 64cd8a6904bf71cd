"""The composition root: from settings to a running bot, and a bounded, orderly stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from langchain_core.language_models import BaseChatModel
from langchain_core.tools import BaseTool
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from agent.builder import build_agent
from agent.checkpointer import open_checkpointer
from agent.demo_tools import DEMO_SAFE_TOOLS, DemoInventory, build_demo_tools
from agent.mcp import load_mcp_servers, tool_facts
from agent.model import describe_model, make_model
from agent.policy import Policy, PolicyError
from agent.server_session import ServerSession
from agent.session import AgentSession
from agent.sources import Session, load_graph
from agent.toolsets import check_tools, load_tools
from bot.cards import Cards
from bot.clock import Clock
from bot.db import Database
from bot.decisions import Decisions
from bot.directory import Directory
from bot.health import Health, serve
from bot.home import Home
from bot.lease import open_leases
from bot.listeners import register
from bot.metrics import MeasuredApp, Metrics, SlackErrorCounter
from bot.outbox import ThreadMessages
from bot.own_agent import SqlCallKeys, SqlThreadIds
from bot.recovery import Recovery
from bot.reminders import Reminders
from bot.routing import Routing
from bot.runner import Runner
from bot.settings import Settings, SettingsError
from bot.store import SqlJournal, Store
from bot.tasks import Background

log = logging.getLogger(__name__)

SOCKET_CLOSE_TIMEOUT_S = 3.0
# Inside the 30 s that Kubernetes (and most supervisors) give between SIGTERM and SIGKILL.
DRAIN_TIMEOUT_S = 25.0
CANCEL_TIMEOUT_S = 3.0
INTAKE_CLOSE_TIMEOUT_S = 3.0


def slack_client(
    settings: Settings,
    token: str | None,
    metrics: Metrics,
    http: aiohttp.ClientSession,
    *,
    retry_connection: bool = True,
) -> AsyncWebClient:
    """A Web API client at `SLACK_API_URL`; slack-sdk's retry handlers share one attempt
    counter, so the limits are raised well above its default of one retry. Without a shared
    session slack-sdk opens a connection (and a TLS handshake) for every call.
    `retry_connection=False` is for the start-up checks: a Slack that cannot be reached then
    is a configuration or network problem to report at once, not ride out."""
    connection = [AsyncConnectionErrorRetryHandler(max_retry_count=4)] if retry_connection else []
    return AsyncWebClient(
        token=token,
        base_url=settings.slack_api_url,
        session=http,
        timeout=15,
        retry_handlers=[
            SlackErrorCounter(metrics),
            *connection,
            AsyncRateLimitErrorRetryHandler(max_retry_count=6),
            AsyncServerErrorRetryHandler(max_retry_count=4),
        ],
    )


@dataclass
class RunningBot:
    settings: Settings
    app: AsyncApp
    runner: Runner
    decisions: Decisions
    store: Store
    bot_user_id: str
    team_id: str
    model_description: str
    http_port: int | None
    health_port: int | None
    metrics: Metrics


async def _tools_and_policy(settings: Settings) -> tuple[list[BaseTool], Policy]:
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


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


async def _probe_model(base_url: str, http: aiohttp.ClientSession) -> None:
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
            _reason(exc),
        )


async def _check_groups(policy: Policy, client: AsyncWebClient) -> None:
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


@asynccontextmanager
async def running_bot(
    settings: Settings, clock: Clock | None = None
) -> AsyncIterator[RunningBot]:
    """Start everything; on exit stop taking work, let runs finish, then close storage.
    `clock` is what deadlines are measured by (the system's, unless a caller embeds the bot
    with its own)."""
    # Closed last: runs still finishing during shutdown post to Slack through it.
    async with (
        aiohttp.ClientSession() as http,
        _running_bot(settings, http, clock or Clock()) as bot,
    ):
        yield bot


@asynccontextmanager
async def _running_bot(
    settings: Settings, http: aiohttp.ClientSession, clock: Clock
) -> AsyncIterator[RunningBot]:
    if settings.slack_bot_token is None:
        raise SettingsError("SLACK_BOT_TOKEN is not set")
    bot_token = settings.slack_bot_token.get_secret_value()
    metrics = Metrics()
    client = slack_client(settings, bot_token, metrics, http)
    checks = slack_client(settings, bot_token, metrics, http, retry_connection=False)
    try:
        auth = await checks.auth_test()
    except SlackApiError as exc:
        raise SettingsError(
            f"Slack rejected SLACK_BOT_TOKEN at {settings.slack_api_url} "
            f"({exc.response.get('error')}): check the token"
        ) from None
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise SettingsError(
            f"cannot reach Slack at {settings.slack_api_url} ({_reason(exc)}): "
            "check the network or SLACK_API_URL"
        ) from None
    if settings.slack_app_token is not None:
        # slack-sdk retries a refused app token for ever; ask once, and say what is wrong.
        try:
            await checks.apps_connections_open(
                app_token=settings.slack_app_token.get_secret_value()
            )
        except SlackApiError as exc:
            raise SettingsError(
                f"Slack rejected SLACK_APP_TOKEN at {settings.slack_api_url} "
                f"({exc.response.get('error')}): check the app-level token and its "
                "connections:write scope"
            ) from None

    tools, policy = await _tools_and_policy(settings)
    await _check_groups(policy, client)
    model = make_model(
        settings.openai_api_key.get_secret_value() if settings.openai_api_key else None,
        settings.openai_base_url,
        settings.openai_model,
    )
    if settings.openai_api_key is not None:
        await _probe_model(settings.openai_base_url or OPENAI_BASE_URL, http)

    async with AsyncExitStack() as stack:
        # The stack unwinds in reverse, so storage, opened first, closes after every run ended.
        db = await Database.open(settings.database_url)
        stack.push_async_callback(db.close)
        store = Store(db)
        checkpointer = await stack.enter_async_context(open_checkpointer(settings.database_url))
        leases = await open_leases(db)
        stack.push_async_callback(leases.close)
        journal = SqlJournal(db)
        session: Session
        if settings.langgraph_url:
            assert settings.langgraph_assistant is not None
            server = ServerSession(
                settings.langgraph_url,
                settings.langgraph_assistant,
                SqlThreadIds(db),
                SqlCallKeys(db),
                api_key=(
                    settings.langgraph_api_key.get_secret_value()
                    if settings.langgraph_api_key
                    else None
                ),
            )
            stack.push_async_callback(server.close)
            await server.check()
            session = server
        elif settings.approvals_graph:
            graph = await load_graph(settings.approvals_graph, checkpointer)
            session = AgentSession(
                graph, graph_decides=True, journal=journal, call_keys=SqlCallKeys(db)
            )
        else:
            graph = build_agent(model, tools, policy, checkpointer, journal, journal)
            session = AgentSession(graph)
        directory = Directory(client)
        background = Background()
        messages = ThreadMessages(store, client)
        routing = Routing(store, client, directory)
        cards = Cards(store, messages, background, routing, Home(store, client, routing))
        runner = Runner(
            session=session,
            store=store,
            messages=messages,
            cards=cards,
            background=background,
            policy=policy,
            directory=directory,
            leases=leases,
            metrics=metrics,
            clock=clock,
            secrets=settings.secret_values(),
        )
        decisions = Decisions(runner, policy)

        authorized = AuthorizeResult.from_auth_test_response(
            bot_token=bot_token, auth_test_response=auth
        )

        async def authorize(**_: Any) -> AuthorizeResult:
            # Checked once at startup: no auth.test inside a request, ahead of its ack.
            return authorized

        app = MeasuredApp(
            metrics=metrics,
            client=slack_client(settings, None, metrics, http),
            authorize=authorize,
            signing_secret=(
                settings.slack_signing_secret.get_secret_value()
                if settings.slack_signing_secret
                else None
            ),
            request_verification_enabled=settings.mode == "http",
            process_before_response=True,
        )
        register(app, runner, decisions, str(auth["user_id"]), {t.name: t for t in tools})
        health = Health(db, metrics)

        http_port: int | None = None
        health_port: int | None = None
        socket_mode: AsyncSocketModeHandler | None = None
        if settings.mode == "socket":
            assert settings.slack_app_token is not None
            socket_mode = AsyncSocketModeHandler(app, settings.slack_app_token.get_secret_value())
            health.slack_connected = socket_mode.client.is_connected
            # Closed after the drain: probes keep answering ("not ready") while runs finish.
            health_runner, health_port = await serve(health, settings.host, settings.health_port)
            stack.push_async_callback(health_runner.cleanup)

        stack.push_async_callback(_drain, runner)
        # What happened while no bot ran: deadlines that passed, work a stopped process left.
        await decisions.expire_due()
        await Recovery(runner).recover()
        reminders = Reminders(runner)
        await reminders.sweep()
        sweeper = asyncio.create_task(decisions.sweep_forever(), name="expiry sweeper")
        stack.push_async_callback(_cancel, sweeper)
        reminder = asyncio.create_task(reminders.sweep_forever(), name="reminder sweeper")
        stack.push_async_callback(_cancel, reminder)

        if socket_mode is not None:
            await socket_mode.connect_async()  # type: ignore[no-untyped-call]  # slack-bolt
            stack.push_async_callback(_close_socket, socket_mode)
        else:
            assert settings.slack_signing_secret is not None
            web_app = _events_app(app, settings.slack_signing_secret.get_secret_value())
            health.add_routes(web_app)
            web_runner = web.AppRunner(web_app, shutdown_timeout=INTAKE_CLOSE_TIMEOUT_S)
            await web_runner.setup()
            site = web.TCPSite(web_runner, settings.host, settings.port)
            await site.start()
            stack.push_async_callback(web_runner.cleanup)
            http_port = web_runner.addresses[0][1]
        # First on the way out: /readyz says "not ready" before intake closes and runs drain.
        stack.callback(setattr, health, "draining", True)

        agent = describe_agent(settings, model)
        log.info(
            "slack-approvals is up (%s mode, bot %s, agent: %s)",
            settings.mode,
            auth["user_id"],
            agent,
        )
        yield RunningBot(
            settings=settings,
            app=app,
            runner=runner,
            decisions=decisions,
            store=store,
            bot_user_id=str(auth["user_id"]),
            team_id=str(auth["team_id"]),
            model_description=agent,
            http_port=http_port,
            health_port=health_port,
            metrics=metrics,
        )


def describe_agent(settings: Settings, model: BaseChatModel) -> str:
    """What answers in the threads, for the start-up line and the sandbox banner."""
    if settings.langgraph_url:
        return f"{settings.langgraph_assistant} on LangGraph Server {settings.langgraph_url}"
    if settings.approvals_graph:
        return f"APPROVALS_GRAPH={settings.approvals_graph}"
    return describe_model(model)


EVENTS_PATH = "/slack/events"
MAX_BODY_BYTES = 1024 * 1024


def _events_app(app: AsyncApp, signing_secret: str) -> web.Application:
    """/slack/events that verifies the raw body's signature before Bolt parses anything:
    Bolt's adapter parses first, so unsigned junk would otherwise reach its parser (500)."""
    verifier = SignatureVerifier(signing_secret)

    @web.middleware
    async def signed_only(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path != EVENTS_PATH:
            passed: web.StreamResponse = await handler(request)
            return passed
        body = await request.read()  # aiohttp answers 413 past client_max_size
        stamp = request.headers.get("X-Slack-Request-Timestamp", "")
        signature = request.headers.get("X-Slack-Signature", "")
        if not (stamp.isascii() and stamp.isdigit() and verifier.is_valid(body, stamp, signature)):
            return web.json_response({"error": "invalid request"}, status=401)
        verified: web.StreamResponse = await handler(request)
        return verified

    async def events(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await app.async_dispatch(await to_bolt_request(request)))

    web_app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[signed_only])
    web_app.router.add_post(EVENTS_PATH, events)
    return web_app


async def _close_socket(handler: AsyncSocketModeHandler) -> None:
    # slack-sdk's aiohttp client can linger ~10 s in its ping loop: bound it.
    with contextlib.suppress(TimeoutError):
        closing = handler.close_async()  # type: ignore[no-untyped-call]  # slack-bolt
        await asyncio.wait_for(closing, SOCKET_CLOSE_TIMEOUT_S)


async def _drain(runner: Runner) -> None:
    """Let running turns finish; past the bound, park them. A run cancelled inside a tool
    stays "started" in the journal, so recovery reports it instead of running it again."""
    if not await runner.wait_idle(DRAIN_TIMEOUT_S):
        await runner.cancel_all(CANCEL_TIMEOUT_S)


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
