"""Refresh outcomes as plain, token-free dictionaries (for the JSON answer and the CLI)."""

from __future__ import annotations

from typing import Any

from .errors import KakaoTokenError
from .problems import problem_for
from .sweep import RefreshOutcome
from .tokens import public_view


def summarize(outcome: RefreshOutcome, now: int) -> dict[str, Any]:
    """What happened to one document: refreshed, skipped or failed, with non-secret facts."""
    if outcome.result is not None:
        status = "refreshed" if outcome.result.refreshed else "skipped"
        return {
            "document": outcome.name,
            "status": status,
            **public_view(outcome.result.document, now),
        }
    problem = problem_for(outcome.error or KakaoTokenError())
    return {
        "document": outcome.name,
        "status": "failed",
        "http_status": problem.status,
        "error_code": problem.code,
        "message": problem.one_line(),
    }
