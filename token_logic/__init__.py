"""Kakao Login tokens: obtained by a Cloud Function, stored safely, refreshed forever.

For scripts::

    from token_logic import get_access_token
    token = get_access_token()          # valid for at least 5 more minutes
"""

from .api import get_access_token
from .config import Settings
from .errors import (
    AuthorizationDenied,
    ConfigError,
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
from .service import TokenService
from .tokens import TokenDocument
from .wiring import build_service, service_from_env

__all__ = [
    "AuthorizationDenied",
    "ConfigError",
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
    "build_service",
    "get_access_token",
    "service_from_env",
]
