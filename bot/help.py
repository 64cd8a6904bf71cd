"""`/ask help`: what the bot does and who may approve what, answered from the policy itself
(never by the model, which could get the rules wrong)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from agent.policy import Policy, ToolPolicy
from bot.mrkdwn import Block, count, escape, mention

HELP_WORDS = frozenset({"help", "?", "-h", "--help"})

_DECISION_WORDS = {"approve": "Approve", "reject": "Deny", "edit": "Edit"}


def wants_help(text: str) -> bool:
    return not text.strip() or text.strip().lower() in HELP_WORDS


def ask_help(policy: Policy, tool_names: Iterable[str]) -> tuple[str, list[Block]]:
    """The answer to `/ask` with no text or `/ask help`: (fallback text, blocks)."""
    rules = [policy.for_tool(name) for name in sorted(tool_names)]
    free = [f"`{escape(r.name)}`" for r in rules if not r.gated]
    gated = [_gated_line(r) for r in rules if r.gated]
    intro = (
        "*I am the operations agent.* Tell me what to do in plain words, e.g. "
        "`/ask scale down cl-001 to 2`, mention me in a channel, or DM me. I answer in a "
        "thread; a call that changes something waits there on an *Approve / Deny* card."
    )
    lines = [intro, ""]
    if free:
        lines.append(f"*Runs without approval:* {', '.join(free)}")
    if gated:
        lines.append("*Needs approval:*")
        lines.extend(gated)
    text = "\n".join(lines)
    return text, [{"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}]


def _gated_line(rule: ToolPolicy) -> str:
    who = (
        ", ".join(f"<!subteam^{a}>" if a.startswith("S") else mention(a) for a in rule.approvers)
        if rule.approvers
        else "anyone"
    )
    parts = [f"{count(rule.approvals_needed, 'approval')} from {who}"]
    if not rule.allow_self_approval:
        parts.append("never the person who asked")
    offered = [_DECISION_WORDS[d] for d in rule.decisions if d in _DECISION_WORDS]
    if rule.approvals_needed > 1 and "Edit" in offered:
        offered.remove("Edit")  # an edit would skip the other approvers
    if "Edit" in offered and rule.editable is not None:
        offered[offered.index("Edit")] = f"Edit ({', '.join(rule.editable) or 'nothing'})"
    parts.append(" / ".join(offered))
    if rule.confirm:
        parts.append("asks to confirm")
    parts.append(
        "never expires"
        if rule.expires_after is None
        else f"expires after {_duration(rule.expires_after)}"
    )
    return f"• `{escape(rule.name)}`: {'; '.join(parts)}"


def _duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for size, unit in ((86_400, "day"), (3_600, "hour"), (60, "minute")):
        if seconds % size == 0:
            return count(seconds // size, unit)
    return count(seconds, "second")
