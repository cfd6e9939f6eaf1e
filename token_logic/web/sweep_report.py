"""A sweep's answer and log lines, small however many users it covered.

Each outcome becomes a plain, token-free dictionary (service/sweep.py's ``summarize``, which the
command line shares).
The answer counts outcomes (refreshed, skipped, dead, gone, failed, deferred) and details only
the dead and failed, capped, with their user ids; small deployments (at most ``DETAILED_UP_TO``
documents) also get every document's facts, as before.

What asks a person to act, and so what the alert policy (deploy.sh) and the HTTP status see:
- a login found dead in this run: one ERROR line per user (``alert=login_dead``);
- a refresh that failed: one ERROR line per user up to ``MAX_FAILURE_DETAILS``, then one line
  for the rest (``alert=refresh_failed``), so an outage of Kakao is a few lines, not thousands.
A login already marked dead before this run (its alert went out then; the token endpoint alerts
again when a script asks for it) is counted and detailed, but neither logged nor in the status:
a deployment of many users always has a few, and must not look broken every run for them.
Deferred work gets one WARNING line with the count: it is the next run's, not a person's. But
two cases ask a person to act (more shards, docs how-it-works.md), so they get an ERROR line
(``alert=refresh_deferred``), the status ``failed`` and a 503: a run that deferred due logins
for lack of time and refreshed none (the shard cannot even start), and deferrals run after run
(``deferred_runs`` from service/sweep_memory.py: the users at the head of the queue wait again, and
their access tokens may expire before a run reaches them).
No stored login at all is ``status: empty``, a 200 with no alert: a deployment nobody has logged
in to yet is not broken.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from ..errors import LoginRequired
from ..log import ALERT_LOGIN_DEAD, ALERT_REFRESH_DEFERRED, ALERT_REFRESH_FAILED, log_event
from ..service.sweep import RefreshOutcome, out_of_time, outcome_kind, summarize
from ..storage.protocol import template_user_id

MAX_FAILURE_DETAILS = 20
DETAILED_UP_TO = 20
KINDS = ("refreshed", "skipped", "dead", "gone", "failed", "deferred")
# Runs in a row deferring due logins before it is a person's matter: work is taken most urgent
# first, so a second run deferring means the same logins waited twice (with the default 30 min
# schedule and 1 h margin, their access tokens may then expire before a run reaches them).
REPEATED_DEFERRALS = 2


def sweep_report(
    outcomes: list[RefreshOutcome],
    now: int,
    template: str,
    login_url: str,
    *,
    whole: bool = True,
    deferred_runs: int = 0,
) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON body) of a sweep; logs as the module docstring says.

    ``deferred_runs``: how many runs in a row, this one included, deferred due logins for lack
    of time (service/sweep_memory.py; 0 when unknown or none).
    """
    counts = Counter({kind: 0 for kind in KINDS})
    news: list[dict[str, Any]] = []  # this run's dead and failed: detailed first
    known: list[dict[str, Any]] = []
    worst = 200
    alerting = failed_logged = 0
    for outcome in outcomes:
        kind = outcome_kind(outcome)
        counts[kind] += 1
        if kind in ("dead", "failed"):
            item = summarize(outcome, now)
            detail = {
                "document": outcome.name,
                "user_id": template_user_id(template, outcome.name),
                "status": kind,
                "http_status": item["http_status"],
                "error_code": item["error_code"],
                "message": item["message"],
            }
            if _already_known(outcome):
                if len(known) < MAX_FAILURE_DETAILS:
                    known.append(detail)
                continue
            if len(news) < MAX_FAILURE_DETAILS:
                news.append(detail)
            alerting += 1
            worst = max(worst, item["http_status"])
            if kind == "dead" or failed_logged < MAX_FAILURE_DETAILS:
                failed_logged += kind == "failed"
                _log_failure(detail, login_url)
        elif kind == "refreshed" and outcome.result is not None:
            log_event(
                logging.INFO,
                "refresh refreshed: ok",
                document=outcome.name,
                user_id=outcome.result.document.user_id,
                expires_at=outcome.result.document.expires_at,
            )
    late = sum(1 for outcome in outcomes if out_of_time(outcome))
    behind = _behind(late, counts["refreshed"], deferred_runs)
    if behind:
        alerting += 1
        worst = max(worst, 503)
    _log_totals(counts, failed_logged, behind, late, deferred_runs)
    failed_total = counts["dead"] + counts["failed"]
    failures = (news + known)[:MAX_FAILURE_DETAILS]
    body: dict[str, Any] = {
        "status": "failed" if alerting else "ok",
        "total": len(outcomes),
        "counts": dict(counts),
        "failures": failures,
        "failures_omitted": failed_total - len(failures),
    }
    if deferred_runs:
        body["deferred_runs"] = deferred_runs
    if len(outcomes) <= DETAILED_UP_TO:
        body["documents"] = [summarize(outcome, now) for outcome in outcomes]
    messages = []
    if counts["dead"]:
        messages.append(f"log in again at {login_url}")
    if counts["failed"]:
        messages.append("some refreshes failed; the next scheduled run tries them again")
    if behind:
        messages.append(f"{behind}: split the refresh into more shards (REFRESH_SHARDS)")
    if not outcomes and whole:  # (one shard of many may hold nobody: that is just "ok")
        # Nobody has logged in yet (or every login was logged out): not an outage. The moment
        # a login died or was unlinked had its own alert; every run after it must not.
        body["status"] = "empty"
        messages.append(
            f"nobody is logged in; nothing to keep alive until someone logs in at {login_url}"
        )
    if messages:
        body["message"] = "; ".join(messages)
    return worst, body


def _already_known(outcome: RefreshOutcome) -> bool:
    return isinstance(outcome.error, LoginRequired) and outcome.error.known


def _behind(late: int, refreshed: int, deferred_runs: int) -> str:
    """Why deferred work asks a person to act ("" when it is just the next run's)."""
    if not late:
        return ""
    if not refreshed:
        return f"{late} due logins were deferred for lack of time and none was refreshed"
    if deferred_runs >= REPEATED_DEFERRALS:
        return f"due logins were deferred for lack of time in {deferred_runs} runs in a row"
    return ""


def _log_totals(
    counts: Counter[str], failed_logged: int, behind: str, late: int, deferred_runs: int
) -> None:
    log_event(logging.INFO, "sweep done", total=sum(counts.values()), counts=dict(counts))
    if counts["failed"] > failed_logged:
        log_event(
            logging.ERROR,
            "more refreshes failed than are logged one by one",
            alert=ALERT_REFRESH_FAILED,
            not_logged=counts["failed"] - failed_logged,
        )
    if behind:
        log_event(
            logging.ERROR,
            f"the sweep is falling behind: {behind}",
            alert=ALERT_REFRESH_DEFERRED,
            deferred=late,
            refreshed=counts["refreshed"],
            deferred_runs=deferred_runs,
        )
    elif counts["deferred"]:
        log_event(
            logging.WARNING,
            "the deadline left refreshes for the next run",
            deferred=counts["deferred"],
        )


def _log_failure(detail: dict[str, Any], login_url: str) -> None:
    alert = ALERT_LOGIN_DEAD if detail["status"] == "dead" else ALERT_REFRESH_FAILED
    log_event(
        logging.ERROR,
        f"refresh failed: {detail['message']}",
        alert=alert,
        login_url=login_url,
        **{key: value for key, value in detail.items() if value and key != "message"},
    )
