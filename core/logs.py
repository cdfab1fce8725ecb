"""Logging for Rex's processes, with access tokens scrubbed from every record.

Rex never formats a token into a message on purpose; the filter is the second line of
defence for what third-party code logs (a URL with `access_token=` in it, an
`Authorization` header). Known tokens can be registered so that even a bare token is
replaced.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from typing import TextIO

REDACTED = "[redacted]"

_PATTERNS = (
    re.compile(r"(access_token=|appsecret_proof=|input_token=)[^&\s'\"]+", re.IGNORECASE),
    re.compile(r"((?:Bearer|OAuth)\s+)[A-Za-z0-9._\-]+", re.IGNORECASE),
    re.compile(r"\bEAA[A-Za-z0-9]{20,}\b"),  # the shape of Meta user / system-user tokens
)
_known: set[str] = set()
_known_lock = threading.Lock()


def register_secret(value: str) -> None:
    """Scrub this exact value from every later log record (tokens shorter than 8 are
    ignored: they would mangle ordinary words)."""
    if value and len(value) >= 8:
        with _known_lock:
            _known.add(value)


def redact(text: str) -> str:
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + REDACTED, text)
    with _known_lock:
        for secret in _known:
            text = text.replace(secret, REDACTED)
    return text


class RedactingFilter(logging.Filter):
    """Renders the record's message once, scrubbed, so handlers only see the safe text."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg, record.args = redact(message), None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def configure_logging(level: str = "INFO", stream: TextIO | None = None) -> None:
    """Root logging to stderr (or `stream`) in one line per record, tokens scrubbed."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S")
    )
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_rex", False):
            root.removeHandler(old)
    handler._rex = True  # type: ignore[attr-defined]  # Rex's mark, kept across module reloads
    root.addHandler(handler)
    root.setLevel(level.upper())
    quiet = max(logging.WARNING, root.level)
    for noisy in (
        "urllib3",
        "alembic.runtime.plugins",
        "alembic.runtime.migration",
        "apscheduler.executors.default",
        "apscheduler.scheduler",
    ):
        logging.getLogger(noisy).setLevel(
            quiet if not noisy.startswith("urllib3") else max(logging.INFO, root.level)
        )
