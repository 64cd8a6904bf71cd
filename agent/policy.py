"""The approval policy: which tools are gated, who may decide them, and how.

The file format is the README's "The policy file" (docs/design.md, "Configuration and the
policy file"). It is parsed whole and strictly: a typo in a key
must not silently turn a gate off, so unknown keys, bad values and tools that do
not exist are errors that name the file and line.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from agent.policy_file import (
    APPROVERS,
    DecisionName,
    PolicyError,
    PolicyFile,
    ToolRule,
    parse_duration,
)

__all__ = ["APPROVERS", "Policy", "PolicyError", "PolicySnapshot", "ToolPolicy", "parse_duration"]


class PolicySnapshot(BaseModel):
    """The rules an approval was requested under, recorded with it so that a later policy
    edit cannot loosen them (docs/design.md, "Policy edits"). Defaults fill in what older
    records lack."""

    model_config = ConfigDict(frozen=True)

    decisions: tuple[DecisionName, ...] = ("approve", "reject")
    approvers: tuple[str, ...] = ()
    allow_self_approval: bool = True
    approvals_needed: int = 1
    expires_after_s: int | None = None
    confirm: bool = False
    notify: tuple[str, ...] = ()
    remind_after_s: int | None = None
    escalate_after_s: int | None = None
    escalate_to: tuple[str, ...] = ()
    tool: dict[str, Any] | None = None
    """What the tool's source declared about it when the call was requested (an MCP server,
    its title and hints), shown on the card."""
    editable: tuple[str, ...] | None = None
    """The arguments an Edit may change; None: all of them."""

    @property
    def needs_quorum(self) -> bool:
        return self.approvals_needed > 1

    def offered(self) -> tuple[DecisionName, ...]:
        """The decisions people are offered: Edit only where one approval decides, since an
        edit would otherwise skip the other approvers."""
        return tuple(d for d in self.decisions if d != "edit" or not self.needs_quorum)

    def offers(self, decision: str) -> bool:
        return decision in self.offered()


@dataclass(frozen=True)
class ToolPolicy:
    """The effective rules for one tool, defaults applied."""

    name: str
    gated: bool
    decisions: tuple[DecisionName, ...]
    approvers: tuple[str, ...]
    allow_self_approval: bool
    approvals_needed: int
    expires_after: timedelta | None
    confirm: bool
    notify: tuple[str, ...] = ()
    remind_after: timedelta | None = None
    escalate_after: timedelta | None = None
    escalate_to: tuple[str, ...] = ()
    facts: Mapping[str, Any] | None = None
    """What the tool's source declares about it (an MCP server, its hints), for the card."""
    editable: tuple[str, ...] | None = None

    def snapshot(self) -> PolicySnapshot:
        """What an approval records, so a later policy change cannot alter a pending one."""
        return PolicySnapshot(
            decisions=self.decisions,
            approvers=self.approvers,
            allow_self_approval=self.allow_self_approval,
            approvals_needed=self.approvals_needed,
            expires_after_s=_seconds(self.expires_after),
            confirm=self.confirm,
            notify=self.notify,
            remind_after_s=_seconds(self.remind_after),
            escalate_after_s=_seconds(self.escalate_after),
            escalate_to=self.escalate_to,
            tool=dict(self.facts) if self.facts else None,
            editable=self.editable,
        )


def _seconds(duration: timedelta | None) -> int | None:
    return None if duration is None else int(duration.total_seconds())


class Policy:
    """A parsed policy file; tools it does not name are gated with the defaults."""

    def __init__(
        self,
        parsed: PolicyFile,
        source: str = "<default policy>",
        lines: Mapping[str, int | str] | None = None,
    ) -> None:
        self._parsed = parsed
        self.source = source
        self._lines = dict(lines or {})
        self._facts: dict[str, Mapping[str, Any]] = {}

    @classmethod
    def default(cls, safe_tools: Iterable[str] = ()) -> Policy:
        tools = {name: ToolRule(approval="never") for name in safe_tools}
        return cls(PolicyFile(tools=tools))

    @classmethod
    def load(cls, path: str | Path) -> Policy:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise PolicyError(f"cannot read policy file {path}: {exc.strerror}") from exc
        return cls.parse(text, source=str(path))

    @classmethod
    def parse(cls, text: str, source: str = "<policy>") -> Policy:
        try:
            node = yaml.compose(text)
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise PolicyError(f"{source}: not valid YAML: {exc}") from exc
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise PolicyError(f"{source}: a policy is a mapping with 'defaults' and 'tools'")
        try:
            parsed = PolicyFile.model_validate(data)
        except ValidationError as exc:
            problems = [
                f"{source}:{_line_of(node, err['loc'])}: "
                f"{'.'.join(str(p) for p in err['loc'])}: {_explain(err)}"
                for err in exc.errors()
            ]
            raise PolicyError("invalid policy\n  " + "\n  ".join(problems)) from None
        lines: dict[str, int | str] = {n: _line_of(node, ("tools", n)) for n in parsed.tools}
        for key in ("approvers", "escalate_to"):
            for group in getattr(parsed.defaults, key):
                lines.setdefault(group, _line_of(node, ("defaults", key)))
            for name, rule in parsed.tools.items():
                for group in getattr(rule, key) or ():
                    lines.setdefault(group, _line_of(node, ("tools", name, key)))
        policy = cls(parsed, source, lines)
        policy._check_escalation(node)
        return policy

    def _check_escalation(self, node: yaml.Node | None) -> None:
        """`escalate_after` without anyone to escalate to (or the reverse) is a half-written
        rule: caught here, for `defaults` and for every tool as it resolves."""
        problems = []
        for name in ["defaults", *self._parsed.tools]:
            tool = self.for_tool("" if name == "defaults" else name)
            if name != "defaults" and not tool.gated:
                continue
            loc: tuple[str, ...] = ("defaults",) if name == "defaults" else ("tools", name)
            where = f"{self.source}:{_line_of(node, loc)}: {'.'.join(loc)}"
            if tool.escalate_after is not None and not tool.escalate_to:
                problems.append(f"{where}: escalate_after is set but escalate_to is empty")
            elif tool.escalate_to and tool.escalate_after is None:
                problems.append(f"{where}: escalate_to is set but escalate_after is not")
            if tool.escalate_to and not tool.approvers:
                problems.append(
                    f"{where}: escalate_to widens a list of approvers, but anyone may approve "
                    "here (approvers is empty)"
                )
        if problems:
            raise PolicyError("invalid policy\n  " + "\n  ".join(dict.fromkeys(problems)))

    def line_of(self, name: str) -> int | str:
        """The line where a tool or a group id first appears in the file."""
        return self._lines.get(name, "?")

    def check_tools(self, tool_names: Iterable[str]) -> None:
        """A policy that names a tool the agent does not have is a mistake, not a no-op."""
        known = set(tool_names)
        unknown = [name for name in self._parsed.tools if name not in known]
        if unknown:
            lines = ", ".join(f"'{n}' (line {self.line_of(n)})" for n in unknown)
            raise PolicyError(
                f"{self.source}: the policy names tools the agent does not have: {lines}. "
                f"Known tools: {', '.join(sorted(known)) or 'none'}"
            )

    def describe_tools(self, facts: Mapping[str, Mapping[str, Any]]) -> None:
        """Record what tools' sources declare about them, to show beside the rules."""
        self._facts = dict(facts)

    def check_editable(self, arguments: Mapping[str, Iterable[str]]) -> None:
        """`editable` may only name arguments the tool has: a typo would lock an edit out."""
        for name, rule in self._parsed.tools.items():
            known = set(arguments.get(name, ()))
            unknown = [arg for arg in rule.editable or () if arg not in known]
            if unknown:
                raise PolicyError(
                    f"{self.source}:{self.line_of(name)}: tools.{name}.editable names "
                    f"arguments {name} does not have: {', '.join(unknown)}. Its arguments: "
                    f"{', '.join(sorted(known)) or 'none'}"
                )

    def group_ids(self) -> set[str]:
        """Every user-group id the policy mentions, for checking at startup."""
        d = self._parsed.defaults
        ids = {p for p in [*d.approvers, *d.escalate_to] if p.startswith("S")}
        for rule in self._parsed.tools.values():
            ids.update(
                p for p in [*(rule.approvers or ()), *(rule.escalate_to or ())] if p.startswith("S")
            )
        return ids

    def for_tool(self, name: str) -> ToolPolicy:
        d = self._parsed.defaults
        rule = self._parsed.tools.get(name, ToolRule())
        return ToolPolicy(
            name=name,
            gated=rule.approval == "required",
            decisions=tuple(rule.decisions),
            approvers=tuple(rule.approvers if rule.approvers is not None else d.approvers),
            allow_self_approval=(
                rule.allow_self_approval
                if rule.allow_self_approval is not None
                else d.allow_self_approval
            ),
            approvals_needed=rule.approvals_needed or d.approvals_needed,
            expires_after=(
                d.expires_after if rule.expires_after == "default" else rule.expires_after
            ),
            confirm=rule.confirm,
            notify=tuple(rule.notify if rule.notify is not None else d.notify),
            remind_after=d.remind_after if rule.remind_after == "default" else rule.remind_after,
            escalate_after=(
                d.escalate_after if rule.escalate_after == "default" else rule.escalate_after
            ),
            escalate_to=tuple(rule.escalate_to if rule.escalate_to is not None else d.escalate_to),
            facts=self._facts.get(name),
            editable=None if rule.editable is None else tuple(rule.editable),
        )

    def gated(self, tool_names: Iterable[str]) -> list[str]:
        """The tools among these that the policy gates now."""
        return [name for name in tool_names if self.for_tool(name).gated]

    def editable(self, tool_names: Iterable[str]) -> list[str]:
        """The tools among these whose calls people may now answer with an Edit."""
        return [name for name in tool_names if self.for_tool(name).snapshot().offers("edit")]


def _explain(err: Any) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown key"
    return str(err["msg"]).removeprefix("Value error, ")


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | str:
    """The 1-based line of the YAML node at `loc`, or of its nearest existing parent."""
    line: int | str = "?"
    for part in loc:
        if node is None:
            break
        line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            found = next(
                ((k, v) for k, v in node.value if getattr(k, "value", None) == str(part)), None
            )
            if found is None:
                break
            key, node = found
            line = key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            node = node.value[part] if part < len(node.value) else None
        else:
            break
    return line
