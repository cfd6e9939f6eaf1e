"""A sweep's answer and log lines, small however many users it covered.

The answer counts outcomes (refreshed, skipped, dead, failed, deferred) and details only the
failures, capped, with their user ids; small deployments (at most ``DETAILED_UP_TO`` documents)
also get every document's facts, as before. Logs: one ERROR line per dead login
(``alert=login_dead``) and per failed refresh (``alert=refresh_failed``), one INFO line per
refresh, one INFO line of counts; nothing per skipped or deferred document (deferred work is the
next run's, not a person's).
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from .log import ALERT_LOGIN_DEAD, ALERT_REFRESH_FAILED, log_event
from .store import USER_ID_PLACEHOLDER
from .summary import summarize
from .sweep import RefreshOutcome, outcome_kind
from .text import is_decimal

MAX_FAILURE_DETAILS = 20
DETAILED_UP_TO = 20
KINDS = ("refreshed", "skipped", "dead", "failed", "deferred")


def sweep_report(
    outcomes: list[RefreshOutcome], now: int, template: str, login_url: str
) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON body) of a sweep; logs as the module docstring says."""
    counts = Counter({kind: 0 for kind in KINDS})
    failures: list[dict[str, Any]] = []
    worst = 200
    for outcome in outcomes:
        kind = outcome_kind(outcome)
        counts[kind] += 1
        if kind in ("dead", "failed"):
            item = summarize(outcome, now)
            detail = {
                "document": outcome.name,
                "user_id": _user_id(template, outcome.name),
                "status": kind,
                "http_status": item["http_status"],
                "error_code": item["error_code"],
                "message": item["message"],
            }
            worst = max(worst, item["http_status"])
            _log_failure(detail, login_url)
            if len(failures) < MAX_FAILURE_DETAILS:
                failures.append(detail)
        elif kind == "refreshed" and outcome.result is not None:
            log_event(
                logging.INFO,
                "refresh refreshed: ok",
                document=outcome.name,
                user_id=outcome.result.document.user_id,
                expires_at=outcome.result.document.expires_at,
            )
    failed_total = counts["dead"] + counts["failed"]
    log_event(logging.INFO, "sweep done", total=len(outcomes), counts=dict(counts))
    body: dict[str, Any] = {
        "status": "failed" if failed_total else "ok",
        "total": len(outcomes),
        "counts": dict(counts),
        "failures": failures,
        "failures_omitted": failed_total - len(failures),
    }
    if len(outcomes) <= DETAILED_UP_TO:
        body["documents"] = [summarize(outcome, now) for outcome in outcomes]
    if failed_total:
        body["message"] = f"log in again at {login_url}"
    return worst, body


def _log_failure(detail: dict[str, Any], login_url: str) -> None:
    alert = ALERT_LOGIN_DEAD if detail["status"] == "dead" else ALERT_REFRESH_FAILED
    log_event(
        logging.ERROR,
        f"refresh failed: {detail['message']}",
        alert=alert,
        login_url=login_url,
        **{key: value for key, value in detail.items() if value and key != "message"},
    )


def _user_id(template: str, name: str) -> int | None:
    """The user id a per-user document's name carries; None for a single document."""
    if USER_ID_PLACEHOLDER not in template:
        return None
    prefix, suffix = template.split(USER_ID_PLACEHOLDER, 1)
    middle = name[len(prefix) : len(name) - len(suffix)]
    return int(middle) if is_decimal(middle) else None
