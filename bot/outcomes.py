"""What people are told about a tool call, and what the audit records of it.

A gated call's notice is built from the journal's entry (the arguments that actually ran and
the tool's own result), never from the text the model is given: LangChain prefixes an edited
call's result with a note for the model that people must not see.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from agent.journal import OUTCOME_UNKNOWN
from agent.session import Decision, ToolOutcome
from bot import blocks
from bot.conversation import Conversation
from bot.outbox import ThreadMessages
from bot.redaction import Redactor
from bot.store import Approval, AuditEntry, Store

SHOWN_RESULT_LIMIT = 2000


class Outcomes:
    def __init__(self, store: Store, messages: ThreadMessages, secrets: Sequence[str]) -> None:
        self.store = store
        self.messages = messages
        # Upstream errors can quote a key (OpenAI does): the channel must not see it.
        self.redact = Redactor(secrets).scrub

    def error_text(self, exc: BaseException) -> str:
        detail = self.redact(str(exc))
        return f"{blocks.escape(type(exc).__name__)}: {blocks.escape(detail)[:500]}"

    async def report(
        self, conv: Conversation, outcome: ToolOutcome, known: Sequence[Approval] = ()
    ) -> None:
        """`known`: approvals the caller has at hand, decided (what a report reads of them
        no longer changes), so the gated call's is not read again."""
        approval = None
        if outcome.call_key:
            approval = next(
                (a for a in known if a.interrupt_id == outcome.call_key), None
            ) or await self.store.by_call_key(outcome.call_key)
        name = f"`{blocks.escape(outcome.name)}`"
        if approval is None:
            # An ungated call: the model's answer reports a success; a failure is said here too,
            # so a tool that raises never goes unnoticed.
            if outcome.ran and outcome.status == "error":
                content = self.redact(outcome.content)
                await self.messages.say(
                    conv,
                    f":x: {name} failed: {blocks.escape(content)[:SHOWN_RESULT_LIMIT]}",
                    AuditEntry("failed", detail=content[:2000], tool=outcome.name),
                )
            return
        await self.report_gated(conv, approval, outcome)

    async def report_gated(
        self, conv: Conversation, approval: Approval, outcome: ToolOutcome
    ) -> None:
        entry = await self.store.execution(approval.interrupt_id)
        ran_args: dict[str, Any] | None = json.loads(entry.args) if entry else None
        result = self.redact(
            entry.result if entry and entry.result is not None else outcome.content
        )
        name = f"`{blocks.escape(approval.tool)}`"
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
        else:
            shown = blocks.escape(result)[:SHOWN_RESULT_LIMIT]
            how = _edited(approval, ran_args)
            if outcome.status == "success":
                event, text = "executed", f":white_check_mark: {name} ran{how}: {shown}"
            else:
                event, text = "failed", f":x: {name} failed{how}: {shown}"
        # The notice and its audit record are kept together: recovery reports a finished call
        # with no audit record, and posts a notice that was on its way.
        await self.messages.say(
            conv, text, AuditEntry(event, approval, detail=result[:2000], args=ran_args)
        )


def _edited(approval: Approval, ran: dict[str, Any] | None) -> str:
    """` with replicas `2` → `1` (edited by @bob)` for an edited call, else nothing."""
    if ran is None or not approval.decision or approval.decision.get("type") != "edit":
        return ""
    changes = [
        f"{blocks.escape(key)} `{_short(approval.args.get(key, '—'))}` → `{_short(value)}`"
        for key, value in ran.items()
        if approval.args.get(key) != value
    ]
    changes += [f"{blocks.escape(key)} removed" for key in approval.args if key not in ran]
    by = f" (edited by {blocks.mention(approval.decided_by)})" if approval.decided_by else ""
    return (f" with {', '.join(changes)}" if changes else " unchanged") + by


def _short(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return blocks.escape(blocks.cut(text, 80)).replace("`", "'")


def answer_for(approval: Approval, who: str) -> Decision:
    """The LangGraph answer for a recorded decision, worded so the model knows who (`who`,
    the decider's name) and why."""
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
