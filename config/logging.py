"""Structured logging: one JSON object per line outside development, readable lines in it.
Secrets never reach a log line: the redacting filter masks tokens, passwords and hashes."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import datetime, timezone

from flask import g, has_request_context

_SECRET_PATTERNS = [
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"), r"\1[redacted]"),
    (re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"), "[redacted-jwt]"),
    (re.compile(r"\$argon2[a-z]*\$[^\s\"']+"), "[redacted-hash]"),
    (
        re.compile(r"(?i)(\"?(password|token|secret|password_hash|device_token)\"?\s*[:=]\s*)(\"[^\"]*\"|'[^']*'|\S+)"),
        r"\1[redacted]",
    ),
]


def redact(text: str) -> str:
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg = redact(message)
        record.args = None
        if has_request_context():
            record.request_id = getattr(g, "request_id", None)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "at": datetime.fromtimestamp(record.created, timezone.utc).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id:
            entry["request_id"] = request_id
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry)


class ReadableFormatter(logging.Formatter):
    def __init__(self):
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def formatException(self, ei):  # noqa: N802 - logging API
        return redact(super().formatException(ei))


def configure(settings) -> None:
    root = logging.getLogger()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(ReadableFormatter() if settings.is_development else JsonFormatter())
    handler.addFilter(RedactingFilter())
    for existing in list(root.handlers):
        if getattr(existing, "_medevac", False):
            root.removeHandler(existing)
    handler._medevac = True
    root.addHandler(handler)
    root.setLevel(settings.LOG_LEVEL)
    _install_record_factory()


_factory_installed = False


def _install_record_factory() -> None:
    """Every record, whichever logger made it and whichever handler prints it, is redacted at birth."""
    global _factory_installed
    if _factory_installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args, **kwargs):
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string must not lose the record
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        return record

    logging.setLogRecordFactory(factory)
    _factory_installed = True
