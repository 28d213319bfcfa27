"""`GoogleAuth`: OAuth access tokens for Google Cloud APIs (Vertex AI) from a credentials file or
application default credentials, through google-auth.

google-auth's loading and refreshing are blocking (file reads, the metadata-server check, the
token request over `requests`), so they run in a worker thread and the event loop never waits
on them. A token is refreshed when fewer than `refresh_margin` seconds of it remain; callers
arriving during a refresh share it. A failed fetch is remembered for `retry_after_failure`
seconds, so a machine without credentials answers at once instead of searching on every call.
Tokens appear in no message, log or repr.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import google.auth
import google.auth.credentials
import google.auth.exceptions
import google.auth.transport.requests
import google.oauth2.service_account

from ..clock import Clock, SystemClock
from ..errors import AuthFailed

__all__ = ["CLOUD_PLATFORM", "NO_CREDENTIALS", "GoogleAuth"]

CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
NO_CREDENTIALS = (
    "no Google credentials found: set GOOGLE_APPLICATION_CREDENTIALS or credentials_file, "
    "or run where application default credentials exist"
)
REFRESH_MARGIN = 300.0  # refresh when fewer than 5 minutes of the token remain
RETRY_AFTER_FAILURE = 30.0
TOKEN_TIMEOUT = 10.0  # one HTTP call of google-auth (token endpoint, metadata server)
_MAX_REASON = 300

_Headers = dict[str, str]
_Fetched = tuple[_Headers, float | None]  # the headers and the token's lifetime in seconds


class _Request(google.auth.transport.requests.Request):
    """google-auth's HTTP over `requests`, with every call bounded by `timeout` seconds.

    Its default is 120s per call: a hung token endpoint would hold the shared refresh that long.
    """

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._timeout = timeout

    def __call__(
        self,
        url: Any,
        method: Any = "GET",
        body: Any = None,
        headers: Any = None,
        timeout: Any = None,
        **kwargs: Any,
    ) -> Any:
        bounded = self._timeout if timeout is None else min(float(timeout), self._timeout)
        return super().__call__(url, method, body, headers, timeout=bounded, **kwargs)  # type: ignore[no-untyped-call]


class GoogleAuth:
    """Bearer tokens for Google Cloud, fetched on first use and refreshed before they expire."""

    def __init__(
        self,
        *,
        credentials_file: str | None = None,
        scopes: Sequence[str] = (CLOUD_PLATFORM,),
        clock: Clock | None = None,
        refresh_margin: float = REFRESH_MARGIN,
        retry_after_failure: float = RETRY_AFTER_FAILURE,
        token_timeout: float = TOKEN_TIMEOUT,
    ) -> None:
        self.credentials_file = credentials_file
        self._scopes = list(scopes)
        self._clock = clock or SystemClock()
        self._margin = refresh_margin
        self._retry_after_failure = retry_after_failure
        self._http = _Request(token_timeout)
        self._credentials: google.auth.credentials.Credentials | None = None
        self._headers: _Headers | None = None
        self._refresh_at = 0.0
        self._failure: str | None = None
        self._failed_until = 0.0
        self._pending: asyncio.Task[_Headers] | None = None

    @property
    def source(self) -> str:
        """Where the credentials come from, for messages: a file path, never a key."""
        if self.credentials_file:
            return f"credentials file {self.credentials_file}"
        env = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
        via = f" (GOOGLE_APPLICATION_CREDENTIALS={env})" if env else ""
        return f"application default credentials{via}"

    async def headers(self, *, deployment: str | None = None) -> Mapping[str, str]:
        """The authorization headers; a token is fetched first when none is fresh.

        Raises `AuthFailed` (naming the credential source) when no token can be had.
        """
        now = self._clock.now()
        if self._headers is not None and now < self._refresh_at:
            return self._headers
        if self._failure is not None and now < self._failed_until:
            raise AuthFailed(self._failure, deployment=deployment)
        if self._pending is None or self._pending.get_loop() is not asyncio.get_running_loop():
            self._pending = asyncio.create_task(self._refresh())
            self._pending.add_done_callback(_observe)
        try:
            # shielded: a caller that gives up must not cancel the refresh the others wait for
            return await asyncio.shield(self._pending)
        except AuthFailed as err:
            raise AuthFailed(err.message, deployment=deployment) from err

    def invalidate(self) -> None:
        """The API refused the token: fetch a new one on the next call."""
        self._headers = None

    def redact(self, raw: bytes) -> bytes:
        """`raw` with the current token, should a server echo it, replaced by `***`."""
        token = (self._headers or {}).get("authorization", "").removeprefix("Bearer ")
        return raw.replace(token.encode(), b"***") if len(token) >= 8 else raw

    def close(self) -> None:
        """Close the token endpoint's connections."""
        self._http.session.close()

    async def _refresh(self) -> _Headers:
        try:
            headers, lifetime = await asyncio.to_thread(self._fetch)
        except AuthFailed as err:
            self._headers = None
            self._failure = err.message
            self._failed_until = self._clock.now() + self._retry_after_failure
            raise
        finally:
            self._pending = None
        self._headers, self._failure = headers, None
        self._refresh_at = self._clock.now() + self._usable_for(lifetime)
        return headers

    def _usable_for(self, lifetime: float | None) -> float:
        if lifetime is None:  # a token without an expiry: used until the API refuses it
            return float("inf")
        # a short-lived token is refreshed half-way rather than on every call
        return lifetime - self._margin if lifetime > 2 * self._margin else lifetime / 2

    # -- in the worker thread ---------------------------------------------------------------

    def _fetch(self) -> _Fetched:
        try:
            credentials = self._credentials or self._load()
            self._credentials = credentials
            credentials.refresh(self._http)
        except google.auth.exceptions.DefaultCredentialsError as exc:
            raise AuthFailed(self._not_found(exc)) from exc
        except (google.auth.exceptions.GoogleAuthError, OSError, ValueError) as exc:
            reason = _reason(exc)
            message = f"could not get a Google access token from {self.source}: {reason}"
            raise AuthFailed(message) from exc
        headers: _Headers = {}
        credentials.apply(headers)
        expiry: datetime | None = credentials.expiry
        if expiry is None:
            return headers, None
        # google-auth keeps expiry as naive UTC; only the lifetime left is carried over, so
        # that the refresh is scheduled on the injected clock
        now = datetime.now(UTC).replace(tzinfo=None)
        return headers, (expiry - now).total_seconds()

    def _load(self) -> google.auth.credentials.Credentials:
        credentials: google.auth.credentials.Credentials
        if self.credentials_file:
            # only a service-account key: other credential types (workload identity
            # federation, impersonation) are configured through application default credentials
            account = google.oauth2.service_account.Credentials
            credentials = account.from_service_account_file(
                self.credentials_file, scopes=self._scopes
            )
            return credentials
        credentials, _ = google.auth.default(scopes=self._scopes, request=self._http)
        return credentials

    def _not_found(self, exc: Exception) -> str:
        if not self.credentials_file and not os.environ.get("GOOGLE_APPLICATION_CREDENTIALS"):
            return NO_CREDENTIALS
        return f"cannot load Google credentials from {self.source}: {_reason(exc)}"

    def __repr__(self) -> str:
        if self._headers is not None:
            left = self._refresh_at - self._clock.now()
            state = f"token fresh for {left:.0f}s" if left > 0 else "token due for refresh"
        elif self._failure is not None:
            state = "failed"
        else:
            state = "no token yet"
        return f"<GoogleAuth {self.source}: {state}>"


def _reason(exc: BaseException) -> str:
    # RefreshError carries (message, response body): the message is enough, and the body of a
    # token endpoint's error never holds a token
    first = exc.args[0] if exc.args else ""
    text = first if isinstance(first, str) and first else str(exc) or type(exc).__name__
    return text[:_MAX_REASON]


def _observe(task: asyncio.Task[_Headers]) -> None:
    # every caller may have gone: mark the outcome retrieved so asyncio does not log it
    if not task.cancelled():
        task.exception()
