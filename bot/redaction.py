"""Keeping the configured secrets out of what people and logs see.

The bot never writes a secret itself, but an error from elsewhere may quote one (an API
echoing the key it rejected), and a traceback or a thread notice carries such a message along.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

MIN_LENGTH = 8  # shorter values would blank ordinary words, and are no real secret


class Redactor:
    def __init__(self, secrets: Iterable[str]) -> None:
        # Longest first, so a secret that contains another is blanked whole.
        self._secrets = sorted({s for s in secrets if len(s) >= MIN_LENGTH}, key=len)[::-1]

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "[redacted]")
        return text


class LogRedaction(logging.Filter):
    """Blanks the secrets in every record a handler writes, tracebacks included."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self._redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        scrub = self._redactor.scrub
        message = record.getMessage()
        scrubbed = scrub(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        return True


def redact_logs(redactor: Redactor) -> None:
    """Put the filter on every handler of the root logger."""
    redaction = LogRedaction(redactor)
    for handler in logging.getLogger().handlers:
        handler.addFilter(redaction)
