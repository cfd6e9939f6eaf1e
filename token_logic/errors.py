"""The exception tree of token_logic.

Every error the package raises derives from ``KakaoTokenError``; callers catch that, never bare
``Exception``. Messages are written for people and never contain a token, code or secret.

    KakaoTokenError
    ├── ConfigError            settings missing or invalid (names every variable to fix)
    │   ├── IdentityRejected   Cloud Run refused the caller's Google ID token (token endpoint)
    │   └── UserIdRequired     one login per user is stored, and the request named none
    ├── LoginStateError        callback without a valid state for this browser (CSRF, replay)
    ├── AuthorizationDenied    Kakao redirected back with ?error= (user cancelled, refused)
    ├── UserNotAllowed         the Kakao user is not in ALLOWED_KAKAO_USER_IDS
    │   ├── NotTheOwner        another Kakao user already owns this single-document deployment
    │   ├── ClaimRequired      nobody owns it yet, and the login carried no valid claim link
    │   ├── SenderIsOwner      the owner's account opened the sender's claim link
    │   ├── SenderNeedsOwner   a sender link opened before any owner logged in
    │   └── OwnerIsSender      the sender's account logged in as the owner
    ├── IdentityUnverified     who logged in could not be established (fail closed)
    ├── KakaoError             Kakao answered with an error body (KOE codes, API codes)
    │   └── LoginRequired      the refresh token is dead (KOE322): a person must log in again
    ├── KakaoUnavailable       Kakao unreachable, timing out, 5xx or not JSON
    ├── NoTokenStored          nothing stored yet for this user: log in first
    ├── DeadlineReached        the request's time budget ran out first (503, Retry-After)
    ├── EndpointUnreachable    the token endpoint could not be reached (network), after retries
    └── StorageError           the token store failed (after the client's own retries)
        └── WriteConflict      a conditional write lost a race; re-read and decide again

Each class names itself on the wire: ``wire_name`` is the ``error`` field of the token
endpoint's JSON refusal (docs/en/token-endpoint.md), written by the endpoint for the class and read
back into it by the script client (``error_class_for``, then ``from_wire``), as Authlib's error
classes carry their OAuth ``error``.
"""

from __future__ import annotations

from typing import Any

# The endpoint's refusals of a request itself (no exception behind them); the client reads them
# as ConfigError, the caller's set-up being wrong.
BAD_REQUEST = "bad_request"
METHOD_NOT_ALLOWED = "method_not_allowed"


class KakaoTokenError(Exception):
    """Base of every error raised by token_logic."""

    # A class without a name of its own reaching the endpoint is a bug.
    wire_name = "internal"

    @classmethod
    def from_wire(
        cls, status: int, code: str, message: str, retry_after: int | None
    ) -> KakaoTokenError:
        """The error the client raises for an endpoint refusal naming this class."""
        return cls(message)


class ConfigError(KakaoTokenError):
    """Raised when settings are missing or invalid; ``missing`` names every missing variable."""

    wire_name = "not_configured"

    def __init__(self, message: str, missing: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.missing = missing


class IdentityRejected(ConfigError):
    """Raised when Cloud Run itself refuses a token-endpoint caller (its HTML 401 or 403).

    ``status`` is 401 (the ID token expired, is malformed or is for another audience) or 403
    (a valid identity that is not among the endpoint's readers). The message names the fix.
    """

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message, ("TOKEN_READERS",) if status == 403 else ())
        self.status = status


class UserIdRequired(ConfigError):
    """Raised when a deployment keeps one login per Kakao user and a request (a script's, a
    command's) names no user, and no single allowed user stands for it: the caller must say
    whose token it wants, never be handed whichever login happens to be stored."""

    wire_name = BAD_REQUEST

    def __init__(self, message: str) -> None:
        super().__init__(message, ("user_id",))


class LoginStateError(KakaoTokenError):
    """Raised when a callback's ``state`` is missing or not the one issued to this browser."""


class AuthorizationDenied(KakaoTokenError):
    """Raised when Kakao sends the browser back with ``?error=`` instead of a code."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(f"Kakao login was not completed: {error}")
        self.error = error
        self.description = description


class UserNotAllowed(KakaoTokenError):
    """Raised when the Kakao user who logged in is not in ALLOWED_KAKAO_USER_IDS."""

    def __init__(self, user_id: int) -> None:
        super().__init__(f"Kakao user {user_id} is not allowed to store a token here")
        self.user_id = user_id


class NotTheOwner(UserNotAllowed):
    """Raised when a deployment without an allowlist already stores another user's login.

    ``owner_known`` is False when the stored document names nobody (written by an old version
    or another tool): then only the operator can hand the deployment over (``logout``).
    """

    def __init__(self, user_id: int, owner_known: bool) -> None:
        KakaoTokenError.__init__(self, f"Kakao user {user_id} does not own this deployment")
        self.user_id = user_id
        self.owner_known = owner_known


class ClaimRequired(UserNotAllowed):
    """Raised when the first login of a single-document deployment (no allowlist) carries no
    valid claim link, or a claim link was already used or expired (service/claim.py)."""

    def __init__(self, user_id: int, *, link_given: bool, logged_out: bool = True) -> None:
        KakaoTokenError.__init__(self, f"Kakao user {user_id} has no valid claim link")
        self.user_id = user_id
        self.link_given = link_given
        self.logged_out = logged_out  # False: refused before any login reached Kakao


class SenderIsOwner(UserNotAllowed):
    """Raised when the sender's claim link is opened by the owner's own Kakao account: the
    sender must be a second account (Kakao refuses a message whose receiver is its sender).
    Nothing is logged out (that would end the owner's stored login too) and the link stays
    unspent, for the right account."""

    def __init__(self, user_id: int) -> None:
        KakaoTokenError.__init__(self, f"Kakao user {user_id} owns this deployment")
        self.user_id = user_id


class SenderNeedsOwner(UserNotAllowed):
    """Raised when a sender link is opened before any owner has logged in: the sender sends
    to the owner, and the intended owner opening it first would become the sender. The link
    stays unspent; nothing is logged out (the account holds no stored login)."""

    def __init__(self, user_id: int) -> None:
        KakaoTokenError.__init__(self, "no owner has logged in yet")
        self.user_id = user_id


class OwnerIsSender(UserNotAllowed):
    """Raised when the stored sender's account logs in as the owner (one account never holds
    both logins). Nothing is logged out (that would end the sender's stored login)."""

    def __init__(self, user_id: int) -> None:
        KakaoTokenError.__init__(self, f"Kakao user {user_id} is this deployment's sender")
        self.user_id = user_id


class IdentityUnverified(KakaoTokenError):
    """Raised when the Kakao user id cannot be established but is needed (nothing is stored)."""


class KakaoError(KakaoTokenError):
    """Raised when Kakao answers with an error body.

    ``error`` is the OAuth error (``invalid_grant``) or empty, ``code`` the Kakao code
    (``KOE320`` or an API code such as ``-401``), ``status`` the HTTP status. The raw body is
    never kept: Kakao echoes authorization codes in descriptions.
    """

    wire_name = "kakao_error"

    def __init__(
        self,
        status: int,
        error: str,
        code: str,
        retry_after: float | None = None,
        *,
        required_scopes: tuple[str, ...] = (),
    ) -> None:
        super().__init__(f"Kakao refused the request: HTTP {status} {error} {code}".rstrip())
        self.status = status
        self.error = error
        self.code = code
        self.retry_after = retry_after
        # -402: the consent items the call needs (Kakao's ``required_scopes``), e.g. friends.
        self.required_scopes = required_scopes

    @classmethod
    def from_wire(
        cls, status: int, code: str, message: str, retry_after: int | None
    ) -> KakaoTokenError:
        return KakaoError(status, "", code, retry_after)


class LoginRequired(KakaoError):
    """Raised when the stored refresh token is dead (KOE322 after a re-read).

    ``known``: the document was already marked dead before this call, so whoever marked it has
    already raised the alert; a sweep counts it without alerting again every run.
    """

    wire_name = "login_required"

    def __init__(self, status: int, error: str, code: str, *, known: bool = False) -> None:
        super().__init__(status, error, code)
        self.known = known

    @classmethod
    def from_wire(
        cls, status: int, code: str, message: str, retry_after: int | None
    ) -> KakaoTokenError:
        return LoginRequired(status, "invalid_grant", code)


class KakaoUnavailable(KakaoTokenError):
    """Raised when Kakao cannot be reached or answers garbage.

    ``reason`` is one of ``timeout``, ``unreachable``, ``server_error``, ``bad_response``;
    ``retry_after`` (seconds) is set while this login's refreshes are paused (service/backoff.py).
    """

    wire_name = "kakao_unavailable"

    def __init__(self, reason: str, detail: str = "", retry_after: float | None = None) -> None:
        super().__init__(f"Kakao is unavailable ({reason}){': ' + detail if detail else ''}")
        self.reason = reason
        self.retry_after = retry_after

    @classmethod
    def from_wire(
        cls, status: int, code: str, message: str, retry_after: int | None
    ) -> KakaoTokenError:
        return KakaoUnavailable(code or "server_error")


class NoTokenStored(KakaoTokenError):
    """Raised when no token document is stored yet."""

    wire_name = "no_token_stored"


class DeadlineReached(KakaoTokenError):
    """Raised when the request's deadline leaves no time for the next step (see budget.py).

    ``retry_after`` is when trying again makes sense, in whole seconds.
    """

    wire_name = "deadline_reached"

    def __init__(self, message: str, retry_after: int = 5) -> None:
        super().__init__(message)
        self.retry_after = max(1, retry_after)

    @classmethod
    def from_wire(
        cls, status: int, code: str, message: str, retry_after: int | None
    ) -> KakaoTokenError:
        return DeadlineReached(message, retry_after or 5)


class EndpointUnreachable(KakaoTokenError):
    """Raised when the token endpoint cannot be reached or answers no usable HTTP (a network
    fault, a timeout, a proxy's or Google front end's 5xx page), after the client's retries."""


class StorageError(KakaoTokenError):
    """Raised when the token store fails after its own retries."""

    wire_name = "storage_unavailable"


class WriteConflict(StorageError):
    """Raised when a conditional write finds the stored version changed since it was read."""


# What the endpoint writes, read back; ConfigError's subclass IdentityRejected is the client's
# own (Cloud Run's refusal), so "not_configured" stays a plain ConfigError.
_SERVED: tuple[type[KakaoTokenError], ...] = (
    ConfigError,
    KakaoError,
    LoginRequired,
    KakaoUnavailable,
    NoTokenStored,
    DeadlineReached,
    StorageError,
)
_NAMED: dict[str, type[KakaoTokenError]] = {kind.wire_name: kind for kind in _SERVED}
_NAMED.update({BAD_REQUEST: ConfigError, METHOD_NOT_ALLOWED: ConfigError})


def error_class_for(wire_name: Any) -> type[KakaoTokenError]:
    """The class the client raises for a refusal's ``error``: the base for "internal" or for a
    name only a newer function knows."""
    return _NAMED.get(wire_name, KakaoTokenError) if isinstance(wire_name, str) else KakaoTokenError
