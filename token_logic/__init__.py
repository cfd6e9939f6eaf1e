"""Kakao Login tokens: obtained by a Cloud Function, stored safely, refreshed forever.

For scripts::

    from token_logic import get_access_token, send_message
    token = get_access_token()          # valid for at least 5 more minutes
    send_message("빌드 끝 / build done")  # to the owner: from the sender (it rings), else a memo

Importing the package loads only the exception tree; every other public name is loaded on
first use: a script's start stays fast and ``pip install`` needs no server package, and a
deployed function (which imports the server's modules) never loads the script client.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import (
    AuthorizationDenied,
    ConfigError,
    EndpointUnreachable,
    IdentityRejected,
    IdentityUnverified,
    KakaoError,
    KakaoTokenError,
    KakaoUnavailable,
    LoginRequired,
    LoginStateError,
    NoTokenStored,
    StorageError,
    UserNotAllowed,
    WriteConflict,
)

if TYPE_CHECKING:  # pragma: no cover
    from .access_token import get_access_token
    from .client.owner_message import send_message
    from .config import Settings
    from .kakao.to_owner import MessageResult
    from .service.token_service import TokenService
    from .tokens import TokenDocument
    from .wiring import build_service, service_from_env

# The one place the version lives; pyproject.toml reads it from here.
__version__ = "0.4.0"

# The public names and the module each comes from, imported on first access.
_LAZY_NAMES = {
    "get_access_token": "access_token",
    "send_message": "client.owner_message",
    "MessageResult": "kakao.to_owner",
    "Settings": "config",
    "TokenService": "service.token_service",
    "TokenDocument": "tokens",
    "build_service": "wiring",
    "service_from_env": "wiring",
}


def __getattr__(name: str) -> Any:
    module = _LAZY_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'token_logic' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "AuthorizationDenied",
    "ConfigError",
    "EndpointUnreachable",
    "IdentityRejected",
    "IdentityUnverified",
    "KakaoError",
    "KakaoTokenError",
    "KakaoUnavailable",
    "LoginRequired",
    "LoginStateError",
    "MessageResult",
    "NoTokenStored",
    "Settings",
    "StorageError",
    "TokenDocument",
    "TokenService",
    "UserNotAllowed",
    "WriteConflict",
    "__version__",
    "build_service",
    "get_access_token",
    "send_message",
    "service_from_env",
]
