"""A fake Google OAuth token endpoint for service accounts, on 127.0.0.1.

google-auth signs a JWT assertion with the service account's private key and POSTs it to the
`token_uri` of the service-account file. This server holds a throwaway RSA key, writes
service-account files naming itself as `token_uri`, checks each assertion's RS256 signature and
claims, and issues opaque access tokens whose expiry runs on an injected clock — so
`FakeVertex` can refuse tokens that expired, and tests move time without sleeping.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from failover.clock import Clock

from .server import Behaviour, Delay, FakeServer, Received, Reply

__all__ = ["FakeTokenServer", "new_private_key", "private_key_pem"]

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"  # what google-auth puts in `aud`
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
EMAIL = "failover-test@fake-project.iam.gserviceaccount.com"


def new_private_key() -> rsa.RSAPrivateKey:
    """A throwaway 2048-bit RSA key."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@cache
def _server_key() -> rsa.RSAPrivateKey:
    # generating a key takes ~0.1s: every server of a test run shares one
    return new_private_key()


def private_key_pem(key: rsa.RSAPrivateKey) -> str:
    """The key as the PKCS#8 PEM a service-account file holds."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


class FakeTokenServer(FakeServer):
    """POST /token: JWT-bearer grants checked against its own key; tokens expire on `clock`."""

    def __init__(self, *, clock: Clock, expires_in: int = 3600) -> None:
        super().__init__()
        self.clock = clock
        self.expires_in = expires_in
        self.key = _server_key()
        self.issued: dict[str, float] = {}  # access token -> expiry on `clock`
        self.gate: asyncio.Event | None = None  # when set, answers wait for it (a slow refresh)

    @property
    def token_uri(self) -> str:
        return f"{self.url}/token"

    def service_account(self, key: rsa.RSAPrivateKey | None = None) -> dict[str, Any]:
        """A service-account key file's content, signed with this server's key unless `key`."""
        return {
            "type": "service_account",
            "project_id": "fake-project",
            "private_key_id": "fake-key-1",
            "private_key": private_key_pem(key or self.key),
            "client_email": EMAIL,
            "client_id": "100000000000000000001",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": self.token_uri,
        }

    def write_service_account(self, path: Path, key: rsa.RSAPrivateKey | None = None) -> Path:
        path.write_text(json.dumps(self.service_account(key)), encoding="utf-8")
        return path

    def valid(self, token: str) -> bool:
        """`token` was issued here and has not expired."""
        expiry = self.issued.get(token)
        return expiry is not None and self.clock.now() < expiry

    def expire_all(self) -> None:
        """Every token issued so far expires now (as a revoked or early-expired token would)."""
        now = self.clock.now()
        self.issued = dict.fromkeys(self.issued, now)

    def answer(self, received: Received) -> Behaviour:
        reply = self._grant(received)
        return Delay(self.gate, reply) if self.gate is not None else reply

    def _grant(self, received: Received) -> Reply:
        form = parse_qs(received.body.decode())
        if received.path != "/token" or received.method != "POST":
            return Reply({"error": "not_found"}, status=404)
        if form.get("grant_type") != [JWT_GRANT] or "assertion" not in form:
            return self.error("unsupported_grant_type", "Invalid grant_type: ")
        claims = self._verified_claims(form["assertion"][0])
        if claims is None:
            return self.error("invalid_grant", "Invalid JWT Signature.")
        if (problem := _claims_problem(claims)) is not None:
            return self.error("invalid_grant", problem)
        token = f"ya29.fake-{secrets.token_urlsafe(24)}"
        self.issued[token] = self.clock.now() + self.expires_in
        body = {"access_token": token, "expires_in": self.expires_in, "token_type": "Bearer"}
        return Reply(body)

    def _verified_claims(self, assertion: str) -> dict[str, Any] | None:
        try:
            head, payload, signature = assertion.split(".")
            self.key.public_key().verify(
                _unb64(signature),
                f"{head}.{payload}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
            if json.loads(_unb64(head)).get("alg") != "RS256":
                return None
            claims: dict[str, Any] = json.loads(_unb64(payload))
        except (ValueError, InvalidSignature):
            return None
        return claims

    @staticmethod
    def error(error: str, description: str) -> Reply:
        """Google's token endpoint error: `{"error", "error_description"}`, status 400."""
        return Reply({"error": error, "error_description": description}, status=400)


def _claims_problem(claims: dict[str, Any]) -> str | None:
    if claims.get("iss") != EMAIL:
        return "Invalid issuer"
    if claims.get("aud") != GOOGLE_TOKEN_AUDIENCE:
        return "Invalid JWT: audience"
    if CLOUD_PLATFORM not in str(claims.get("scope", "")).split():
        return "Invalid JWT: scope"
    iat, exp = claims.get("iat"), claims.get("exp")
    if not isinstance(iat, int) or not isinstance(exp, int) or not 0 < exp - iat <= 3600:
        return "Invalid JWT: Token must be a short-lived token (60 minutes)"
    return None


def _unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
