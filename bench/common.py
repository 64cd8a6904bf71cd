"""What every benchmark shares: the emulator, the conversations it drives through the processes
under test (`bench.processes`), and the command line (the results they yield are
`bench.results`)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import uuid
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from agent.policy import Policy
from bench.processes import BotProcess
from bench.results import UNACKED, Row, print_report
from bot import blocks
from bot.sandbox.emulator import Delivery, SlackEmulator
from tests.support.approvals import an_approval

REQUESTER = "U0ALICE"
APPROVER = "U0BOB"
# Conversations are spread over channels as in a real workspace; it also keeps the emulator's
# per-channel scans (a root message's reply count) short.
CHANNELS = {f"C0BENCH{i:02d}": f"bench-{i:02d}" for i in range(20)}


def quiet_logs() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(logging.WARNING)


def emulator() -> SlackEmulator:
    """The benchmarks' Slack, with channels enough to spread conversations over; started and
    stopped by `async with`."""
    return SlackEmulator(channels=CHANNELS)


@dataclass(frozen=True)
class Card:
    approval_id: str
    channel: str
    ts: str
    cluster: str


# The bare app's cards show the rules the bot's cards show in the benchmarks.
BARE_POLICY = Policy.parse("defaults: {expires_after: 1d}")

# Ids stay unique when a database is reused across runs (a PostgreSQL URL given by hand).
RUN = uuid.uuid4().hex[:4]


def cluster_ids(tag: str, count: int) -> list[str]:
    return [f"{RUN}{tag}-{i:05d}" for i in range(count)]


def channel_for(i: int) -> str:
    return list(CHANNELS)[i % len(CHANNELS)]


def latencies(deliveries: Iterable[Delivery]) -> list[float]:
    """Ack latencies (s) of the deliveries that were acked; the others go to UNACKED."""
    found = []
    for delivery in deliveries:
        if delivery.ack is None or delivery.ack.status != 200:
            UNACKED[delivery.kind] += 1
        else:
            found.append(delivery.ack.latency)
    return found


async def bounded(coros: Iterable[Any], limit: int | None) -> list[Any]:
    """gather(), with at most `limit` awaiting at once."""
    if limit is None:
        return list(await asyncio.gather(*coros))
    gate = asyncio.Semaphore(limit)

    async def one(coro: Any) -> Any:
        async with gate:
            return await coro

    return list(await asyncio.gather(*(one(c) for c in coros)))


async def ask_many(
    emu: SlackEmulator, clusters: Sequence[str], *, per_ask: int = 1, limit: int | None = None
) -> list[float]:
    """`/ask` one conversation per `per_ask` clusters; returns the acks' latencies (s)."""
    asks = []
    for n, i in enumerate(range(0, len(clusters), per_ask)):
        text = " and ".join(f"scale down {c} to 2" for c in clusters[i : i + per_ask])
        asks.append(emu.slash_command(REQUESTER, channel_for(n), "/ask", text))
    return latencies(await bounded(asks, limit))


async def click_many(
    emu: SlackEmulator, cards: Sequence[Card], *, limit: int | None = None
) -> list[float]:
    """Approve every card at once; returns the acks' latencies (s)."""
    clicks = (emu.click(APPROVER, c.channel, c.ts, blocks.APPROVE_ACTION) for c in cards)
    return latencies(await bounded(clicks, limit))


async def waiting_cards(
    emu: SlackEmulator, bots: Sequence[BotProcess], clusters: Sequence[str], *, batch: int = 50
) -> list[Card]:
    """One conversation waiting on one card per cluster: asked for `batch` at a time, each
    batch's runs finished in every bot before the next is asked for."""
    for i in range(0, len(clusters), batch):
        await ask_many(emu, clusters[i : i + batch])
        for bot in bots:
            await bot.call("idle")
    return await cards_of(bots[0], clusters)


async def cards_of(bot: BotProcess, clusters: Iterable[str] | None = None) -> list[Card]:
    """The bot's pending cards, for these clusters when given."""
    wanted = None if clusters is None else set(clusters)
    cards = [Card(*c) for c in (await bot.call("pending"))["cards"]]
    return [c for c in cards if wanted is None or c.cluster in wanted]


async def post_bare_cards(emu: SlackEmulator, clusters: Sequence[str]) -> list[Card]:
    """Cards like the bot's for the bare app to be clicked on: the same blocks, so Bolt parses
    payloads of the same size in both."""
    client = AsyncWebClient(token=emu.bot_token, base_url=emu.api_url)
    cards = []
    for i, cluster in enumerate(clusters):
        approval = an_approval(
            f"ap_bare{i:08d}",
            channel=channel_for(i),
            args={"cluster_id": cluster, "replicas": 2},
            requester=REQUESTER,
            policy=BARE_POLICY,
        )
        posted = await client.chat_postMessage(
            channel=approval.channel,
            text=blocks.card_text(approval),
            blocks=blocks.approval_card(approval),
        )
        cards.append(Card(approval.id, approval.channel, str(posted["ts"]), cluster))
    return cards


def bench_main(
    doc: str,
    title: str,
    run: Callable[..., Coroutine[Any, Any, list[Row]]],
    full: object,
    quick: object,
    *,
    takes_database_url: bool = False,
) -> None:
    """One benchmark's command line: `--quick` for its small sizes (and `--database-url`
    where it runs on PostgreSQL too); prints its table."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a quick look")
    if takes_database_url:
        parser.add_argument(
            "--database-url", help="postgresql://… of a scratch database, for two replicas on it"
        )
    args = parser.parse_args()
    quiet_logs()
    extra = (args.database_url,) if takes_database_url else ()
    print_report(title, asyncio.run(run(quick if args.quick else full, *extra)))
