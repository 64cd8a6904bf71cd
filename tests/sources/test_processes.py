"""Each source under real bot processes (`slack-approvals run`, configured by environment
only): kill -9 while an approved call runs, and two replicas sharing one database."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.support.botproc import deployment
from tests.support.langgraph_server import langgraph_server
from tests.support.operator import operator_model
from tests.support.pg import BACKENDS, database_url, requires_postgres

pytestmark = pytest.mark.timeout(300)
CHANNEL = "C0OPS"
APPROVE = "approval_approve"
CUSTOM = {"APPROVALS_GRAPH": "tests.support.custom_graph:durable_agent", "APPROVALS_TOOLS": None}
CLICKERS = ["U0BOB", "U0DAVE", "U0CAROL"]


async def test_custom_graph_a_kill_inside_a_tool_is_reported_not_run_again(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'bot.sqlite3'}"
    async with deployment(tmp_path, url, 1, env=CUSTOM) as d:
        thread = await d.ui.ask("scale down k1 to 1")
        [card] = await d.ui.wait_cards(CHANNEL, thread)
        await d.card_recorded(card.ts)
        d.hold("k1")
        await d.slack.click("U0BOB", CHANNEL, card.ts, APPROVE)
        await d.wait("the call to start", lambda: d.started("k1") == 1)
        await d.bots[0].kill()
        d.release("k1")
        await d.start()
        await d.ui.wait_text(CHANNEL, thread, "outcome unknown")
        await d.ui.wait_text(CHANNEL, thread, "Summary:")
        assert d.started("k1") == 1


@pytest.mark.parametrize("backend", BACKENDS)
async def test_custom_graph_on_two_replicas(backend: str, tmp_path: Path) -> None:
    async with (
        database_url(backend, tmp_path) as url,
        deployment(tmp_path, url, 2, env=CUSTOM) as d,
    ):
        thread = await d.ui.ask("scale down r1 to 1")
        [card] = await d.ui.wait_cards(CHANNEL, thread)
        await d.card_recorded(card.ts)
        await asyncio.gather(
            *(d.slack.click(CLICKERS[i % 3], CHANNEL, card.ts, APPROVE) for i in range(20))
        )
        await d.ui.wait_text(CHANNEL, thread, "Summary:")
        await d.wait("19 clicks told", lambda: len(d.slack.ephemerals) == 19)
        assert d.started("r1") == 1


def server_env(url: str) -> dict[str, str | None]:
    return {"LANGGRAPH_URL": url, "LANGGRAPH_ASSISTANT": "agent", "APPROVALS_TOOLS": None}


async def test_server_a_kill_while_the_server_runs_the_call_loses_nothing(
    tmp_path: Path,
) -> None:
    model = await operator_model()
    async with (
        langgraph_server(tmp_path / "server", model.base_url) as server,
        deployment(
            tmp_path,
            f"sqlite:///{tmp_path / 'bot.sqlite3'}",
            1,
            model=model,
            env=server_env(server.url),
        ) as d,
    ):
        thread = await d.ui.ask("scale down s1 to 1")
        [card] = await d.ui.wait_cards(CHANNEL, thread)
        await d.card_recorded(card.ts)
        server.hold("s1")
        await d.slack.click("U0BOB", CHANNEL, card.ts, APPROVE)
        await d.wait("the call to start", lambda: len(server.executions("scale_down")) == 1)
        await d.bots[0].kill()
        server.release("s1")  # the run goes on on the server with no bot watching
        await d.start()
        # What the run did while no bot watched is told once the bot is back.
        await d.ui.wait_text(CHANNEL, thread, "s1 scaled down to 1")
        await d.ui.wait_text(CHANNEL, thread, "Summary:")
        assert server.executions("scale_down") == [{"cluster_id": "s1", "replicas": 1}]


@requires_postgres
async def test_server_with_two_replicas_sharing_postgres(tmp_path: Path) -> None:
    model = await operator_model()
    async with (
        database_url("postgresql", tmp_path) as url,
        langgraph_server(tmp_path / "server", model.base_url) as server,
        deployment(tmp_path, url, 2, model=model, env=server_env(server.url)) as d,
    ):
        threads = [await d.ui.ask(f"scale down p{i} to 1") for i in range(3)]
        for i, thread in enumerate(threads):
            [card] = await d.ui.wait_cards(CHANNEL, thread)
            await d.card_recorded(card.ts)
            await asyncio.gather(
                *(d.slack.click(CLICKERS[j % 3], CHANNEL, card.ts, APPROVE) for j in range(10))
            )
            await d.ui.wait_text(CHANNEL, thread, f"p{i} scaled down to 1")
            await d.ui.wait_text(CHANNEL, thread, "Summary:")
        # One server thread per conversation, shared by both replicas.
        rows = await d.db.fetchall("SELECT DISTINCT thread_id FROM server_threads")
        assert len(rows) == 3
        assert sorted(str(a["cluster_id"]) for a in server.executions("scale_down")) == [
            "p0",
            "p1",
            "p2",
        ]
