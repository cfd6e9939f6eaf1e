"""Settings, read once from the environment at the edge (main.py, the command line)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from .budget import (
    ANSWER_RESERVE_SECONDS,
    DEFAULT_FUNCTION_TIMEOUT_SECONDS,
    MAX_FUNCTION_TIMEOUT_SECONDS,
    MIN_KAKAO_ATTEMPT_SECONDS,
    STORE_RESERVE_SECONDS,
)
from .checks import LOOPBACK_HOSTS, is_decimal, is_http_url
from .errors import ConfigError
from .kakao.api import (
    DEFAULT_API_BASE_URL,
    DEFAULT_AUTH_BASE_URL,
    DEFAULT_MEMO_LINK,
    memo_link_from,
)
from .logins import SENDER_SCOPES, sender_document_name
from .network import ca_bundle_from, proxies_for

# The callback's address after a login (the success page, web/callback.py).
DONE_QUERY = "login=done"
# Where TOKEN_OBJECT names one document per Kakao user.
USER_ID_PLACEHOLDER = "{user_id}"
DEFAULT_STORAGE_ENDPOINT = "https://storage.googleapis.com"
DEFAULT_METADATA_HOST = "metadata.google.internal"
DEFAULT_TOKEN_OBJECT = "kakao_token.json"
DEFAULT_REFRESH_MARGIN_SECONDS = 3600
DEFAULT_KAKAO_TIMEOUT_SECONDS = 10.0
# Parallel refreshes in one sweep: enough to hide Kakao's and storage's latency, few enough for
# one instance's CPU and the storage client's connection pool.
DEFAULT_SWEEP_WORKERS = 16
MAX_SWEEP_WORKERS = 32

# Below this a refresh could not fit one Kakao attempt and the time kept to store its answer.
MIN_FUNCTION_TIMEOUT_SECONDS = int(
    ANSWER_RESERVE_SECONDS + STORE_RESERVE_SECONDS + MIN_KAKAO_ATTEMPT_SECONDS + 1
)
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Settings:
    """Everything the package needs to know; secrets are kept out of the repr."""

    rest_api_key: str
    redirect_uri: str = ""
    client_secret: str = field(default="", repr=False)
    scope: str = ""
    pkce: bool = True
    auth_base_url: str = DEFAULT_AUTH_BASE_URL
    api_base_url: str = DEFAULT_API_BASE_URL
    token_bucket: str = ""
    token_object: str = DEFAULT_TOKEN_OBJECT
    token_dir: str = "."
    refresh_margin_seconds: int = DEFAULT_REFRESH_MARGIN_SECONDS
    allowed_user_ids: frozenset[int] = frozenset()
    kakao_timeout_seconds: float = DEFAULT_KAKAO_TIMEOUT_SECONDS
    proxies: Mapping[str, str] = field(default_factory=dict, repr=False)  # may hold a password
    ca_bundle: str = ""
    function_timeout_seconds: int = DEFAULT_FUNCTION_TIMEOUT_SECONDS
    sweep_workers: int = DEFAULT_SWEEP_WORKERS
    demo: bool = False
    # The unlink webhook (web/unlink.py): Kakao proves itself with the app's primary admin key.
    admin_key: str = field(default="", repr=False)
    app_id: str = ""
    # Where a memo's link goes: somewhere neutral, never the login URL (a tap would start one);
    # by default the callback's done page (done_address).
    memo_link: str = DEFAULT_MEMO_LINK
    # Reads without google-cloud-storage (storage/gcs_reader.py): Cloud Storage's endpoint on
    # Cloud Run (K_SERVICE set), the emulator's with STORAGE_EMULATOR_HOST, "" elsewhere (the client
    # reads, with the ambient credentials). The metadata server gives the reader its access
    # token on Cloud Run; "" with the emulator, which needs none.
    storage_read_endpoint: str = ""
    metadata_host: str = ""
    # KAKAO_SENDER=1: a second Kakao account may log in beside the owner and send to them
    # (logins.py); both logins then ask for the friends and talk_message consents.
    sender: bool = False

    @property
    def sender_object(self) -> str:
        """The sender's document, beside TOKEN_OBJECT (logins.py); "" without a sender."""
        return sender_document_name(self.token_object) if self.sender else ""

    @property
    def per_user_claims(self) -> bool:
        """One document per user and no allowlist: each Kakao account is admitted once, by a
        claim link of its own (service/claim.py), and logs in again freely after that."""
        return USER_ID_PLACEHOLDER in self.token_object and not self.allowed_user_ids

    @property
    def per_user_documents(self) -> bool:
        """One document per Kakao user (``{user_id}`` in TOKEN_OBJECT)."""
        return USER_ID_PLACEHOLDER in self.token_object

    @property
    def default_user_id(self) -> int | None:
        """Whose login a request naming no user gets with one document per user: the one
        allowed user, when exactly one is; else None (the request must name one). Never
        "whichever single document is stored": that may be a stranger's."""
        if USER_ID_PLACEHOLDER in self.token_object and len(self.allowed_user_ids) == 1:
            return next(iter(self.allowed_user_ids))
        return None

    @property
    def single_owner(self) -> bool:
        """One document and no allowlist: the deployment has one owner, who comes (first, or
        taking over) through a claim link (service/claim.py)."""
        return USER_ID_PLACEHOLDER not in self.token_object and not self.allowed_user_ids

    @property
    def secure_cookies(self) -> bool:
        """``Secure`` cookies for https, and for loopback hosts, which browsers treat as secure."""
        parts = urlsplit(self.redirect_uri)
        return parts.scheme == "https" or parts.hostname in LOOPBACK_HOSTS

    @classmethod
    def from_env(cls, environ: Mapping[str, str], *, need_redirect_uri: bool = True) -> Settings:
        """Read and validate every setting; raise one ConfigError naming all problems."""
        env = {key: value.strip() for key, value in environ.items()}
        required = ["KAKAO_REST_API_KEY"] + (["KAKAO_REDIRECT_URI"] if need_redirect_uri else [])
        missing = tuple(name for name in required if not env.get(name))
        problems = [f"missing {name}" for name in missing]

        redirect_uri = env.get("KAKAO_REDIRECT_URI", "")
        if redirect_uri and not is_http_url(redirect_uri):
            problems.append("KAKAO_REDIRECT_URI must be an absolute http(s) URL")
        pkce = _parse_bool(env, "KAKAO_PKCE", True, problems)
        sender = _parse_bool(env, "KAKAO_SENDER", False, problems)
        demo = _parse_bool(env, "KAKAO_DEMO", False, problems)
        if demo and env.get("K_SERVICE"):
            # Demo mode is for `make run` on a laptop (no claim needed): never a deployed function.
            problems.append("KAKAO_DEMO must not be set on Cloud Run (demo mode is local only)")
        margin = _parse_int(env, "REFRESH_MARGIN_SECONDS", DEFAULT_REFRESH_MARGIN_SECONDS, problems)
        timeout = _parse_int(env, "KAKAO_TIMEOUT_SECONDS", 10, problems)
        if not 1 <= timeout <= DEFAULT_KAKAO_TIMEOUT_SECONDS:
            problems.append("KAKAO_TIMEOUT_SECONDS must be between 1 and 10")
        allowed = _parse_user_ids(env.get("ALLOWED_KAKAO_USER_IDS", ""), problems)
        app_id = env.get("KAKAO_APP_ID", "")
        if app_id and not is_decimal(app_id):
            problems.append("KAKAO_APP_ID must be the app's numeric ID (앱 ID)")
        token_object = env.get("TOKEN_OBJECT") or DEFAULT_TOKEN_OBJECT
        if problem := _token_object_problem(token_object):
            problems.append(problem)
        if sender and USER_ID_PLACEHOLDER in token_object:
            # The sender sends to the one owner: with a login per user there is no one owner.
            problems.append(
                "KAKAO_SENDER=1 needs a single-document TOKEN_OBJECT (no {user_id}): the sender "
                "sends to the deployment's one owner"
            )
        bucket = env.get("TOKEN_BUCKET", "")
        if env.get("K_SERVICE") and not bucket:
            # Cloud Run's disk is per instance and vanishes: a token written there is lost.
            problems.append("TOKEN_BUCKET must be set on Cloud Run (local disk is not kept)")

        function_timeout = _parse_int(
            env, "FUNCTION_TIMEOUT_SECONDS", DEFAULT_FUNCTION_TIMEOUT_SECONDS, problems
        )
        if not MIN_FUNCTION_TIMEOUT_SECONDS <= function_timeout <= MAX_FUNCTION_TIMEOUT_SECONDS:
            problems.append(
                f"FUNCTION_TIMEOUT_SECONDS must be between {MIN_FUNCTION_TIMEOUT_SECONDS} and "
                f"{MAX_FUNCTION_TIMEOUT_SECONDS} "
                "(the function's timeout as deployed: gcloud functions deploy --timeout)"
            )
        sweep_workers = _parse_int(env, "SWEEP_WORKERS", DEFAULT_SWEEP_WORKERS, problems)
        if not 1 <= sweep_workers <= MAX_SWEEP_WORKERS:
            problems.append(f"SWEEP_WORKERS must be between 1 and {MAX_SWEEP_WORKERS}")
        memo_link = memo_link_from(env, problems)
        if not env.get("KAKAO_MEMO_LINK") and redirect_uri:
            memo_link = done_address(redirect_uri)
        auth_base_url = (env.get("KAKAO_AUTH_BASE_URL") or DEFAULT_AUTH_BASE_URL).rstrip("/")
        api_base_url = (env.get("KAKAO_API_BASE_URL") or DEFAULT_API_BASE_URL).rstrip("/")
        storage_read_endpoint, metadata_host = storage_reads_from(env)
        proxied = (auth_base_url, api_base_url) + (
            (storage_read_endpoint,) if storage_read_endpoint else ()
        )
        if problems:
            raise ConfigError("Configuration error: " + "; ".join(problems), missing)
        return cls(
            rest_api_key=env["KAKAO_REST_API_KEY"],
            redirect_uri=redirect_uri,
            client_secret=env.get("KAKAO_CLIENT_SECRET", ""),
            scope=_normalize_scope(
                env.get("KAKAO_SCOPE", "") + ("," + ",".join(SENDER_SCOPES) if sender else "")
            ),
            pkce=pkce,
            auth_base_url=auth_base_url,
            api_base_url=api_base_url,
            token_bucket=bucket,
            token_object=token_object,
            token_dir=env.get("TOKEN_DIR") or ".",
            refresh_margin_seconds=margin,
            allowed_user_ids=allowed,
            kakao_timeout_seconds=float(timeout),
            proxies=proxies_for(env, proxied),
            ca_bundle=ca_bundle_from(env),
            sweep_workers=sweep_workers,
            demo=demo,
            admin_key=env.get("KAKAO_ADMIN_KEY", ""),
            app_id=app_id,
            memo_link=memo_link,
            function_timeout_seconds=function_timeout,
            storage_read_endpoint=storage_read_endpoint,
            metadata_host=metadata_host,
            sender=sender,
        )


def done_address(redirect_uri: str) -> str:
    """The callback's done page: a memo's default link. It is on the deployment's own domain,
    which the Kakao console's [앱] > [제품 링크 관리] > [웹 도메인] can register (a link to an
    unregistered domain does not open), and opening it starts no login: without this browser's
    finished login it shows only a login button."""
    return redirect_uri + ("&" if "?" in redirect_uri else "?") + DONE_QUERY


def storage_reads_from(env: Mapping[str, str]) -> tuple[str, str]:
    """(endpoint, metadata host) of reads without the storage client; ("", "") for the client.

    The emulator (STORAGE_EMULATOR_HOST, as google-cloud-storage reads it) needs no token. On
    Cloud Run (K_SERVICE) the metadata server gives one: GCE_METADATA_HOST, as google-auth reads
    it, or the default. Elsewhere (a script with a person's credentials) the client reads.
    """
    emulator = env.get("STORAGE_EMULATOR_HOST", "")
    if emulator:
        return (emulator if "://" in emulator else f"http://{emulator}").rstrip("/"), ""
    if env.get("K_SERVICE"):
        return DEFAULT_STORAGE_ENDPOINT, env.get("GCE_METADATA_HOST") or DEFAULT_METADATA_HOST
    return "", ""


def _token_object_problem(template: str) -> str:
    """Why a sweep could never find the documents TOKEN_OBJECT names ("" if it can).

    A sweep lists names and matches them to the template. Names with an empty, ``.`` or ``..``
    part come back from a file listing in another spelling; hidden ones are where the file store
    keeps its lock and temporary files, and it lists none; a second ``{user_id}`` is not matched.
    """
    forms = "e.g. kakao_token.json, tokens/{user_id}.json or users/{user_id}/token.json"
    if "{" in template.replace(USER_ID_PLACEHOLDER, ""):
        return f"TOKEN_OBJECT may contain only the placeholder {{user_id}} ({forms})"
    if template.count(USER_ID_PLACEHOLDER) > 1:
        return f"TOKEN_OBJECT may contain {{user_id}} only once ({forms})"
    if any(not part or part.startswith(".") for part in template.split("/")):
        return (
            "TOKEN_OBJECT must be a relative name of plain parts: no leading or doubled /, "
            f"no part that is empty or starts with a dot ({forms})"
        )
    return ""


def _normalize_scope(raw: str) -> str:
    items = [item.strip() for item in raw.replace(" ", ",").split(",")]
    return ",".join(dict.fromkeys(item for item in items if item))


def _parse_bool(env: Mapping[str, str], name: str, default: bool, problems: list[str]) -> bool:
    lowered = env.get(name, "").lower()
    if not lowered:
        return default
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    problems.append(f"{name} must be 0 or 1")
    return default


def _parse_int(env: Mapping[str, str], name: str, default: int, problems: list[str]) -> int:
    raw = env.get(name, "")
    if not raw:
        return default
    if not is_decimal(raw):
        problems.append(f"{name} must be a whole number of seconds")
        return default
    return int(raw)


def _parse_user_ids(raw: str, problems: list[str]) -> frozenset[int]:
    items = [item.strip() for item in raw.split(",") if item.strip()]
    if not all(is_decimal(item) for item in items):
        problems.append("ALLOWED_KAKAO_USER_IDS must be comma-separated Kakao user ids (numbers)")
        return frozenset()
    return frozenset(int(item) for item in items)
