"""The scheduled refresh (``kakao_refresh``, Cloud Scheduler's POST): sweep what is due, in
this run's shard, and answer with the sweep's report (sweep_report.py)."""

from __future__ import annotations

import logging
from typing import Any

import flask

from ..errors import KakaoTokenError, LoginRequired, NoTokenStored
from ..log import ALERT_LOGIN_DEAD, ALERT_REFRESH_FAILED, log_event
from ..problems import problem_for
from ..service.shards import Shard
from ..service.sweep_memory import remember_run
from ..service.token_service import ServiceFactory
from .responses import json_response, method_not_allowed
from .sweep_report import sweep_report


def handle_refresh(request: flask.Request, get_service: ServiceFactory) -> flask.Response:
    """The scheduled refresh: refresh every stored document that is due; JSON summary."""
    if request.method != "POST":
        return method_not_allowed("POST")
    login_url = "the callback URL"  # until the settings are known (they may be broken)
    try:
        service = get_service()
        login_url = service.settings.redirect_uri or login_url
        force = request.args.get("force", "") in ("1", "true", "yes")
        try:
            shard = Shard.parse(request.args.get("shard", "0/1"))
        except ValueError as exc:
            return json_response(400, {"status": "error", "message": str(exc)})
        deadline = service.deadline()  # one for the sweep and for its memory after it
        outcomes = service.sweep(force=force, shard=shard, deadline=deadline)
        template = service.settings.token_object
        status, body = sweep_report(
            outcomes,
            service.now(),
            template,
            login_url,
            whole=shard.count == 1,
            deferred_runs=remember_run(
                service.store, template, shard, outcomes, service.now(), deadline
            ),
        )
        return json_response(status, body)
    except KakaoTokenError as exc:
        return _refresh_failure(exc, login_url)
    except Exception:  # noqa: BLE001 - the outermost edge
        log_event(logging.ERROR, "unexpected error in kakao_refresh", exc_info=True)
        return json_response(500, {"status": "error", "message": "unexpected error; see logs"})


def _refresh_failure(exc: KakaoTokenError, login_url: str) -> flask.Response:
    problem = problem_for(exc)
    severity = logging.ERROR if isinstance(exc, (LoginRequired, NoTokenStored)) else logging.WARNING
    facts: dict[str, Any] = {
        "status": problem.status,
        "error_code": problem.code,
        "error": type(exc).__name__,
        "login_url": login_url,
        "alert": _alert_for(problem.status, problem.code),
    }
    if isinstance(exc, NoTokenStored):
        facts["alert"] = ALERT_LOGIN_DEAD  # nothing left to refresh (logged out, unlinked)
    log_event(severity, "refresh failed", **{k: v for k, v in facts.items() if v})
    response = json_response(
        problem.status,
        {
            "status": "failed",
            "error_code": problem.code,
            "message": problem.one_line(),
            "login_url": login_url,
        },
    )
    if problem.retry_after:
        response.headers["Retry-After"] = str(problem.retry_after)
    return response


def _alert_for(status: int, code: str) -> str:
    """The ``alert`` field Cloud Monitoring mails on (deploy.sh): a dead login, or a refresh
    that failed after its retries; none for work the deadline merely deferred to the next run."""
    if status == 401:
        return ALERT_LOGIN_DEAD
    return "" if code == "deadline" else ALERT_REFRESH_FAILED
