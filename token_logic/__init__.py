"""Kakao Login tokens: obtained by a Cloud Function, stored safely, refreshed forever.

For scripts::

    from token_logic import get_access_token
    token = get_access_token()          # valid for at least 5 more minutes

Importing the package loads only what a script needs (the client, the exception tree); the
server's names below are loaded on first use, so a script's start stays fast and ``pip install``
needs no server package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .api import get_access_token
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
    from .config import Settings
    from .service import TokenService
    from .tokens import TokenDocument
    from .wiring import build_service, service_from_env

# The one place the version lives; pyproject.toml reads it from here.
__version__ = "0.2.0"

# The server's public names and the module each comes from, imported on first access.
_SERVER_NAMES = {
    "Settings": "config",
    "TokenService": "service",
    "TokenDocument": "tokens",
    "build_service": "wiring",
    "service_from_env": "wiring",
}


def __getattr__(name: str) -> Any:
    module = _SERVER_NAMES.get(name)
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
    "service_from_env",
]
