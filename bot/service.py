"""The composition root: from settings to a running bot, and a bounded, orderly stop.

The start-up checks (`bot.preflight`) and Slack's intake and client (`bot.intake`) are
imported under the private names they had when they lived here."""

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
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_sdk.errors import SlackApiError

from agent.builder import build_agent
from agent.checkpointer import open_checkpointer
from agent.model import describe_model, make_model
from agent.server_session import ServerSession
from agent.session import AgentSession, Session
from agent.sources import load_graph
from agent.tracing import keep_untraced_hooks_in_place
from bot.bursts import Bursts
from bot.cards import Cards
from bot.clock import Clock
from bot.db import Database
from bot.decisions import Decisions
from bot.directory import Directory
from bot.health import Health, serve
from bot.home import Home
from bot.intake import FastPath, SocketModeHandler, slack_client
from bot.intake import close_socket as _close_socket
from bot.intake import events_app as _events_app
from bot.lease import open_leases
from bot.listeners import register
from bot.metrics import MeasuredApp, Metrics
from bot.outbox import ThreadMessages
from bot.preflight import OPENAI_BASE_URL
from bot.preflight import check_groups as _check_groups
from bot.preflight import probe_model as _probe_model
from bot.preflight import reason as _reason
from bot.preflight import tools_and_policy as _tools_and_policy
from bot.recovery import Recovery
from bot.reminders import Reminders
from bot.routing import Routing
from bot.runner import Runner
from bot.server_threads import SqlThreadIds
from bot.settings import Settings, SettingsError
from bot.store import SqlJournal, Store
from bot.tasks import Background

log = logging.getLogger(__name__)

# Inside the 30 s that Kubernetes (and most supervisors) give between SIGTERM and SIGKILL.
DRAIN_TIMEOUT_S = 25.0
CANCEL_TIMEOUT_S = 3.0
INTAKE_CLOSE_TIMEOUT_S = 3.0


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
    fast_path: FastPath
    """What both intakes take from Slack ahead of Bolt's dispatch (bot.intake)."""


@asynccontextmanager
async def running_bot(settings: Settings, clock: Clock | None = None) -> AsyncIterator[RunningBot]:
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
    keep_untraced_hooks_in_place()
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
        checkpointer = await stack.enter_async_context(
            open_checkpointer(settings.database_url, fsync_each_commit=False)
        )
        leases = await open_leases(db)
        stack.push_async_callback(leases.close)
        background = Background()
        directory = Directory(client)
        messages = ThreadMessages(store, client)
        routing = Routing(store, client, directory)
        cards = Cards(store, messages, background, routing, Home(store, client, routing))
        journal = SqlJournal(db, on_begin=cards.release)
        session: Session
        if settings.langgraph_url:
            assert settings.langgraph_assistant is not None
            server = ServerSession(
                settings.langgraph_url,
                settings.langgraph_assistant,
                SqlThreadIds(db),
                store,
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
            session = AgentSession(graph, graph_decides=True, journal=journal, call_keys=store)
        else:
            graph = build_agent(model, tools, policy, checkpointer, journal, journal)
            session = AgentSession(graph)
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
        fast_path = register(
            app,
            runner,
            decisions,
            str(auth["user_id"]),
            {t.name: t for t in tools},
            str(auth["team_id"]),
        )
        health = Health(db, metrics)
        bursts = Bursts(runner.background)

        http_port: int | None = None
        health_port: int | None = None
        socket_mode: SocketModeHandler | None = None
        if settings.mode == "socket":
            assert settings.slack_app_token is not None
            socket_mode = SocketModeHandler(
                app, settings.slack_app_token.get_secret_value(), fast_path, bursts
            )
            health.slack_connected = socket_mode.client.is_connected
            # Closed after the drain: probes keep answering ("not ready") while runs finish.
            health_runner, health_port = await serve(health, settings.host, settings.health_port)
            stack.push_async_callback(health_runner.cleanup)

        stack.push_async_callback(_drain, runner, bursts)
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
            web_app = _events_app(
                app, settings.slack_signing_secret.get_secret_value(), fast_path, bursts
            )
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
            fast_path=fast_path,
        )


def describe_agent(settings: Settings, model: BaseChatModel) -> str:
    """What answers in the threads, for the start-up line and the sandbox banner."""
    if settings.langgraph_url:
        return f"{settings.langgraph_assistant} on LangGraph Server {settings.langgraph_url}"
    if settings.approvals_graph:
        return f"APPROVALS_GRAPH={settings.approvals_graph}"
    return describe_model(model)


async def _drain(runner: Runner, bursts: Bursts) -> None:
    """Start what the intake held back (it has been acked), let running turns finish; past
    the bound, park them. A run cancelled inside a tool stays "started" in the journal, so
    recovery reports it instead of running it again."""
    bursts.flush()
    if not await runner.wait_idle(DRAIN_TIMEOUT_S):
        await runner.cancel_all(CANCEL_TIMEOUT_S)


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
