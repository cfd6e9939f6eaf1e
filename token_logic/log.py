"""Structured logs: one JSON object per line with ``severity`` and ``message``.

Cloud Logging reads that shape from stdout/stderr. Callers pass only events and non-secret
facts (user id, expiry, error code); tokens, codes and secrets are never handed to a logger.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import traceback
from typing import Any

LOGGER_NAME = "token_logic"
# The values of the ``alert`` field: deploy.sh's Cloud Monitoring policy mails on any of them,
# and its mail explains each by name. A login a person must renew:
ALERT_LOGIN_DEAD = "login_dead"
# A refresh that failed after its retries:
ALERT_REFRESH_FAILED = "refresh_failed"
# The sweep falls behind: due logins deferred run after run, or none refreshed for lack of time
# (web/sweep_report.py):
ALERT_REFRESH_DEFERRED = "refresh_deferred"
# Who owns a single-document deployment changed, or a stranger's login was refused
# (service/claim.py):
ALERT_OWNERSHIP = "ownership"
ALERTS = (ALERT_LOGIN_DEAD, ALERT_REFRESH_FAILED, ALERT_REFRESH_DEFERRED, ALERT_OWNERSHIP)
_SEVERITY = {"WARNING": "WARNING", "ERROR": "ERROR", "CRITICAL": "CRITICAL", "DEBUG": "DEBUG"}


class JsonLineFormatter(logging.Formatter):
    """Formats a record as Cloud Logging structured JSON."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "severity": _SEVERITY.get(record.levelname, "INFO"),
            "message": record.getMessage(),
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created)),
        }
        entry.update(getattr(record, "facts", {}))
        if record.exc_info and record.exc_info[0] is not None:
            # The types and where they happened, never the messages: library exception texts
            # may echo a request (a URL with a code, a form with a token).
            entry["exception"] = record.exc_info[0].__name__
            entry["stack"] = _stack_without_messages(record.exc_info[1])
        return json.dumps(entry, ensure_ascii=False, default=str)


def _stack_without_messages(exc: BaseException | None) -> str:
    """Each exception of the chain as its type and frames (file, line, function, code line)."""
    parts = []
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        frames = "".join(traceback.format_tb(exc.__traceback__))
        parts.append(f"{type(exc).__module__}.{type(exc).__qualname__}\n{frames}")
        exc = exc.__cause__ or exc.__context__
    return "\n-- caused by --\n".join(parts)


class _CurrentStderrHandler(logging.StreamHandler[Any]):
    """Writes to whatever sys.stderr is now (servers and test runners swap it)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def get_logger() -> logging.Logger:
    """The package logger, writing JSON lines to stderr once configured."""
    logger = logging.getLogger(LOGGER_NAME)
    if not logger.handlers:
        handler = _CurrentStderrHandler()
        handler.setFormatter(JsonLineFormatter())
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    return logger


def log_event(severity: int, message: str, *, exc_info: bool = False, **facts: Any) -> None:
    """Log one event with non-secret facts attached as JSON fields."""
    get_logger().log(severity, message, exc_info=exc_info, extra={"facts": facts})
