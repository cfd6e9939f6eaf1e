"""Builds the service from settings: the one factory for every default boundary."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Mapping
from functools import partial
from typing import TYPE_CHECKING

from .clock import Clock, SystemClock
from .config import Settings
from .errors import StorageError
from .kakao.api import KakaoClient
from .log import log_event
from .network import new_session
from .service.token_service import TokenService
from .storage.files import FileTokenStore
from .storage.gcs import GcsTokenStore, default_client
from .storage.gcs_reader import GcsReader, MetadataToken
from .storage.protocol import TokenStore

if TYPE_CHECKING:  # pragma: no cover
    import requests


def build_store(settings: Settings) -> TokenStore:
    """GCS when TOKEN_BUCKET is set, else files under TOKEN_DIR. On Cloud Run and with the
    emulator, GCS reads go without the storage client (storage/gcs_reader.py)."""
    if not settings.token_bucket:
        return FileTokenStore(settings.token_dir)
    reader = None
    if settings.storage_read_endpoint:
        token = MetadataToken(settings.metadata_host) if settings.metadata_host else None
        session = partial(new_session, settings.proxies, settings.ca_bundle)
        reader = GcsReader(settings.storage_read_endpoint, token, session)
    return GcsTokenStore(settings.token_bucket, default_client, reader)


def build_service(
    settings: Settings,
    *,
    session: requests.Session | None = None,
    store: TokenStore | None = None,
    clock: Clock | None = None,
) -> TokenService:
    """The service with real boundaries unless some are handed in."""
    clock = clock or SystemClock()
    kakao = KakaoClient(
        session or partial(new_session, settings.proxies, settings.ca_bundle),
        rest_api_key=settings.rest_api_key,
        client_secret=settings.client_secret,
        redirect_uri=settings.redirect_uri,
        auth_base_url=settings.auth_base_url,
        api_base_url=settings.api_base_url,
        timeout=(min(3.05, settings.kakao_timeout_seconds), settings.kakao_timeout_seconds),
        sleep=clock.sleep,
    )
    return TokenService(settings, kakao, store or build_store(settings), clock)


def service_from_env(
    environ: Mapping[str, str], *, need_redirect_uri: bool = False
) -> TokenService:
    """Settings from the environment, then the service (for scripts and the command line)."""
    return build_service(Settings.from_env(environ, need_redirect_uri=need_redirect_uri))


def warm_up_in_background(service: TokenService) -> None:
    """Import requests and what the store reads with in a thread, after the first answer.

    The first request (the login redirect) needs neither; every later one does.
    """

    def warm() -> None:
        try:
            service.warm_up()
            service.kakao.warm_up()
            if isinstance(service.store, GcsTokenStore):
                with contextlib.suppress(StorageError):
                    service.store.warm_up()
        except Exception:  # noqa: BLE001 - a thread's edge: a JSON line, never a raw trace
            # A part that cannot load fails its own requests too; this line says so early.
            log_event(logging.ERROR, "warm-up failed", exc_info=True)
            return
        log_event(logging.INFO, "HTTP and storage clients warmed up")

    threading.Thread(target=warm, name="warm-up", daemon=True).start()
