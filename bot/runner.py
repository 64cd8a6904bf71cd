"""The coordinator: one run per conversation at a time, in the background.

Listeners only ack and hand work here. Every run of a conversation holds that
conversation's lock (docs/design.md, "One run per conversation"), reads what is pending from
LangGraph itself (the source of truth), reconciles the approvals table with it, and posts
what happens in the thread through the outbox.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from dataclasses import InitVar, dataclass, field
from typing import Any

from langgraph.errors import UnknownInterruptError
from pydantic import ValidationError
from slack_sdk.web.async_client import AsyncWebClient

from agent.gate import ALL_DECISIONS, Recorded
from agent.policy import Policy, PolicySnapshot
from agent.session import Decision, Event, OnEvent, PendingCall, Reply, Session, ToolOutcome
from bot import blocks
from bot.cards import Cards
from bot.clock import Clock
from bot.conversation import Conversation
from bot.directory import Directory
from bot.lease import Leases
from bot.logcontext import log_context
from bot.metrics import Metrics
from bot.outbox import ThreadMessages
from bot.outcomes import Outcomes, answer_for
from bot.store import Approval, AuditEntry, Store
from bot.tasks import Background, local_lock
from bot.thread_hold import ThreadHold
from bot.working_sign import WorkingSign

log = logging.getLogger(__name__)

CANCEL_WORDS = frozenset({"cancel", "withdraw", "stop"})
# A card or message Slack did not take is tried again once it has waited this long.
RETRY_AFTER_S = 2.0

Step = Callable[[OnEvent], Awaitable[list[PendingCall]]]


def is_cancel(text: str) -> bool:
    return text.strip().lower().rstrip(".!") in CANCEL_WORDS


@dataclass(kw_only=True, eq=False, repr=False)
class Runner(ThreadHold):
    session: Session
    store: Store
    messages: ThreadMessages
    cards: Cards
    background: Background
    policy: Policy
    directory: Directory
    leases: Leases
    metrics: Metrics
    clock: Clock
    secrets: InitVar[Sequence[str]] = ()
    client: AsyncWebClient = field(init=False)
    outcomes: Outcomes = field(init=False)
    _locks: dict[str, asyncio.Lock] = field(init=False, default_factory=dict)

    def __post_init__(self, secrets: Sequence[str]) -> None:
        self.client = self.messages.client
        self.outcomes = Outcomes(self.store, self.messages, secrets)

    # background work ---------------------------------------------------------------------

    def spawn(self, work: Coroutine[Any, Any, None], *, what: str) -> None:
        self.background.spawn(work, what=what)

    async def wait_idle(self, limit: float | None = None) -> bool:
        return await self.background.wait_idle(limit)

    async def cancel_all(self, limit: float) -> None:
        await self.background.cancel_all(limit)

    @asynccontextmanager
    async def lock(self, key: str) -> AsyncIterator[None]:
        """One run per conversation: first in this process, so local waiters queue here
        instead of each holding a database connection, then across processes."""
        asked = time.perf_counter()
        async with local_lock(self._locks, key), self.leases.hold(key):
            held = time.perf_counter()
            self.metrics.lease_wait_seconds.observe(held - asked)
            try:
                with log_context(conversation=key):
                    yield
            finally:
                self.metrics.run_seconds.observe(time.perf_counter() - held)

    async def say(self, conv: Conversation, text: str) -> None:
        """A notice in the thread from outside a run (takes the conversation's lock)."""
        async with self.lock(conv.key):
            await self.messages.say(conv, text)

    # entry points ------------------------------------------------------------------------

    async def on_message(self, conv: Conversation, user: str, text: str) -> None:
        """A person wrote to the agent in this conversation."""
        withdrew = False
        async with self.lock(conv.key):
            pending = await self.session.pending(conv.key)
            await self.reconcile(conv, pending, requester=user)
            # Reconciled: an approval still pending has its call pending in the graph.
            if pending and is_cancel(text):
                withdrew = await self._withdraw(conv, user)
            elif not pending:
                await self._run(
                    conv,
                    requester=user,
                    step=lambda on_event: self.session.start_turn(conv.key, text, on_event),
                )
            else:
                # New input now would drop the pending interrupts and strand their calls.
                await self._hold(conv, user)
        if withdrew:
            await self.resume_decided(conv)

    async def resume_decided(self, conv: Conversation) -> None:
        """Hand every recorded decision of this conversation to the agent, once."""
        async with self.lock(conv.key):
            decided = await self.store.unresumed(conv.key)
            try:
                await self._resume_decided(conv, decided)
            finally:
                for approval in decided:
                    self.cards.release(approval.interrupt_id)

    async def _resume_decided(self, conv: Conversation, decided: list[Approval]) -> None:
        """(Under the lock.) Decisions whose calls are no longer pending: see `_answer`."""
        if not decided:
            return
        decisions = {a.interrupt_id: await self._decision(a) for a in decided}
        await self._run(
            conv,
            requester=decided[0].requester,
            step=lambda on_event: self._resume(conv, decided, decisions, on_event),
            known=decided,
        )

    async def carry_on(self, conv: Conversation, requester: str) -> None:
        """Run what is left of a run that stopped between two steps (call under the lock)."""
        await self._run(
            conv,
            requester=requester,
            step=lambda on_event: self.session.carry_on(conv.key, on_event),
        )

    async def retry_waiting(self) -> None:
        """Post what Slack did not take before (messages, cards), once it is due again."""
        for key in await self.store.waiting_for_slack(due_before=self.clock.now() - RETRY_AFTER_S):
            if key not in self._locks:  # a run there posts them itself
                self.spawn(self._retry(Conversation.from_key(key)), what=f"retry {key}")

    async def _retry(self, conv: Conversation) -> None:
        async with self.lock(conv.key):
            if await self.messages.flush(conv, due_only=True):
                await self.cards.post_unposted(conv)

    # one run -----------------------------------------------------------------------------

    async def _resume(
        self,
        conv: Conversation,
        live: list[Approval],
        decisions: dict[str, Decision],
        on_event: OnEvent,
    ) -> list[PendingCall]:
        # Just read under the lease: the gate need not read them again.
        records = {a.interrupt_id: Recorded.under(a.id, a.policy) for a in live}
        try:
            return await self._answer(conv, decisions, on_event, records)
        except ValidationError as exc:
            # The graph refused an answer (nothing was saved): an edit the tool's schema does
            # not take. It must not strand the thread, so it becomes a denial that says why.
            refused = [a for a in live if decisions[a.interrupt_id].get("type") == "edit"]
            if not refused:
                raise
            for approval in refused:
                decisions[approval.interrupt_id] = {
                    "type": "reject",
                    "message": "the reviewer's edited arguments do not fit the tool, so it "
                    "was not run",
                }
                await self.messages.say(
                    conv,
                    f":x: `{blocks.escape(approval.tool)}` was not run: the edited arguments "
                    f"do not fit the tool ({exc.error_count()} problem(s)).",
                    AuditEntry(
                        "failed", approval, detail="edited arguments refused by the tool's schema"
                    ),
                )
            return await self._answer(conv, decisions, on_event, records)

    async def _answer(
        self,
        conv: Conversation,
        decisions: dict[str, Decision],
        on_event: OnEvent,
        records: dict[str, Recorded],
    ) -> list[PendingCall]:
        """Hand the decisions over. One whose call is no longer pending (answered by a run
        that stopped before marking it) is refused by the session before anything is
        answered: it is dropped, never re-applied nor landed on another call, and marked
        handed over when the run reconciles."""
        while decisions:
            try:
                return await self.session.resume(conv.key, decisions, on_event, records)
            except UnknownInterruptError as exc:
                if exc.reason != "not_pending":
                    raise
                log.warning("decisions for calls no longer pending: %s", exc.interrupt_ids)
                for key in exc.interrupt_ids:
                    decisions.pop(key, None)
        return await self.session.pending(conv.key)

    async def _run(
        self,
        conv: Conversation,
        *,
        requester: str,
        step: Step,
        known: Sequence[Approval] = (),
    ) -> None:
        """`known`: approvals just read under the lease, whose outcomes need no reread.

        A run that resumes decisions (`known`) records no `runs` row: until `reconcile` marks
        them handed over, its last write, those decisions already bring the conversation
        back at start-up (`Store.to_recover`), so the row's two commits per decision bought
        nothing."""
        sign = WorkingSign(self.client, conv)
        pending: list[PendingCall] | None = None
        if not known:
            await self.store.run_started(conv.key, requester)
        try:
            pending = await step(lambda event: self._on_event(conv, event, known))
        except Exception as exc:
            log.exception("run failed in %s", conv.key)
            await self.messages.say(
                conv,
                ":warning: Something went wrong while the agent was working: "
                + self.outcomes.error_text(exc),
            )
        finally:
            sign.cancel()
            if pending is None:
                pending = await self.session.pending(conv.key)
            await self.reconcile(conv, pending, requester=requester)
            if not known:
                await self.store.run_ended(conv.key)
            await sign.take_down()
            self.spawn(self.store.db.settle(), what="make the run's commits durable")

    async def reconcile(
        self, conv: Conversation, pending: list[PendingCall], *, requester: str
    ) -> None:
        """Make the approvals table agree with what the graph has pending (under the lock):
        a pending call gets its approval and card, an approval whose call is no longer
        pending is settled, and a decision the graph has consumed is marked handed over,
        last: a resume's unmarked decisions are what brings a stopped run back (`_run`)."""
        waiting = {p.interrupt_id for p in pending}
        # A decision landing after this read is left for the resume its click started.
        rows, decided = await self.store.unsettled(conv.key)
        for approval in rows:
            if approval.interrupt_id not in waiting:
                dropped = await self.store.claim(approval.id, "dropped", by=None)
                if dropped is not None:
                    log.warning("%s: its call is no longer pending in the graph", approval.id)
                    self.cards.redraw(dropped)
                    decided.append(dropped)
        # Calls already on record with a card, or decided, need no approval nor card again.
        settled = {a.interrupt_id for a in rows if a.message_ts is not None}
        settled |= {a.interrupt_id for a in decided}
        await self._post_approvals(
            conv, [p for p in pending if p.interrupt_id not in settled], requester
        )
        await self.store.mark_resumed([a.id for a in decided if a.interrupt_id not in waiting])

    async def _post_approvals(
        self, conv: Conversation, pending: list[PendingCall], requester: str
    ) -> None:
        posted: list[Approval] = []
        for call in pending:
            rules = self.policy.for_tool(call.name)
            expires_at = (
                self.clock.now() + rules.expires_after.total_seconds()
                if rules.expires_after is not None
                else None
            )
            approval, created = await self.store.create_approval(
                interrupt_id=call.interrupt_id,
                conversation=conv.key,
                team_id=conv.team_id,
                channel=conv.channel,
                thread_ts=conv.thread_ts,
                tool_call_id=call.tool_call_id,
                tool=call.name,
                args=call.args,
                description=call.description,
                requester=requester,
                policy=_snapshot(rules.snapshot(), call),
                expires_at=expires_at,
            )
            if created:
                await self.store.audit("requested", approval=approval, actor=requester)
            if (
                approval.message_ts is None
                and approval.status == "pending"
                and await self.cards.post(conv, approval)
            ):
                posted.append(approval)
        if len(posted) > 1:
            await self.cards.post_batch(conv, posted)

    async def _decision(self, approval: Approval) -> Decision:
        who = await self.directory.name(approval.decided_by) if approval.decided_by else "?"
        return answer_for(approval, who)

    async def _on_event(
        self, conv: Conversation, event: Event, known: Sequence[Approval] = ()
    ) -> None:
        if isinstance(event, Reply):
            await self.messages.say(conv, blocks.escape(event.text))
            return
        await self.outcomes.report(conv, event, known)

    async def report(self, conv: Conversation, outcome: ToolOutcome) -> None:
        await self.outcomes.report(conv, outcome)


def _snapshot(rules: PolicySnapshot, call: PendingCall) -> PolicySnapshot:
    """A team's graph says which decisions it accepts, and so which buttons the card has;
    the policy still says who decides, how many, and by when."""
    if call.allowed_decisions is None:
        return rules
    # What the bot can record; `respond` (a person answering for the tool) has no button.
    accepted = tuple(d for d in call.allowed_decisions if d in ALL_DECISIONS)
    return rules.model_copy(update={"decisions": accepted})
