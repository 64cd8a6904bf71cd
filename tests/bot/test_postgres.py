"""PostgreSQL next to SQLite: one `Database` interface, set-up that replicas may race, claims
and leases that hold across processes, and two bot processes sharing one database
(docs/design.md, "A gated tool runs at most once, and only after a recorded approval" and
"One run per conversation")."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from agent.checkpointer import open_checkpointer
from agent.policy import PolicySnapshot
from bot.db import Database
from bot.lease import RowLeases, open_leases
from bot.store import Approval, AuditEntry, Store
from tests.support.botproc import Deployment, deployment
from tests.support.pg import BACKENDS, database_url, fresh_database, requires_postgres
from tests.support.process import REPO

CHANNEL = "C0OPS"

HOLD_A_LEASE = """
import asyncio, sys
from bot.db import Database
from bot.lease import open_leases

async def main():
    db = await Database.open(sys.argv[1])
    async with (await open_leases(db)).hold("slack:T:C:1.0"):
        print("held", flush=True)
        await asyncio.sleep(3600)

asyncio.run(main())
"""


@pytest.mark.parametrize("backend", BACKENDS)
async def test_one_interface_on_both_backends(backend: str, tmp_path: Path) -> None:
    async with database_url(backend, tmp_path) as url, await Database.open(url) as db:
        assert db.dialect == backend
        now = time.time()
        assert await db.execute(
            "INSERT INTO seen_events (key, seen_at) VALUES (?, ?)", ("50% off?", now)
        )
        row = await db.fetchone(
            "SELECT key, seen_at FROM seen_events WHERE key LIKE '50%' AND key = ?",
            ("50% off?",),
        )
        # Dict rows, and epoch seconds to the microsecond (not PostgreSQL's 4-byte REAL).
        assert row == {"key": "50% off?", "seen_at": now}
        assert await db.fetchone("SELECT key FROM seen_events WHERE key = ?", ("x",)) is None
        again = await db.execute(
            "INSERT INTO seen_events (key, seen_at) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
            ("50% off?", now),
        )
        assert again == 0
        changed = await db.execute(
            "UPDATE seen_events SET seen_at = ? WHERE seen_at < ?", (now + 1, now + 1)
        )
        assert changed == 1
        assert await db.fetchall("SELECT key FROM seen_events") == [{"key": "50% off?"}]
        store = Store(db)
        await store.audit("executed", conversation="c", tool="t")
        await store.audit("failed", conversation="c", tool="t")
        assert [r.seq for r in await store.audit_log()] == [1, 2]


@requires_postgres
async def test_replicas_starting_together_on_a_new_database_set_it_up_once() -> None:
    async with fresh_database() as url:

        async def start() -> None:
            db = await Database.open(url)
            async with open_checkpointer(url):
                await db.close()

        await asyncio.gather(*(start() for _ in range(6)))
        async with await Database.open(url) as db:
            assert await db.fetchall("SELECT * FROM approvals") == []
            [row] = await db.fetchall("SELECT COUNT(*) AS n FROM checkpoint_migrations")
            assert row["n"] > 0


@requires_postgres
async def test_a_claim_has_one_winner_across_connection_pools() -> None:
    async with fresh_database() as url:
        a, b = await Database.open(url), await Database.open(url)
        try:
            approval = await _approval(Store(a), 1)
            wins = await asyncio.gather(
                *(
                    Store(db).claim(approval.id, "approved", by=f"U{i}")
                    for i, db in enumerate([a, b] * 25)
                )
            )
            [winner] = [w for w in wins if w is not None]
            assert winner.status == "approved"
            # The decision and its audit record land together, once.
            audited = await a.fetchall("SELECT actor FROM audit WHERE event = 'approved'")
            assert audited == [{"actor": winner.decided_by}]
        finally:
            await a.close()
            await b.close()


async def _approval(store: Store, n: int, message_ts: str | None = None) -> Approval:
    approval, _ = await store.create_approval(
        interrupt_id=f"i{n}",
        conversation="slack:T:C:1.0",
        team_id="T",
        channel="C",
        thread_ts="1.0",
        tool_call_id=f"call{n}",
        tool="scale_down",
        args={"cluster_id": f"cl-{n}"},
        description="",
        requester="U0ALICE",
        policy=PolicySnapshot(),
        expires_at=None,
    )
    if message_ts is not None:
        await store.set_message(approval.id, message_ts)
    return approval


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_claim_and_its_audit_record_land_together_or_not_at_all(
    backend: str, tmp_path: Path
) -> None:
    async with database_url(backend, tmp_path) as url, await Database.open(url) as db:
        store = Store(db)
        approval = await _approval(store, 1)
        # The audit record cannot be written: the decision must not stand without it. (On
        # SQLite a rename would carry the claim's trigger along to the new name.)
        if db.dialect == "sqlite":
            await db.execute("PRAGMA legacy_alter_table=ON")
        await db.execute("ALTER TABLE audit RENAME TO audit_away")
        with pytest.raises(Exception, match="audit"):
            await store.claim(approval.id, "approved", by="U0BOB")
        await db.execute("ALTER TABLE audit_away RENAME TO audit")
        assert (await store.get(approval.id)).status == "pending"  # type: ignore[union-attr]
        assert await store.audit_log() == []

        decided = await store.claim(approval.id, "rejected", by="U0BOB", reason="freeze")
        assert decided is not None and decided.reason == "freeze"
        [record] = await store.audit_log()
        assert (record.event, record.actor, record.reason) == (
            "rejected",
            "U0BOB",
            "freeze",
        )
        assert await store.claim(approval.id, "approved", by="U0CAROL") is None
        assert len(await store.audit_log()) == 1


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_claims_audit_record_is_the_same_on_both_backends(
    backend: str, tmp_path: Path
) -> None:
    """PostgreSQL writes it from the updated row in the claim's one statement, SQLite by the
    trigger the claim's update fires: the records must not differ."""
    async with database_url(backend, tmp_path) as url, await Database.open(url) as db:
        store = Store(db)
        approval, _ = await store.create_approval(
            interrupt_id="i1",
            conversation="slack:T:C:1.0",
            team_id="T",
            channel="C",
            thread_ts="1.0",
            tool_call_id="call1",
            tool="scale_down",
            args={"cluster_id": "clé-1", "replicas": 2, "tags": {"b": [1.5, None]}},
            description="",
            requester="U0ALICE",
            policy=PolicySnapshot(),
            expires_at=time.time() + 60,
        )
        assert (
            await store.claim(approval.id, "approved", by="U0BOB", before=time.time() + 61) is None
        )
        decided = await store.claim(
            approval.id,
            "approved",
            by="U0BOB",
            reason="ok",
            decision={"type": "edit"},
            event="edited",
            detail='{"replicas": 3}',
            before=time.time(),
        )
        assert decided is not None and decided.decision == {"type": "edit"}
        [record] = await store.audit_log()
        assert decided.decided_at is not None
        assert record.at == pytest.approx(decided.decided_at, abs=1.0)
        assert (record.event, record.approval_id, record.conversation) == (
            "edited",
            approval.id,
            approval.conversation,
        )
        assert (record.tool, record.actor, record.reason, record.detail) == (
            "scale_down",
            "U0BOB",
            "ok",
            '{"replicas": 3}',
        )
        assert record.args == json.dumps(approval.args)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_kept_message_comes_back_after_those_still_waiting(
    backend: str, tmp_path: Path
) -> None:
    """`outbox_put` returns what waits in the conversation, oldest first, and keeps a
    message's audit record with it, both or neither (one statement on PostgreSQL)."""
    async with database_url(backend, tmp_path) as url, await Database.open(url) as db:
        store = Store(db)
        [first] = await store.outbox_put("slack:T:C:1.0", "one")
        await store.outbox_put("slack:T:C:2.0", "elsewhere")
        await store.outbox_later(first.seq, 1, 9.5)
        kept = await store.outbox_put(
            "slack:T:C:1.0", "two", AuditEntry("executed", conversation="c", tool="t")
        )
        assert [(m.text, m.attempts, m.next_at) for m in kept] == [
            ("one", 1, 9.5),
            ("two", 0, None),
        ]
        assert kept == await store.outbox_left("slack:T:C:1.0")
        [record] = await store.audit_log()
        assert (record.event, record.conversation, record.tool) == ("executed", "c", "t")

        await db.execute("ALTER TABLE audit RENAME TO audit_away")
        with pytest.raises(Exception, match="audit"):
            await store.outbox_put("slack:T:C:1.0", "three", AuditEntry("executed"))
        await db.execute("ALTER TABLE audit_away RENAME TO audit")
        assert [m.text for m in await store.outbox_left("slack:T:C:1.0")] == ["one", "two"]


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_lease_is_exclusive_and_goes_with_a_killed_holder(
    backend: str, tmp_path: Path
) -> None:
    async with database_url(backend, tmp_path) as url:
        db = await Database.open(url)
        leases = await open_leases(db)
        holder = await asyncio.create_subprocess_exec(
            sys.executable, "-c", HOLD_A_LEASE, url, cwd=REPO, stdout=subprocess.PIPE
        )
        try:
            assert holder.stdout is not None
            assert await holder.stdout.readline() == b"held\n"
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.5), leases.hold("slack:T:C:1.0"):
                    pass
            holder.kill()
            await holder.wait()
            started = time.monotonic()
            async with asyncio.timeout(5), leases.hold("slack:T:C:1.0"):
                taken_after = time.monotonic() - started
            # Released with the process: not after a row lease's expiry.
            assert taken_after < 2.0
        finally:
            with contextlib.suppress(ProcessLookupError):
                holder.kill()
            await holder.wait()
            await leases.close()
            await db.close()


async def test_an_expired_row_lease_is_taken_over(tmp_path: Path) -> None:
    db = await Database.open(f"sqlite:///{tmp_path / 'bot.sqlite3'}")
    try:
        # A holder on another machine: its liveness cannot be checked, only its expiry.
        await db.execute(
            "INSERT INTO leases (key, holder, expires_at) VALUES (?, ?, ?)",
            ("k", "elsewhere|pid:[1]|1|abcd", time.time() + 0.3),
        )
        started = time.monotonic()
        async with RowLeases(db).hold("k"):
            waited = time.monotonic() - started
        assert 0.2 < waited < 2.0
        assert await db.fetchall("SELECT * FROM leases") == []
    finally:
        await db.close()


async def ask_many(d: Deployment, texts: list[str]) -> list[tuple[str, str]]:
    """`/ask` each text; (thread, card ts) for each, once all cards are up. One pass over the
    channel per poll: a waiter per thread would rescan it a hundred times on every post."""
    await asyncio.gather(*(d.slack.slash_command("U0ALICE", CHANNEL, "/ask", t) for t in texts))
    found: dict[str, tuple[str, str]] = {}

    def all_cards() -> bool:
        messages = d.slack.messages(CHANNEL)
        roots = {m.text.split(" asked: ", 1)[1]: m.ts for m in messages if " asked: " in m.text}
        cards = {m.thread_ts: m.ts for m in messages if m.buttons()}
        found.update({t: (roots[t], cards[roots[t]]) for t in texts if roots.get(t) in cards})
        return len(found) == len(texts)

    await d.wait(f"{len(texts)} cards", all_cards, 60)
    for _, card in found.values():
        await d.card_recorded(card)
    return [found[t] for t in texts]


async def wait_replies(d: Deployment, threads: list[str], limit: float) -> None:
    def replied() -> bool:
        done = {m.thread_ts for m in d.slack.messages(CHANNEL) if "Summary:" in m.text}
        return done.issuperset(threads)

    await d.wait(f"{len(threads)} replies", replied, limit)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_two_bot_processes_share_one_database(backend: str, tmp_path: Path) -> None:
    async with database_url(backend, tmp_path) as url, deployment(tmp_path, url, 2) as d:
        slack = d.slack

        # 50 concurrent clicks on one card, half to each process: one execution.
        [(thread, card_ts)] = await ask_many(d, ["scale down race1 to 1"])
        clickers = ["U0BOB", "U0DAVE", "U0CAROL", "U0ALICE"]
        await asyncio.gather(
            *(slack.click(clickers[i % 4], CHANNEL, card_ts, "approval_approve") for i in range(50))
        )
        await wait_replies(d, [thread], 20)
        await d.wait(
            "49 clicks told who won",
            lambda: sum("Already decided" in e.text for e in slack.ephemerals) == 49,
        )
        assert d.started("race1") == 1 and len(slack.ephemerals) == 49

        # Two calls in one conversation, approved on different processes while the first one
        # runs: the second run waits for the first (docs/design.md, "One run per
        # conversation"), and each call runs once.
        thread = await d.ui.ask("scale down i6a to 1 and scale down i6b to 1")
        pair = await d.ui.wait_cards(CHANNEL, thread, 2)
        cards = {c: m.ts for m in pair for c in ("i6a", "i6b") if c in json.dumps(m.blocks)}
        for card_ts in cards.values():
            await d.card_recorded(card_ts)
        d.hold("i6a")
        await slack.click("U0BOB", CHANNEL, cards["i6a"], "approval_approve")
        await d.wait("the first call to start", lambda: d.started("i6a") == 1)
        await slack.click("U0BOB", CHANNEL, cards["i6b"], "approval_approve")  # the other one
        await asyncio.sleep(0.5)
        assert d.started("i6b") == 0, "a second run of the conversation did not wait"
        d.release("i6a")
        await wait_replies(d, [thread], 20)
        assert d.started("i6a") == d.started("i6b") == 1

        # 100 approvals, one click each, spread over both: each runs exactly once.
        ids = [f"n{i:03}" for i in range(100)]
        asked = await ask_many(d, [f"scale down {i} to 1" for i in ids])
        await asyncio.gather(
            *(slack.click("U0BOB", CHANNEL, card, "approval_approve") for _, card in asked)
        )
        await wait_replies(d, [thread for thread, _ in asked], 60)
        started = Counter({i: d.started(i) for i in ids})
        twice = {i: n for i, n in started.items() if n > 1}
        print(
            f"\n[{backend}] two processes: 50 clicks on one card -> {d.started('race1')} "
            f"execution; 100 approvals -> {sum(started.values())} executions, "
            f"{len(twice)} ran twice"
        )
        assert twice == {} and sum(started.values()) == 100

        # One event delivered three times, to one process, the other, and the first again.
        before = len(d.model.requests)
        root = await slack.post_user_message("U0ALICE", CHANNEL, "<@U0BOT> hello replicas")
        [mention] = [
            x
            for x in slack.deliveries
            if x.payload.get("event", {}).get("ts") == root
            and x.payload["event"]["type"] == "app_mention"
        ]
        for retry in (1, 2):
            await slack.deliver(
                "events_api", mention.payload, retry_num=retry, retry_reason="http_timeout"
            )
        await d.ui.wait_text(CHANNEL, root, "You said: hello replicas")
        await asyncio.sleep(0.5)  # a second run, had one started, would answer by now
        runs = [r for r in d.model.requests[before:] if "hello replicas" in str(r["messages"])]
        assert len(runs) == 1
        assert sum("hello replicas" in t for t in d.ui.texts(CHANNEL, root)) == 2


REMINDING_POLICY = """\
tools:
  scale_down:
    approvers: [S0SREONCALL]
    notify: [approvers]
    remind_after: 3s
    escalate_after: 3s
    escalate_to: [U0CAROL]
"""


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_reminder_and_an_escalation_due_while_the_bots_were_down_are_sent_once(
    backend: str, tmp_path: Path
) -> None:
    policy = tmp_path / "reminding-policy.yml"
    policy.write_text(REMINDING_POLICY)
    async with (
        database_url(backend, tmp_path) as url,
        deployment(tmp_path, url, 2, env={"APPROVALS_POLICY": str(policy)}) as d,
    ):
        thread = await d.ui.ask("scale down cl-001 to 2")
        [card] = await d.ui.wait_cards(CHANNEL, thread)
        await d.card_recorded(card.ts)
        await d.wait(
            "the copies on record",
            lambda: d.db.fetchall("SELECT channel FROM approval_copies"),
        )
        copies = await d.db.fetchall("SELECT channel, message_ts FROM approval_copies")
        for bot in d.bots:
            await bot.kill()
        route = await d.db.fetchone("SELECT remind_at, escalate_at FROM approval_routes")
        assert route is not None and None not in route.values(), "sent before the stop"
        await d.wait("both to fall due", lambda: time.time() > max(route.values()))

        await d.start()  # both replicas claim what is due before they say they are ready
        sent = await d.db.fetchall(
            "SELECT event FROM audit WHERE event IN ('reminded', 'escalated') ORDER BY event"
        )
        assert [r["event"] for r in sent] == ["escalated", "reminded"]
        await d.ui.wait_text(CHANNEL, thread, "escalated to <@U0CAROL>")
        await d.ui.wait_text(CHANNEL, thread, "Reminder:")
        for copy in copies:
            await d.ui.wait_text(copy["channel"], copy["message_ts"], "Reminder:")
        texts = d.ui.texts(CHANNEL, thread)
        assert sum("Reminder:" in t for t in texts) == 1
        assert sum("escalated to <@U0CAROL>" in t for t in texts) == 1
        for copy in copies:
            replies = d.slack.thread(copy["channel"], copy["message_ts"])
            assert sum("Reminder:" in m.text for m in replies) == 1
        # The new approver got the request once.
        await d.wait("the escalation's copy", lambda: d.slack.messages("D0CAROL"))
        assert len([m for m in d.slack.messages("D0CAROL") if m.thread_ts is None]) == 1
