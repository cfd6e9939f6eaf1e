"""Google's side of the token endpoint, faked: a service-account key, the OAuth token endpoint
that trades a signed JWT for an ID token, and Cloud Run's invoker check in front of a function.

The key is a real RSA key and google-auth really signs with it; the fake checks the signature
with the public key, so the whole google-auth code path runs, only against 127.0.0.1.
"""

from __future__ import annotations

import base64
import json
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from dev.loopback import LoopbackServer, send

SERVICE_ACCOUNT = "ci-reader@test-project.iam.gserviceaccount.com"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def jwt_claims(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = json.loads(unb64(token.split(".")[1]))
    return claims


def id_token_for(audience: str, email: str, lifetime: int = 3600) -> str:
    """A JWT-shaped Google ID token (unsigned: only its claims matter to the fakes)."""
    now = int(time.time())
    header = {"alg": "RS256", "typ": "JWT", "kid": "fake"}
    claims = {
        "iss": "https://accounts.google.com",
        "aud": audience,
        "email": email,
        "iat": now,
        "exp": now + lifetime,
        "sub": "1234",
    }
    return ".".join(
        [b64(json.dumps(header).encode()), b64(json.dumps(claims).encode()), b64(b"fake-sig")]
    )


class FakeGoogleOAuth:
    """POST /token: a JWT-bearer grant signed by the key's private key -> {"id_token": ...}.

    ``grants`` lists the target audience of every grant; ``issued`` every ID token handed out.
    """

    def __init__(self) -> None:
        self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.grants: list[str] = []
        self.issued: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                status, body = fake.grant(form)
                payload = json.dumps(body).encode()
                send(self, status, payload, {"Content-Type": "application/json"})

        self._server = LoopbackServer(Handler).start()
        self.url = self._server.url

    def stop(self) -> None:
        self._server.stop()

    def grant(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        assertion = form.get("assertion", "")
        if form.get("grant_type") != JWT_BEARER or assertion.count(".") != 2:
            return 400, {"error": "invalid_grant"}
        signed, signature = assertion.rsplit(".", 1)
        try:
            self.private_key.public_key().verify(
                unb64(signature), signed.encode(), padding.PKCS1v15(), hashes.SHA256()
            )
        except Exception:
            return 400, {"error": "invalid_grant", "error_description": "bad signature"}
        claims = jwt_claims(assertion)
        audience = str(claims.get("target_audience", ""))
        self.grants.append(audience)
        token = id_token_for(audience, str(claims.get("iss")))
        self.issued.append(token)
        return 200, {"id_token": token}

    def key_file(self, directory: Path) -> Path:
        """A service-account key file whose token_uri is this fake."""
        pem = self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        key = {
            "type": "service_account",
            "project_id": "test-project",
            "private_key_id": "fake-key-1",
            "private_key": pem,
            "client_email": SERVICE_ACCOUNT,
            "client_id": "100000000000000000001",
            "token_uri": f"{self.url}/token",
        }
        path = directory / "service-account.json"
        path.write_text(json.dumps(key))
        return path


class InvokerCheck:
    """What Cloud Run does before a private function runs: a Google ID token whose audience is
    the service URL and whose principal may invoke it, else 401/403 with an HTML page.

    ``bearers`` records every Authorization header's token; ``forwarded`` counts requests that
    reached the function.
    """

    def __init__(self, upstream: str, allowed: set[str]) -> None:
        self.upstream = upstream
        self.allowed = allowed
        self.bearers: list[str] = []
        self.forwarded = 0
        check = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                status, headers, body = check.handle(self.path, self.headers.get("Authorization"))
                send(self, status, body, headers)

        self._server = LoopbackServer(Handler).start()
        self.url = self._server.url

    def stop(self) -> None:
        self._server.stop()

    def handle(self, path: str, authorization: str | None) -> tuple[int, dict[str, str], bytes]:
        html = {"Content-Type": "text/html; charset=UTF-8"}
        if not authorization or not authorization.startswith("Bearer "):
            return 401, html, b"<html><body>401 Unauthorized</body></html>"
        token = authorization.removeprefix("Bearer ")
        self.bearers.append(token)
        try:
            claims = jwt_claims(token)
        except ValueError:
            return 401, html, b"<html><body>401 Unauthorized</body></html>"
        if claims.get("aud") != self.url or claims.get("exp", 0) < time.time():
            return 401, html, b"<html><body>401 Unauthorized</body></html>"
        if claims.get("email") not in self.allowed:
            return 403, html, b"<html><body>403 Forbidden</body></html>"
        self.forwarded += 1
        answer = requests.get(self.upstream + path, timeout=60)
        keep = {k: v for k, v in answer.headers.items() if k.lower() in ("content-type",)}
        return answer.status_code, keep, answer.content


PROVIDER = (
    "projects/123456789012/locations/global/workloadIdentityPools/kakao-token-github/"
    "providers/github"
)
READER = "kakao-token-github@test-project.iam.gserviceaccount.com"


class FakeFederation:
    """GitHub's OIDC token service and Google's STS and IAM Credentials, as workload identity
    federation uses them (token_logic/client/github_oidc.py); they answer with the real
    services' error shapes.

    ``repositories`` are those the provider's attribute condition admits; ``impersonators``
    those whose principal set holds roles/iam.workloadIdentityUser on READER. ``issued`` lists
    every Google ID token handed out.
    """

    def __init__(self, repository: str = "me/bot") -> None:
        self.repository = repository  # the job's own repository, in GitHub's token
        self.repositories = {repository}
        self.impersonators = {repository}
        self.request_token = "github-request-token-xyz"
        self.issued: list[str] = []
        self.calls: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self._answer(fake.github(self.path, self.headers.get("Authorization", "")))

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                authorization = self.headers.get("Authorization", "")
                if self.path == "/sts/v1/token":
                    self._answer(fake.sts(body))
                else:
                    self._answer(fake.generate_id_token(self.path, authorization, body))

            def _answer(self, answer: tuple[int, dict[str, Any]]) -> None:
                status, body = answer
                send(self, status, json.dumps(body).encode(), {"Content-Type": "application/json"})

        self._server = LoopbackServer(Handler).start()
        self.url = self._server.url

    def stop(self) -> None:
        self._server.stop()

    def job_env(self) -> dict[str, str]:
        """What a GitHub job with `permissions: id-token: write` has, plus where Google is."""
        return {
            "ACTIONS_ID_TOKEN_REQUEST_URL": f"{self.url}/github-oidc?api-version=2.0",
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": self.request_token,
            "KAKAO_TOKEN_STS_URL": f"{self.url}/sts/v1/token",
            "KAKAO_TOKEN_IAM_CREDENTIALS_URL": f"{self.url}/iam/v1",
        }

    def github(self, path: str, authorization: str) -> tuple[int, dict[str, Any]]:
        self.calls.append("github")
        if authorization != f"Bearer {self.request_token}":
            return 401, {"message": "Bad credentials"}
        query = {k: v[0] for k, v in parse_qs(path.partition("?")[2]).items()}
        claims = {"aud": query.get("audience", ""), "repository": self.repository}
        return 200, {"value": _jwt(claims), "count": 1}

    def sts(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.calls.append("sts")
        claims = jwt_claims(str(body.get("subjectToken", "")))
        if (
            body.get("audience") != f"//iam.googleapis.com/{PROVIDER}"
            or claims.get("aud") != f"https://iam.googleapis.com/{PROVIDER}"
        ):
            return 400, {
                "error": "invalid_grant",
                "error_description": "The audience in ID Token does not match the expected "
                "audience.",
            }
        if claims.get("repository") not in self.repositories:
            return 400, {
                "error": "unauthorized_client",
                "error_description": "The given credential is rejected by the attribute condition.",
            }
        return 200, {"access_token": f"federated-for-{claims['repository']}"}

    def generate_id_token(
        self, path: str, authorization: str, body: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        self.calls.append("iam")
        expected = f"/iam/v1/projects/-/serviceAccounts/{READER}:generateIdToken"
        repository = authorization.removeprefix("Bearer federated-for-")
        if path != expected or repository not in self.impersonators:
            return 403, {
                "error": {
                    "code": 403,
                    "message": "Permission 'iam.serviceAccounts.getOpenIdToken' denied on "
                    "resource (or it may not exist).",
                    "status": "PERMISSION_DENIED",
                }
            }
        token = id_token_for(str(body.get("audience")), READER)
        self.issued.append(token)
        return 200, {"token": token}


def _jwt(claims: dict[str, Any]) -> str:
    header = b64(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    return ".".join([header, b64(json.dumps(claims).encode()), b64(b"github-sig")])
