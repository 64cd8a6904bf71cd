"""Prometheus metrics of one bot process: approvals by status, ack latency, run duration,
Slack API errors.

Each bot has its own registry, so several bots in one process (tests, benchmarks) never
share or double-register series.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

from bot.conversation import Conversation
from bot.db import Database
from bot.logcontext import log_context
from bot.reports import approvals_by_status, waiting_for_slack
from bot.store import DECIDED

ACK_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 3.0)
RUN_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.approvals = Gauge(
            "slack_approvals_approvals",
            "Approvals in the database by status: pending, or how they were decided",
            ["status"],
            registry=self.registry,
        )
        self.waiting_for_slack = Gauge(
            "slack_approvals_waiting_for_slack",
            "Thread messages and approval cards Slack has not taken yet, tried again with backoff",
            ["what"],
            registry=self.registry,
        )
        self.ack_seconds = Histogram(
            "slack_approvals_ack_seconds",
            "From a Slack request reaching the listeners to its ack",
            ["kind"],
            buckets=ACK_BUCKETS,
            registry=self.registry,
        )
        self.run_seconds = Histogram(
            "slack_approvals_run_seconds",
            "How long one run of a conversation held its lease (agent, tools and Slack posts)",
            buckets=RUN_BUCKETS,
            registry=self.registry,
        )
        self.lease_wait_seconds = Histogram(
            "slack_approvals_lease_wait_seconds",
            "How long a run waited for its conversation's lease (another run, maybe elsewhere)",
            buckets=RUN_BUCKETS,
            registry=self.registry,
        )
        self.slack_api_errors = Counter(
            "slack_approvals_slack_api_errors",
            "Failed Slack Web API attempts, whether or not a retry followed",
            ["method", "kind"],
            registry=self.registry,
        )

    async def refresh(self, db: Database) -> None:
        """Read the approval counts; the database is shared, so every replica reports the
        same totals (aggregate with max, not sum)."""
        counts: dict[str, int] = dict.fromkeys(("pending", *DECIDED), 0)
        counts.update(await approvals_by_status(db))
        for status, count in counts.items():
            self.approvals.labels(status).set(count)
        for kind, count in (await waiting_for_slack(db)).items():
            self.waiting_for_slack.labels(kind).set(count)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class MeasuredApp(AsyncApp):
    """Bolt's app, timing each request from dispatch to response. With
    `process_before_response` the listeners ack before that returns, so this is the ack
    latency, at a cost of microseconds; and everything a request starts logs the approval
    and conversation it is about (contextvars follow into spawned tasks)."""

    def __init__(self, *, metrics: Metrics, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._ack_seconds = metrics.ack_seconds

    async def async_dispatch(self, req: AsyncBoltRequest) -> BoltResponse:
        with self.measuring(req.body if isinstance(req.body, dict) else {}):
            return await super().async_dispatch(req)

    @contextmanager
    def measuring(self, body: dict[str, Any], started: float | None = None) -> Iterator[None]:
        """Times one request up to its ack (from `started`, a `perf_counter()` reading, or
        now), with what it starts logged under the approval and conversation it is about:
        Bolt's dispatch and the intake's fast path (`bot.intake`) alike."""
        started = time.perf_counter() if started is None else started
        with log_context(**_subjects(body)):
            yield
        self._ack_seconds.labels(_kind(body)).observe(time.perf_counter() - started)


class SlackErrorCounter(AsyncRetryHandler):
    """Counts every failed Web API attempt. Placed first among the retry handlers, which
    slack-sdk asks after each attempt; it never asks for a retry itself."""

    def __init__(self, metrics: Metrics) -> None:
        super().__init__(max_retry_count=0)
        self._errors = metrics.slack_api_errors

    async def can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        kind = _failure(response, error)
        if kind is not None:
            self._errors.labels(request.url.rsplit("/", 1)[-1], kind).inc()
        return False


def _failure(response: HttpResponse | None, error: Exception | None) -> str | None:
    if error is not None:
        return "timeout" if isinstance(error, TimeoutError) else "connection"
    if response is None:
        return None
    if response.status_code == 429:
        return "ratelimited"
    if response.status_code >= 500:
        return "server_error"
    if response.status_code != 200:
        return "http_error"
    if isinstance(response.body, dict) and response.body.get("ok") is False:
        return "api_error"
    return None


_KINDS = frozenset(
    {"event_callback", "block_actions", "view_submission", "view_closed", "shortcut"}
)


def _kind(body: dict[str, Any]) -> str:
    if "command" in body:
        return "slash_command"
    kind = body.get("type")
    return kind if isinstance(kind, str) and kind in _KINDS else "other"


def _text(obj: object, key: str) -> str | None:
    """`obj[key]` if both are what Slack sends; any payload may be malformed or hostile."""
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if isinstance(value, str) and value else None


def _subjects(body: dict[str, Any]) -> dict[str, str | None]:
    """The approval (a button's value) and conversation (its thread) a request is about."""
    team = _text(body, "team_id") or _text(body.get("team"), "id")
    actions = body.get("actions")
    values = [_text(a, "value") for a in actions] if isinstance(actions, list) else []
    approval = next((v for v in values if v is not None and v.startswith("ap_")), None)
    container, message, event = body.get("container"), body.get("message"), body.get("event")
    channel = _text(container, "channel_id") or _text(event, "channel")
    thread = (
        _text(container, "thread_ts")
        or _text(message, "thread_ts")
        or _text(event, "thread_ts")
        or _text(event, "ts")
    )
    conversation = Conversation(team, channel, thread).key if team and channel and thread else None
    return {"conversation": conversation, "approval": approval}
