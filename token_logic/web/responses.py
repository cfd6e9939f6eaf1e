"""What every answer of the functions carries: the hardening headers, and JSON or a 405 in
one shape."""

from __future__ import annotations

import json
from typing import Any

import flask

from .pages import CLAIM_SCRIPT_CSP_SOURCE, STYLE_CSP_SOURCE

# Every page: its one inline stylesheet and nothing else; framed by nobody.
_POLICY = (
    f"default-src 'none'; style-src {STYLE_CSP_SOURCE}; frame-ancestors 'none'; base-uri 'none'"
)
# The claim page also runs its one script, and has no form-action: Chromium applies that to
# every redirect after the post, and Kakao's login goes on across its own hosts (kauth, then
# accounts). The page is static (nothing injected), and its one form posts to itself.
CLAIM_PAGE_POLICY = f"{_POLICY}; script-src {CLAIM_SCRIPT_CSP_SOURCE}"

# The success page and the test message's result post their one form to this function.
DONE_PAGE_POLICY = f"{_POLICY}; form-action 'self'"

SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": f"{_POLICY}; form-action 'none'",
}


def json_response(status: int, body: dict[str, Any]) -> flask.Response:
    """A JSON answer (UTF-8, Korean kept as it is) with the hardening headers."""
    response = flask.Response(
        json.dumps(body, ensure_ascii=False), status=status, mimetype="application/json"
    )
    return finish(response, "")


def method_not_allowed(allow: str) -> flask.Response:
    """405 naming the methods that work (``Allow``)."""
    response = flask.Response("Method Not Allowed\n", status=405, mimetype="text/plain")
    response.headers["Allow"] = allow
    return finish(response, "")


def finish(response: flask.Response, redirect_uri: str) -> flask.Response:
    """The hardening headers; HSTS when the function is served over https."""
    response.headers.update(SECURITY_HEADERS)
    if redirect_uri.startswith("https://"):
        response.headers["Strict-Transport-Security"] = "max-age=31536000"
    return response
