"""Which conversation and approval a log line is about, on every line logged while working
on them: set once where the work starts, carried by contextvars into the tasks it spawns."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s%(context)s"

_conversation: ContextVar[str | None] = ContextVar("conversation", default=None)
_approval: ContextVar[str | None] = ContextVar("approval", default=None)


@contextmanager
def log_context(*, conversation: str | None = None, approval: str | None = None) -> Iterator[None]:
    """Name the conversation and/or approval for the body; None keeps what is already set."""
    tokens = [
        (var, var.set(value))
        for var, value in ((_conversation, conversation), (_approval, approval))
        if value is not None
    ]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


class ContextFilter(logging.Filter):
    """Adds `conversation`, `approval` and, for text formats, `context` (" conversation=…
    approval=…", or empty) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        conversation, approval = _conversation.get(), _approval.get()
        record.conversation = conversation
        record.approval = approval
        record.context = "".join(
            f" {name}={value}"
            for name, value in (("conversation", conversation), ("approval", approval))
            if value is not None
        )
        return True


def install() -> None:
    """Put the filter on the root logger's handlers (records from every logger pass them)."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, ContextFilter) for f in handler.filters):
            handler.addFilter(ContextFilter())
