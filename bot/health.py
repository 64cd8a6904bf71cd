"""`/healthz`, `/readyz` and `/metrics`: on the Slack events app in HTTP mode, and on a small
server of their own (`HEALTH_PORT`) in Socket Mode, where nothing else listens."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from bot.db import Database
from bot.metrics import Metrics
from bot.settings import SettingsError

log = logging.getLogger(__name__)

CHECK_TIMEOUT_S = 2.0
SHUTDOWN_TIMEOUT_S = 1.0


class Health:
    def __init__(
        self,
        db: Database,
        metrics: Metrics,
        slack_connected: Callable[[], Awaitable[bool]] | None = None,
    ) -> None:
        """`slack_connected` checks the Socket Mode connection. HTTP mode has none to check:
        Slack calls us, and a Slack outage is no reason to leave the load balancer."""
        self._db = db
        self._metrics = metrics
        self.slack_connected = slack_connected
        self.draining = False

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/readyz", self.readyz)
        app.router.add_get("/metrics", self.metrics)

    async def healthz(self, _: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def readyz(self, _: web.Request) -> web.Response:
        checks = {"accepting": not self.draining, "database": await self._database_ok()}
        if self.slack_connected is not None:
            checks["slack"] = await self._slack_ok(self.slack_connected)
        ready = all(checks.values())
        return web.json_response({"ok": ready, **checks}, status=200 if ready else 503)

    async def metrics(self, _: web.Request) -> web.Response:
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_S):
                await self._metrics.refresh(self._db)
        except Exception:
            # The other series are still worth a scrape; the gauges keep their last value.
            log.warning("could not read approval counts for /metrics", exc_info=True)
        return web.Response(
            body=self._metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def _database_ok(self) -> bool:
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_S):
                return await self._db.ping()
        except Exception as exc:
            log.warning("readiness: database unreachable: %s", exc)
            return False

    @staticmethod
    async def _slack_ok(connected: Callable[[], Awaitable[bool]]) -> bool:
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_S):
                return await connected()
        except Exception as exc:
            log.warning("readiness: Slack connection check failed: %s", exc)
            return False


async def serve(health: Health, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Start the stand-alone server; returns it and the port it got (for `HEALTH_PORT=0`)."""
    app = web.Application()
    health.add_routes(app)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        raise SettingsError(
            f"cannot serve /healthz on {host}:{port} ({exc.strerror}): "
            "set HEALTH_PORT to a free port, or 0 for any"
        ) from None
    return runner, runner.addresses[0][1]
