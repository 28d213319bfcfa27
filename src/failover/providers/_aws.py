"""AWS credentials and Signature V4 through botocore, for adapters of AWS services (Bedrock).

Credentials come from botocore's own chain — environment variables, the shared
`~/.aws/credentials` / `~/.aws/config` files (a named profile), SSO, container and instance
roles, IRSA web identity — and botocore refreshes temporary ones. Requests are signed by
`botocore.auth.SigV4Auth` over a `botocore.awsrequest.AWSRequest`; only the resulting headers
are copied onto our own aiohttp request. Nothing here is hand-rolled, and no secret reaches a
message, a repr or a log.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials, ReadOnlyCredentials, RefreshableCredentials
from botocore.exceptions import BotoCoreError
from botocore.session import Session

from ..errors import AuthFailed, ConfigError

__all__ = ["NO_CREDENTIALS", "AWSSigner", "resolve_region", "secrets_of"]

NO_CREDENTIALS = (
    "no AWS credentials found (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
    "AWS_PROFILE or the provider's profile option, or run with an instance, container "
    "or IRSA role)"
)
# botocore.auth logs the canonical request (with the session token) and the signature at DEBUG
_SECRET_LOGS = ("CanonicalRequest", "StringToSign", "Signature")


class _DropSecrets(logging.Filter):
    """Drops botocore.auth's debug records that carry a session token or a signature."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and record.msg.startswith(_SECRET_LOGS))


_auth_log = logging.getLogger("botocore.auth")
if not any(isinstance(f, _DropSecrets) for f in _auth_log.filters):
    _auth_log.addFilter(_DropSecrets())


def resolve_region(
    region: str | None, *, profile: str | None, session: Session | None, where: str = "region"
) -> str:
    """The region to call: given, else AWS_REGION, else botocore's (AWS_DEFAULT_REGION, profile).

    `where` names the setting in errors (e.g. "providers.bedrock.options.region").
    """
    if region:
        return region
    if found := os.environ.get("AWS_REGION"):
        return found
    try:
        found = (session or Session(profile=profile)).get_config_variable("region")
    except BotoCoreError as exc:
        raise ConfigError(f"{where}: could not read the AWS config: {exc}") from exc
    if not found:
        raise ConfigError(
            f"{where}: no AWS region (set options.region, AWS_REGION or AWS_DEFAULT_REGION)"
        )
    return str(found)


def secrets_of(creds: ReadOnlyCredentials) -> list[str]:
    """The parts of a credential set that must never be shown (the key id included)."""
    return [s for s in (creds.access_key, creds.secret_key, creds.token) if s]


class AWSSigner:
    """Signs requests to one AWS service in one region with the credentials botocore finds."""

    def __init__(
        self,
        *,
        service: str,
        region: str,
        profile: str | None = None,
        session: Session | None = None,
    ) -> None:
        self.service = service
        self.region = region
        self.profile = profile
        self._session = session
        self._credentials: Credentials | None = None

    async def credentials(self, *, deployment: str | None = None) -> ReadOnlyCredentials:
        """The current credentials; resolving or refreshing them runs off the event loop.

        Raises `AuthFailed` (for `deployment`) when none are found or a refresh fails.
        """
        try:
            creds = self._credentials
            if creds is None:
                # the chain may read files or ask the instance metadata service: not on the loop
                creds = self._credentials = await asyncio.to_thread(self._resolve)
            if isinstance(creds, RefreshableCredentials) and creds.refresh_needed():
                return await asyncio.to_thread(self._freeze, creds)
            return self._freeze(creds)
        except AuthFailed as exc:
            exc.deployment = deployment
            raise

    def sign(
        self,
        creds: ReadOnlyCredentials,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        body: bytes | None = None,
    ) -> dict[str, str]:
        """`headers` plus x-amz-date, x-amz-security-token and authorization for this request."""
        request = AWSRequest(method=method, url=url, headers=dict(headers), data=body or b"")
        SigV4Auth(creds, self.service, self.region).add_auth(request)
        return {name.lower(): value for name, value in request.headers.items()}

    def _resolve(self) -> Credentials:
        try:
            session = self._session or Session(profile=self.profile)
            found = session.get_credentials()
        except (BotoCoreError, OSError) as exc:
            raise AuthFailed(f"AWS credentials could not be loaded: {exc}") from exc
        if found is None:
            raise AuthFailed(NO_CREDENTIALS)
        return found

    @staticmethod
    def _freeze(creds: Credentials) -> ReadOnlyCredentials:
        try:
            frozen = creds.get_frozen_credentials()
        except (
            BotoCoreError,
            OSError,
        ) as exc:  # a refresh failed: STS, SSO or the metadata service
            raise AuthFailed(f"AWS credentials could not be refreshed: {exc}") from exc
        if not (frozen.access_key and frozen.secret_key):
            raise AuthFailed(NO_CREDENTIALS)
        return frozen

    def __repr__(self) -> str:
        profile = f" profile={self.profile}" if self.profile else ""
        return f"<AWSSigner {self.service} {self.region}{profile}>"
