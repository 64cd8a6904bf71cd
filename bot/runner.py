"""Running the agent for a conversation: one run at a time, in the background.

Listeners only ack and hand work here. Every run of a conversation holds that
conversation's lock (docs/design.md, "I6. One run per conversation"), reads what is
pending from LangGraph itself (the source of truth), and posts what happens in the thread.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from agent.journal import OUTCOME_UNKNOWN
from agent.policy import Policy
from agent.session import AgentSession, Event, OnEvent, PendingCall, Reply, ToolOutcome
from bot import blocks
from bot.conversation import Conversation
from bot.directory import Directory
from bot.lease import Leases
from bot.logcontext import log_context
from bot.metrics import Metrics
from bot.store import ALL_STATUSES, DECIDED, Approval, Store

log = logging.getLogger(__name__)

WORKING_REACTION = "hourglass_flowing_sand"
WORKING_SIGN_AFTER_S = 1.0
CANCEL_WORDS = frozenset({"cancel", "withdraw", "stop"})
# chat.update errors that mean the card will never be updated again.
CARD_GONE = frozenset(
    {"message_not_found", "channel_not_found", "cant_update_message", "is_archived"}
)

Step = Callable[[OnEvent], Awaitable[list[PendingCall]]]


class Runner:
    def __init__(
        self,
        *,
        session: AgentSession,
        store: Store,
        client: AsyncWebClient,
        policy: Policy,
        directory: Directory,
        leases: Leases,
        metrics: Metrics,
        secrets: Sequence[str] = (),
    ) -> None:
        self.session = session
        self.store = store
        self.client = client
        self.policy = policy
        self.directory = directory
        self.leases = leases
        self.metrics = metrics
        self._secrets = tuple(x for x in secrets if x)
        self._locks: dict[str, asyncio.Lock] = {}
        self._card_locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # background work ---------------------------------------------------------------------

    def spawn(self, work: Coroutine[Any, Any, None], *, what: str) -> None:
        """Run `work` after the listener has returned; failures are logged, never lost."""
        task = asyncio.create_task(self._guard(work, what), name=what)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _guard(work: Coroutine[Any, Any, None], what: str) -> None:
        try:
            await work
        except Exception:
            log.exception("background work failed: %s", what)

    async def wait_idle(self, limit: float | None = None) -> bool:
        """Wait for background work, including work it spawns; True if all of it finished."""
        try:
            async with asyncio.timeout(limit):
                while self._tasks:
                    await asyncio.wait(set(self._tasks))
        except TimeoutError:
            return False
        return True

    async def cancel_all(self, limit: float) -> None:
        """Stop what is still running (shutdown past its bound); a run cancelled inside a
        tool stays "started" in the journal, so recovery reports it instead of re-running."""
        running = list(self._tasks)
        if running:
            log.warning("stopping %d runs that did not finish in time", len(running))
        for task in running:
            task.cancel()
        await self.wait_idle(limit)

    @asynccontextmanager
    async def _lock(self, key: str) -> AsyncIterator[None]:
        """One run per conversation (docs/design.md, "I6. One run per conversation"): first in
        this process, so local waiters queue here instead of each holding a database
        connection, then across processes."""
        asked = time.perf_counter()
        async with _local_lock(self._locks, key), self.leases.hold(key):
            held = time.perf_counter()
            self.metrics.lease_wait_seconds.observe(held - asked)
            try:
                with log_context(conversation=key):
                    yield
            finally:
                self.metrics.run_seconds.observe(time.perf_counter() - held)

    # entry points ------------------------------------------------------------------------

    async def on_message(self, conv: Conversation, user: str, text: str) -> None:
        """A person wrote to the agent in this conversation."""
        withdrew = False
        async with self._lock(conv.key):
            pending = await self.session.pending(conv.key)
            if not pending:
                await self._run(
                    conv,
                    requester=user,
                    step=lambda on_event: self.session.start_turn(conv.key, text, on_event),
                )
            elif text.strip().lower().rstrip(".!") in CANCEL_WORDS:
                withdrew = await self._withdraw(conv, user)
            else:
                # New input now would drop the pending interrupts and strand their calls.
                await self.say(
                    conv,
                    f":raised_hand: This thread is waiting on {len(pending)} approval(s) "
                    "above. Decide them first, or the requester can say `cancel` to "
                    "withdraw them.",
                )
        if withdrew:
            await self.resume_decided(conv)

    async def resume_decided(self, conv: Conversation) -> None:
        """Hand every recorded decision of this conversation to the agent, once."""
        async with self._lock(conv.key):
            decided = await self.store.unresumed(conv.key)
            if not decided:
                return
            pending = {p.interrupt_id for p in await self.session.pending(conv.key)}
            stale = [a.id for a in decided if a.interrupt_id not in pending]
            if stale:
                # Already answered (e.g. by a run that crashed after answering): never
                # re-answer, and never let the decision land on another call.
                log.warning("decisions for calls no longer pending: %s", stale)
                await self.store.mark_resumed(stale)
            live = [a for a in decided if a.interrupt_id in pending]
            if not live:
                return
            decisions = {a.interrupt_id: await self._decision(a) for a in live}
            await self._run(
                conv,
                requester=live[0].requester,
                step=lambda on_event: self.session.resume(conv.key, decisions, on_event),
            )

    async def recover(self) -> None:
        """At startup: finish what a stopped process left half done, on any replica.

        Decided cards still showing buttons are redrawn. Each affected conversation is settled
        under its lease, so a live replica's run is never raced: cards never posted are
        posted, decisions are handed to the agent (a call that started but never finished
        comes back from the journal as "outcome unknown"), messages that were on their way
        are posted, calls that finished with nobody left to report them are reported, and a
        run that stopped between two steps carries on to the model's answer. (A run stopped
        before any gated call, in a model call say, is not picked up: nothing ran, and the
        person can ask again.)
        """
        outcome_events = ("executed", "failed", "not_run", "outcome_unknown")
        unreported = (
            " FROM journal j JOIN approvals a"
            " ON a.conversation = j.thread_id AND a.tool_call_id = j.tool_call_id"
            " WHERE j.status = 'finished' AND NOT EXISTS (SELECT 1 FROM audit u"
            " WHERE u.approval_id = a.id AND u.event IN (?, ?, ?, ?))"
        )
        rows = await self.store.db.fetchall(
            "SELECT conversation FROM approvals WHERE (status = 'pending' AND message_ts IS NULL)"
            " OR (status <> 'pending' AND resumed_at IS NULL)"
            " UNION SELECT a.conversation" + unreported + " UNION SELECT conversation FROM outbox",
            outcome_events,
        )

        async def settle(conv: Conversation) -> None:
            async with self._lock(conv.key):
                for message in await self.store.outbox_left(conv.key):
                    await self._post(conv, message["seq"], message["text"])
                unposted = await self.store.db.fetchall(
                    "SELECT * FROM approvals WHERE conversation = ? AND status = 'pending'"
                    " AND message_ts IS NULL ORDER BY created_at, id",
                    (conv.key,),
                )
                for approval in map(Approval.from_row, unposted):
                    await self._post_card(conv, approval)
            await self.resume_decided(conv)
            async with self._lock(conv.key):
                finished = await self.store.db.fetchall(
                    "SELECT j.tool_call_id, j.tool, j.result, j.result_status"
                    + unreported
                    + " AND a.conversation = ? ORDER BY j.finished_at",
                    (*outcome_events, conv.key),
                )
                for row in finished:
                    outcome = ToolOutcome(
                        tool_call_id=row["tool_call_id"],
                        name=row["tool"],
                        content=row["result"] or "",
                        status="success" if row["result_status"] == "success" else "error",
                        ran=True,
                    )
                    await self._on_tool_outcome(conv, outcome)
                # Stopped after a step (a tool's, say) with more to do: the model has not
                # answered yet, and may still ask for more calls, on behalf of whoever asked
                # for the last one (a conversation with no gated call has no one on record).
                asked = await self.store.for_conversation(conv.key, ALL_STATUSES)
                if asked and await self.session.stopped_part_way(conv.key):
                    log.warning("carrying on the run of %s that stopped part-way", conv.key)
                    await self._run(
                        conv,
                        requester=asked[-1].requester,
                        step=lambda on_event: self.session.carry_on(conv.key, on_event),
                    )

        # The stop may have come before a decided card was redrawn.
        await self.redraw_behind(decided_before=time.time())
        for key in sorted({str(r["conversation"]) for r in rows}):
            self.spawn(settle(Conversation.from_key(key)), what=f"recover {key}")

    # one run -----------------------------------------------------------------------------

    async def _run(self, conv: Conversation, *, requester: str, step: Step) -> None:
        # The "working" sign is for people waiting on a run that takes a while (a model call);
        # it never delays the run, and a run that is over at once never flickers it.
        adding: list[asyncio.Task[None]] = []
        sign = asyncio.get_running_loop().call_later(
            WORKING_SIGN_AFTER_S,
            lambda: adding.append(asyncio.create_task(self._react(conv, "add"))),
        )
        pending: list[PendingCall] | None = None
        try:
            pending = await step(lambda event: self._on_event(conv, event))
            await self._post_approvals(conv, pending, requester)
        except Exception as exc:
            log.exception("run failed in %s", conv.key)
            # Upstream errors can quote a key (OpenAI does): the channel must not see it.
            detail = str(exc)
            for secret in self._secrets:
                detail = detail.replace(secret, "[redacted]")
            await self.say(
                conv,
                f":warning: Something went wrong while the agent was working: "
                f"{blocks.escape(type(exc).__name__)}: {blocks.escape(detail)[:500]}",
            )
        finally:
            sign.cancel()
            await self._settle(conv, pending)
            if adding:
                await adding[0]
                await self._react(conv, "remove")

    async def _settle(self, conv: Conversation, pending: list[PendingCall] | None) -> None:
        """Decisions whose interrupt is gone were consumed by this run. `pending` is what the
        run left pending, or None when it failed before saying."""
        decided = await self.store.unresumed(conv.key)
        if decided:
            if pending is None:
                pending = await self.session.pending(conv.key)
            waiting = {p.interrupt_id for p in pending}
            await self.store.mark_resumed([a.id for a in decided if a.interrupt_id not in waiting])

    async def _on_event(self, conv: Conversation, event: Event) -> None:
        if isinstance(event, Reply):
            await self.say(conv, blocks.escape(event.text))
            return
        await self._on_tool_outcome(conv, event)

    async def _on_tool_outcome(self, conv: Conversation, outcome: ToolOutcome) -> None:
        approval = await self._approval_for_call(conv, outcome.tool_call_id)
        if approval is None:
            return  # an ungated tool: the model's answer reports it
        name = f"`{blocks.escape(outcome.name)}`"
        content = blocks.escape(outcome.content)
        if outcome.content == OUTCOME_UNKNOWN:
            event, text = (
                "outcome_unknown",
                (
                    f":grey_question: {name} — outcome unknown: it was started before the bot "
                    "stopped and did not report back. It was *not* run again; check by hand."
                ),
            )
        elif not outcome.ran:
            event, text = "not_run", f"{name} was not run — {blocks.outcome_line(approval)}"
        elif outcome.status == "success":
            event, text = "executed", f":white_check_mark: {name} ran: {content}"
        else:
            event, text = "failed", f":x: {name} failed: {content}"
        # The notice and its audit record are kept together: recovery reports a finished call
        # with no audit record, and posts a notice that was on its way.
        await self.say(
            conv, text, audit_event=event, approval=approval, detail=outcome.content[:2000]
        )

    async def _approval_for_call(self, conv: Conversation, tool_call_id: str) -> Approval | None:
        for approval in await self.store.for_conversation(conv.key, DECIDED):
            if approval.tool_call_id == tool_call_id:
                return approval
        return None

    async def _post_approvals(
        self, conv: Conversation, pending: list[PendingCall], requester: str
    ) -> None:
        posted: list[Approval] = []
        for call in pending:
            rules = self.policy.for_tool(call.name)
            expires_at = (
                time.time() + rules.expires_after.total_seconds()
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
                policy=rules.snapshot(),
                expires_at=expires_at,
            )
            if created:
                await self.store.audit("requested", approval=approval, actor=requester)
            if approval.message_ts is None:
                await self._post_card(conv, approval)
                posted.append(approval)
        if len(posted) > 1:
            await self._post_batch(conv, posted)

    async def _post_batch(self, conv: Conversation, approvals: list[Approval]) -> None:
        try:
            await self.client.chat_postMessage(
                channel=conv.channel,
                thread_ts=conv.thread_ts,
                text=f"{len(approvals)} calls wait for a decision",
                blocks=blocks.batch_card(approvals),
            )
        except SlackApiError:
            log.exception("could not post the batch card in %s", conv.key)

    async def _post_card(self, conv: Conversation, approval: Approval) -> None:
        try:
            response = await self.client.chat_postMessage(
                channel=conv.channel,
                thread_ts=conv.thread_ts,
                text=blocks.card_text(approval),
                blocks=blocks.approval_card(approval),
            )
        except SlackApiError:
            # The approval is recorded; recovery posts the card again.
            log.exception("could not post the card for %s", approval.id)
            return
        await self.store.set_message(approval.id, str(response["ts"]))

    async def _withdraw(self, conv: Conversation, user: str) -> bool:
        approvals = await self.store.for_conversation(conv.key)
        mine = [a for a in approvals if a.requester == user]
        if not mine:
            await self.say(conv, ":no_entry_sign: Only the person who asked can withdraw.")
            return False
        withdrawn = 0
        for approval in mine:
            decided = await self.store.claim(approval.id, "withdrawn", by=user)
            if decided is not None:
                withdrawn += 1
                self.redraw(decided)
        await self.say(conv, f":leftwards_arrow_with_hook: Withdrew {withdrawn} pending call(s).")
        return withdrawn > 0

    async def _decision(self, approval: Approval) -> dict[str, Any]:
        """The LangGraph answer for a recorded decision, worded so the model knows who and why."""
        who = await self.directory.name(approval.decided_by) if approval.decided_by else "?"
        match approval.status:
            case "approved":
                return approval.decision or {"type": "approve"}
            case "rejected":
                why = f": {approval.reason}" if approval.reason else " (no reason given)"
                return {"type": "reject", "message": f"denied by {who}{why}"}
            case "withdrawn":
                return {
                    "type": "reject",
                    "message": f"the requester ({who}) withdrew the request before anyone "
                    "decided; it was not run",
                }
            case _:
                return {
                    "type": "reject",
                    "message": "nobody decided in time, so the request EXPIRED and the call "
                    "was not run. This is not a denial by any person.",
                }

    # Slack output ------------------------------------------------------------------------

    def redraw(self, approval: Approval) -> None:
        """Update a card in the background."""
        self.spawn(self.update_card(approval), what=f"card {approval.id}")

    async def redraw_behind(self, *, decided_before: float) -> None:
        """Redraw, in the background, the cards that still show a decided approval pending."""
        for approval in await self.store.cards_behind(decided_before):
            if approval.id not in self._card_locks:  # not being drawn right now
                self.redraw(approval)

    async def update_card(self, approval: Approval) -> None:
        """Redraw a card: progress while pending, the outcome (no buttons) once decided.
        One draw per card at a time, each from the approval as it is now, so the last one
        sent shows the latest state."""
        async with _local_lock(self._card_locks, approval.id):
            # A decision is final: an approval already decided is as fresh as a reload.
            fresh = (
                approval
                if approval.status != "pending"
                else await self.store.get(approval.id) or approval
            )
            if fresh.message_ts is None:
                return
            quorum = int(fresh.policy.get("approvals_needed", 1)) > 1
            votes = await self.store.votes(fresh.id) if quorum else []
            card = (
                blocks.approval_card(fresh, votes)
                if fresh.status == "pending"
                else blocks.decided_card(fresh, votes)
            )
            try:
                await self.client.chat_update(
                    channel=fresh.channel,
                    ts=fresh.message_ts,
                    text=blocks.card_text(fresh),
                    blocks=card,
                )
            except SlackApiError as exc:
                error = exc.response.get("error")
                if error not in CARD_GONE:
                    log.exception("could not update the card of %s; will try again", fresh.id)
                    return
                # Deleted, or in an archived channel: trying again every sweep would only
                # repeat the error. The decision itself is on record either way.
                log.warning("the card of %s can no longer be updated (%s)", fresh.id, error)
            if fresh.status != "pending":
                await self.store.set_card_status(fresh.id, fresh.status)

    async def say(
        self,
        conv: Conversation,
        text: str,
        *,
        audit_event: str | None = None,
        approval: Approval | None = None,
        detail: str | None = None,
    ) -> None:
        """Post in the thread, through the outbox: a stop before Slack confirms the post
        leaves the message to be posted at the next start (at least once, never lost)."""
        seq = await self.store.outbox_put(
            conv.key, text, audit_event=audit_event, approval=approval, detail=detail
        )
        await self._post(conv, seq, text)

    async def _post(self, conv: Conversation, seq: int, text: str) -> None:
        try:
            await self.client.chat_postMessage(
                channel=conv.channel,
                thread_ts=conv.thread_ts,
                text=blocks.cut(text, 3000),
                blocks=blocks.notice(text),
            )
        except SlackApiError:
            # Past slack-sdk's retries: an error that posting again would only repeat.
            log.exception("could not post in %s", conv.key)
        await self.store.outbox_done(seq)

    async def _react(self, conv: Conversation, how: str) -> None:
        method = self.client.reactions_add if how == "add" else self.client.reactions_remove
        try:
            await method(channel=conv.channel, timestamp=conv.thread_ts, name=WORKING_REACTION)
        except SlackApiError as exc:
            log.debug("reaction %s failed: %s", how, exc.response.get("error"))


@asynccontextmanager
async def _local_lock(locks: dict[str, asyncio.Lock], key: str) -> AsyncIterator[None]:
    """Hold this process's lock on `key`, made on first use and dropped when nobody holds or
    waits for it, so the table stays as small as the work in flight."""
    lock = locks.setdefault(key, asyncio.Lock())
    try:
        async with lock:
            yield
    finally:
        if not lock.locked() and not lock._waiters:
            locks.pop(key, None)
