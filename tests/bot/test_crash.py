"""kill -9 at every stage of an approval, then a restart: no call runs twice, nothing approved
is dropped, and the thread tells the truth about each call (docs/design.md, "A gated tool
runs at most once, and only after a recorded approval" and "A crash mid-tool is reported,
never re-run"). SIGTERM: the
running turn may finish, within a bound; a second SIGTERM exits at once.

The bot is a real `slack-approvals run` process, taking Slack's deliveries over HTTP and over
Socket Mode, on both databases: the clicks and `/ask` take the intake's fast path in both
(bot.intake), so a kill -9 right after such an ack is among the stages. It is held
at a stage from outside only: a Slack call the emulator delays, or a tool waiting on a file.
Every round holds one conversation at each stage at once, then kills the process, so one
restart checks all stages.
Each delay is scoped to its conversation's thread (or a channel of its own), so no other
conversation's call can meet it in its place, whatever order the runs post in.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import signal
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from _pytest.mark.structures import ParameterSet

from tests.support.botproc import Deployment, deployment
from tests.support.pg import BACKENDS, database_url

ROUNDS = 5
STAGES = ("after_ack", "after_claim", "in_tool", "after_tool", "before_reply")
# A Slack call held this long never returns within the test: the bot dies while it waits.
LONG = 600.0
CHANNEL = "C0OPS"
# The unposted card's conversation: its top-level post is held by channel, as it has no
# thread yet, so it lives where no other conversation posts.
ALONE = "C0GENERAL"
APPROVE = "approval_approve"


@dataclass(frozen=True)
class Trial:
    stage: str
    cluster: str
    tool: str
    thread: str
    card: str
    channel: str = CHANNEL


async def ask(d: Deployment, stage: str, cluster: str, channel: str = CHANNEL) -> Trial:
    """Ask for the call a stage is about; the card is not waited for (`card` is empty)."""
    if stage == "after_ack":
        tool, text = "restart_service", f"restart {cluster}"
    elif stage == "expired":
        tool, text = "drain_node", f"drain {cluster}"
    elif stage == "in_sync_tool":
        tool, text = "wipe_cache", f"wipe {cluster}"
    else:
        tool, text = "scale_down", f"scale down {cluster} to 1"
    return Trial(stage, cluster, tool, await d.ui.ask(text, channel=channel), "", channel)


async def open_trial(d: Deployment, stage: str, cluster: str) -> Trial:
    trial = await ask(d, stage, cluster)
    [card] = await d.ui.wait_cards(trial.channel, trial.thread)
    await d.card_recorded(card.ts)
    return dataclasses.replace(trial, card=card.ts)


async def click(d: Deployment, user: str, trial: Trial) -> None:
    delivery = await d.slack.click(user, trial.channel, trial.card, APPROVE)
    assert delivery.ack is not None and delivery.ack.status == 200, delivery


async def hold_in_tool(d: Deployment, trial: Trial) -> Trial:
    """Approved, and held inside its tool until `d.release(trial.cluster)`."""
    d.hold(trial.cluster)
    await click(d, "U0BOB", trial)
    await d.wait("the tool to start", lambda: d.started(trial.cluster) == 1)
    return trial


async def hold_every_stage(d: Deployment, round_no: int) -> dict[str, Trial]:
    slack = d.slack
    letters = dict(zip(STAGES, "abcde", strict=True))
    trials = {
        t.stage: t
        for t in await asyncio.gather(
            *(open_trial(d, s, f"c{round_no}{letters[s]}") for s in STAGES)
        )
    }

    # After the click's ack, before the claim: the approver check waits on Slack. Dave is
    # allowed through the on-call group only, so his click must look the group up.
    slack.inject_fault("usergroups.users.list", "delay", delay=LONG)
    await click(d, "U0DAVE", trials["after_ack"])
    await d.wait("the group lookup", lambda: not slack.faults_left("usergroups.users.list"))

    # After the claim: the card update waits on Slack.
    trial = trials["after_claim"]
    slack.inject_fault("chat.update", "delay", delay=LONG, thread_ts=trial.thread)
    await click(d, "U0BOB", trial)
    await d.wait(
        "the card update", lambda: not slack.faults_left("chat.update", thread_ts=trial.thread)
    )

    # Inside the tool, its card not drawn yet: an approved card waits for the tool (or a
    # fallback), and that draw waits on Slack.
    trial = trials["in_tool"]
    slack.inject_fault("chat.update", "delay", delay=LONG, thread_ts=trial.thread)
    await hold_in_tool(d, trial)
    await d.wait(
        "its card's update", lambda: not slack.faults_left("chat.update", thread_ts=trial.thread)
    )

    # After the tool: it returned, and the notice that it ran is on its way to Slack.
    trial = await hold_in_tool(d, trials["after_tool"])
    slack.inject_fault("chat.postMessage", "delay", delay=LONG, thread_ts=trial.thread)
    d.release(trial.cluster)
    await d.wait(
        "the tool's notice",
        lambda: d.finished(trial.cluster) == 1 and not posts_held(d, trial),
    )

    # Before the reply is posted: the notice went out, the model's answer is on its way.
    trial = trials["before_reply"]
    slack.inject_fault("chat.postMessage", "delay", delay=0.0, thread_ts=trial.thread)
    slack.inject_fault("chat.postMessage", "delay", delay=LONG, thread_ts=trial.thread)
    await click(d, "U0BOB", trial)
    await d.wait("the model's reply", lambda: not posts_held(d, trial))
    assert ran_notices(d, trial) == 1

    # A card whose post never got through: the approval is on record, the card is not.
    slack.inject_fault("chat.postMessage", "delay", delay=0.0, channel=ALONE)  # the root
    slack.inject_fault("chat.postMessage", "delay", delay=LONG, channel=ALONE)
    trials["unposted"] = await ask(d, "unposted", f"c{round_no}p", ALONE)
    await d.wait(
        "the card's post", lambda: not slack.faults_left("chat.postMessage", channel=ALONE)
    )

    # A request that expires while no bot runs (one second after its card, which the bot has
    # recorded: the card must show the expiry).
    trials["expired"] = await open_trial(d, "expired", f"c{round_no}x")
    return trials


def as_param(backend: object) -> ParameterSet:
    return backend if isinstance(backend, ParameterSet) else pytest.param(backend)


def posts_held(d: Deployment, trial: Trial) -> int:
    return d.slack.faults_left("chat.postMessage", thread_ts=trial.thread)


def ran_notices(d: Deployment, trial: Trial) -> int:
    return sum(f"`{trial.tool}` ran:" in t for t in d.ui.texts(trial.channel, trial.thread))


def said(d: Deployment, trial: Trial, needle: str) -> bool:
    return any(needle in t for t in d.ui.texts(trial.channel, trial.thread))


def card_says(d: Deployment, trial: Trial, needle: str) -> bool:
    return needle in json.dumps(d.slack.message(trial.channel, trial.card).blocks)


async def check_recovered(d: Deployment, trials: dict[str, Trial]) -> None:
    # The click that died before its claim was never recorded: the card still asks.
    trial = trials["after_ack"]
    assert d.slack.message(trial.channel, trial.card).buttons(), "the card lost its buttons"
    await click(d, "U0BOB", trial)
    await d.wait("the re-click's run", lambda: said(d, trial, "Summary:"))
    assert ran_notices(d, trial) == 1 and d.finished(trial.cluster) == 1

    trial = trials["after_claim"]
    await d.wait("the claimed call's run", lambda: said(d, trial, "Summary:"))
    assert card_says(d, trial, "Approved by <@U0BOB>")
    assert ran_notices(d, trial) == 1 and d.finished(trial.cluster) == 1

    trial = trials["in_tool"]
    await d.wait("the outcome-unknown notice", lambda: said(d, trial, "outcome unknown"))
    await d.wait("its card", lambda: card_says(d, trial, "Approved by <@U0BOB>"))
    assert d.started(trial.cluster) == 1 and d.finished(trial.cluster) == 0
    assert said(d, trial, "check by hand") and ran_notices(d, trial) == 0
    # The thread is told first and the audit written right after: poll for the row.
    for _ in range(100):
        audited = await d.db.fetchone(
            "SELECT COUNT(*) AS n FROM audit WHERE event = 'outcome_unknown' AND args LIKE ?",
            (f'%"{trial.cluster}"%',),
        )
        if audited != {"n": 0}:
            break
        await asyncio.sleep(0.1)
    assert audited == {"n": 1}
    d.release(trial.cluster)

    for stage in ("after_tool", "before_reply"):
        trial = trials[stage]
        await d.wait(f"{stage}: the notice that it ran", functools.partial(ran_notices, d, trial))
        # Stopped while the notice was on its way (after_tool), the run goes on to the model's
        # answer; stopped while the answer was on its way (before_reply), it is posted.
        await d.wait(f"{stage}: the model's answer", lambda: said(d, trial, "Summary:"))  # noqa: B023

    # The card that was never posted is posted by recovery, and works.
    trial = trials["unposted"]
    [card] = await d.ui.wait_cards(trial.channel, trial.thread)
    await d.card_recorded(card.ts)
    await click(d, "U0BOB", dataclasses.replace(trial, card=card.ts))
    await d.wait("the reposted card's run", lambda: said(d, trial, "Summary:"))
    assert ran_notices(d, trial) == 1 and d.finished(trial.cluster) == 1

    trial = trials["expired"]
    await d.wait("the expiry", lambda: card_says(d, trial, "Expired"))
    await d.wait("the model told of the expiry", lambda: said(d, trial, "Summary:"))
    assert said(d, trial, "was not run") and d.started(trial.cluster) == 0

    async def settled() -> bool:
        left = await d.db.fetchall(
            "SELECT id FROM approvals WHERE status = 'pending' OR resumed_at IS NULL"
        )
        return not left

    await d.wait("every approval decided and handed to the agent", settled)
    for trial in trials.values():
        texts = d.ui.texts(trial.channel, trial.thread)
        assert ran_notices(d, trial) <= 1, texts
        assert sum("Summary:" in t for t in texts) <= 1, texts
    assert await d.db.fetchall("SELECT seq FROM outbox") == []


@pytest.mark.parametrize(
    ("backend", "transport"),
    [
        pytest.param(*b.values, transport, marks=b.marks)
        for b in map(as_param, BACKENDS)
        for transport in ("http", "socket")
    ],
)
async def test_kill_9_at_every_stage_loses_nothing_and_runs_nothing_twice(
    backend: str, transport: str, tmp_path: Path
) -> None:
    per_stage: Counter[str] = Counter()
    async with (
        database_url(backend, tmp_path) as url,
        deployment(tmp_path, url, 1, transport=transport) as d,
    ):
        [bot] = d.bots
        all_trials: list[Trial] = []
        for round_no in range(ROUNDS):
            trials = await hold_every_stage(d, round_no)
            await bot.kill()
            await d.start()
            await check_recovered(d, trials)
            per_stage.update(trials.keys())
            all_trials.extend(trials.values())

        started = Counter({t.cluster: d.started(t.cluster) for t in all_trials})
        twice = {c: n for c, n in started.items() if n > 1}
        notices = {t.cluster: ran_notices(d, t) for t in all_trials}
        repeated = {c: n for c, n in notices.items() if n > 1}
        print(
            f"\n[{backend}, {transport}] kill -9 trials per stage: {dict(per_stage)}; "
            f"executions: {sum(started.values())}; ran twice: {len(twice)}; "
            f"repeated notices: {len(repeated)}"
        )
        assert twice == {} and repeated == {}
        assert per_stage == dict.fromkeys((*STAGES, "unposted", "expired"), ROUNDS)
        # Each approved call ran once (the unposted card's after its repost), none expired.
        assert sum(started.values()) == ROUNDS * (len(STAGES) + 1)


async def test_kill_9_while_a_plain_answer_is_on_its_way_posts_it_once_at_restart(
    tmp_path: Path,
) -> None:
    async with deployment(tmp_path, f"sqlite:///{tmp_path / 'bot.sqlite3'}", 1) as d:
        [bot] = d.bots
        d.slack.inject_fault("chat.postMessage", "delay", delay=0.0, channel=ALONE)  # the root
        d.slack.inject_fault("chat.postMessage", "delay", delay=LONG, channel=ALONE)  # answer
        thread = await d.ui.ask("hello there", channel=ALONE)
        await d.wait(
            "the answer's post",
            lambda: not d.slack.faults_left("chat.postMessage", channel=ALONE),
        )
        await bot.kill()
        await d.start()

        async def posted() -> bool:
            return await d.db.fetchall("SELECT seq FROM outbox") == []

        await d.wait("the outbox to empty", posted)
        answers = [t for t in d.ui.texts(ALONE, thread) if "You said: hello there" in t]
        assert len(answers) == 1
        assert "Traceback" not in bot.tail()


async def test_sigterm_drains_the_running_turn_and_a_second_sigterm_exits_at_once(
    tmp_path: Path,
) -> None:
    async with deployment(tmp_path, f"sqlite:///{tmp_path / 'bot.sqlite3'}", 1) as d:
        [bot] = d.bots
        graceful = await hold_in_tool(d, await open_trial(d, "in_tool", "term1"))

        bot.signal(signal.SIGTERM)
        await asyncio.sleep(0.5)
        assert bot.running, "the bot quit with a turn still running"
        with pytest.raises(aiohttp.ClientConnectionError):  # intake closed first
            async with aiohttp.ClientSession() as session:
                await session.get(bot.url + "/healthz")
        d.release(graceful.cluster)
        assert await bot.wait_exit(15) == 0
        assert said(d, graceful, "Summary:") and ran_notices(d, graceful) == 1

        await d.start()
        # Inside a sync tool: its worker thread must not hold the exit up.
        cut = await hold_in_tool(d, await open_trial(d, "in_sync_tool", "term2"))
        bot.signal(signal.SIGTERM)
        await asyncio.sleep(0.3)
        bot.signal(signal.SIGTERM)
        assert await bot.wait_exit(3) != 0

        await d.start()
        await d.wait("the outcome-unknown notice", lambda: said(d, cut, "outcome unknown"))
        assert d.started(cut.cluster) == 1 and d.finished(cut.cluster) == 0
        d.release(cut.cluster)
