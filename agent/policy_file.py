"""The policy file's format: its keys, their defaults and how each value is checked.

Parsed whole and strictly (see `agent.policy`): unknown keys and bad values are errors.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

DecisionName = Literal["approve", "reject", "edit"]

APPROVERS = "approvers"
"""In `notify`: a DM to each approver (user groups resolved)."""

_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


class PolicyError(ValueError):
    """A policy file that cannot be used, with a message a person can act on."""


def parse_duration(value: object) -> timedelta | None:
    """`30m`, `2h`, `1d`, `45s` → timedelta; `never` → None (waits for ever)."""
    if isinstance(value, str) and value.strip().lower() == "never":
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return timedelta(seconds=value)
    match = _DURATION.match(value) if isinstance(value, str) else None
    if not match or int(match.group(1)) == 0:
        raise ValueError(
            f"{value!r} is not a duration: use a positive number with s, m, h or d "
            "(e.g. 30m, 2h, 1d), or 'never'"
        )
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_principals(value: list[str]) -> list[str]:
    for principal in value:
        if not re.fullmatch(r"[UWS][A-Z0-9]+", principal):
            raise ValueError(f"{principal!r} is not a Slack user id (U…/W…) or user-group id (S…)")
    return value


def _check_places(value: list[str]) -> list[str]:
    for place in value:
        if place != APPROVERS and not re.fullmatch(r"[CG][A-Z0-9]+", place):
            raise ValueError(
                f"{place!r} is not a place to notify: use 'approvers' (a DM to each approver) "
                "or a channel id (C…)"
            )
    return list(dict.fromkeys(value))


def _optional_duration(value: object) -> object:
    """A duration, `never`, or `default` (a tool's entry falls back to `defaults`)."""
    if value == "default" or isinstance(value, timedelta):
        return value
    return parse_duration(value)


class Rules(_Strict):
    """Who may decide a gated call and how many must agree."""

    approvers: list[str] = Field(default_factory=list)
    allow_self_approval: bool = True
    approvals_needed: int = Field(default=1, ge=1, le=10)
    expires_after: timedelta | None = timedelta(minutes=30)
    notify: list[str] = Field(default_factory=list)
    remind_after: timedelta | None = None
    escalate_after: timedelta | None = None
    escalate_to: list[str] = Field(default_factory=list)

    _principals = field_validator("approvers", "escalate_to")(_check_principals)
    _places = field_validator("notify")(_check_places)

    @field_validator("expires_after", "remind_after", "escalate_after", mode="before")
    @classmethod
    def _duration(cls, value: object) -> timedelta | None:
        return value if isinstance(value, timedelta) else parse_duration(value)


class ToolRule(_Strict):
    """A tool's entry; unset keys fall back to `defaults`."""

    approval: Literal["required", "never"] = "required"
    decisions: list[DecisionName] = Field(
        default_factory=lambda: list[DecisionName](["approve", "reject"])
    )
    approvers: list[str] | None = None
    allow_self_approval: bool | None = None
    approvals_needed: int | None = Field(default=None, ge=1, le=10)
    expires_after: timedelta | Literal["default"] | None = "default"
    confirm: bool = False
    notify: list[str] | None = None
    remind_after: timedelta | Literal["default"] | None = "default"
    escalate_after: timedelta | Literal["default"] | None = "default"
    escalate_to: list[str] | None = None
    editable: list[str] | None = None
    """The arguments an Edit may change; unset: all of them."""

    _principals = field_validator("approvers", "escalate_to")(
        lambda value: value if value is None else _check_principals(value)
    )
    _places = field_validator("notify")(
        lambda value: value if value is None else _check_places(value)
    )

    @field_validator("decisions", mode="before")
    @classmethod
    def _deny_is_reject(cls, value: object) -> object:
        # People say "deny" (the button's word); LangChain's decision is "reject".
        if isinstance(value, list):
            return ["reject" if v == "deny" else v for v in value]
        return value

    @field_validator("decisions")
    @classmethod
    def _decisions(cls, value: list[DecisionName]) -> list[DecisionName]:
        if "approve" not in value:
            raise ValueError("decisions must include 'approve'")
        return list(dict.fromkeys(value))

    @field_validator("expires_after", "remind_after", "escalate_after", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        return _optional_duration(value)


class PolicyFile(_Strict):
    defaults: Rules = Field(default_factory=Rules)
    tools: dict[str, ToolRule] = Field(default_factory=dict)
