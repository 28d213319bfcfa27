"""`HTTPAdapter`: what the HTTP provider adapters share — identity, credentials kept out of
every message and repr, JSON requests over the shared transport (health probes over the
provider's own probe pool), and provider error bodies mapped to the error tree
(`classify_status` + `parse_retry_after`)."""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Mapping
from typing import Any, ClassVar, Self

import orjson
from pydantic import SecretStr

from .._local import CURRENT_CALL
from ..classify import classify_status, parse_retry_after
from ..clock import Clock, SystemClock
from ..config import DeploymentConfig, HTTPOptions, ProviderConfig, ProviderOptions, validate_as
from ..errors import Kind, ProviderError, ServerError, error_for
from ..resilience.streams import Prefill
from ..transport import HTTPClient, HTTPResponse, StreamResponse, Transport
from ..types import BaseDeployment

__all__ = ["HTTPAdapter"]

_RETRY_KINDS = (Kind.RATE_LIMITED, Kind.OVERLOADED)
_MAX_MESSAGE = 500


class HTTPAdapter(BaseDeployment):
    """Base of the adapters that call a provider over HTTP. Never retries, never logs keys."""

    kind: ClassVar[str] = "http"
    default_base_url: ClassVar[str] = ""
    options_type: ClassVar[type[HTTPOptions]] = HTTPOptions  # what `options` are checked as
    default_prefill: ClassVar[Prefill] = Prefill.NONE  # unless `options.prefill` says otherwise
    options: HTTPOptions

    def __init__(
        self,
        *,
        model: str,
        name: str | None = None,
        api_key: str | SecretStr | None = None,
        base_url: str | None = None,
        api_version: str | None = None,
        headers: Mapping[str, str] | None = None,
        options: ProviderOptions | Mapping[str, Any] | None = None,
        weight: float = 1.0,
        timeout: float | None = None,
        transport: Transport | None = None,
        provider_name: str | None = None,
        connect_timeout: float = 5.0,
        clock: Clock | None = None,
    ) -> None:
        self.model = model
        self.name = name or f"{provider_name or self.kind}/{model}"
        self.weight = weight
        self.timeout = timeout
        self.base_url = self.normalize_base_url((base_url or self.default_base_url).rstrip("/"))
        self.api_version = api_version
        self.options = validate_as(self.options_type, options, what=f"options of {self.name}")
        self.prefill = self.options.prefill or self.default_prefill
        self._api_key = api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key
        self._clock = clock or SystemClock()
        self._owns_transport = transport is None
        self._transport = transport or Transport()
        pool = provider_name or self.base_url
        read_timeout = self.options.read_timeout
        self._traffic: HTTPClient = self._transport.client(
            pool,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            limit=self.options.max_connections,
        )
        self._probes: HTTPClient = self._transport.probe_client(
            pool, connect_timeout=connect_timeout, read_timeout=read_timeout
        )
        self._headers = {
            "content-type": "application/json",
            **self.auth_headers(),
            **(headers or {}),
        }

    @classmethod
    def from_config(
        cls,
        dep: DeploymentConfig,
        provider: ProviderConfig,
        *,
        provider_name: str,
        transport: Transport,
        clock: Clock | None = None,
    ) -> Self:
        """The adapter for one deployment of a configured provider."""
        return cls(
            model=dep.model,
            name=dep.key,
            api_key=provider.api_key,
            base_url=provider.base_url,
            api_version=provider.api_version,
            headers=provider.headers,
            options=provider.options,
            weight=dep.weight,
            timeout=dep.timeout,
            transport=transport,
            provider_name=provider_name,
            connect_timeout=provider.connect_timeout,
            clock=clock,
        )

    def normalize_base_url(self, base_url: str) -> str:
        """Check and canonicalise the configured base URL (a hook for subclasses)."""
        return base_url

    def auth_headers(self) -> dict[str, str]:
        """The credential headers of this provider (empty when no key is configured)."""
        return {"authorization": f"Bearer {self._api_key}"} if self._api_key else {}

    async def request_headers(self) -> Mapping[str, str]:
        """The headers of one request: the fixed ones, unless credentials expire (a hook)."""
        return self._headers

    @abc.abstractmethod
    async def probe(self) -> None:
        """A cheap authenticated request: every HTTP provider has one."""

    @property
    def _http(self) -> HTTPClient:
        """The provider's pool for this call: the probe pool while a health check runs (it
        marks its call `probe`), so a probe never queues behind traffic; else the traffic's."""
        call = CURRENT_CALL.get()
        return self._probes if call is not None and call.probe else self._traffic

    async def aclose(self) -> None:
        """Close the transport if this adapter made its own; a shared one is its owner's."""
        if self._owns_transport:
            await self._transport.aclose()

    # -- requests ---------------------------------------------------------------------------

    async def _post(
        self, url: str, body: Any, *, headers: Mapping[str, str] | None = None
    ) -> bytes:
        """POST JSON; the body of a 2xx answer, else the mapped `ProviderError` is raised.
        `headers` are added to (and override) the adapter's own for this request."""
        own = await self.request_headers()
        sent = {**own, **headers} if headers else own
        resp = await self._http.post_json(url, body, headers=sent, deployment=self.name)
        _note_headers(resp.headers)
        return self._checked(resp)

    async def _get(self, url: str) -> bytes:
        headers = await self.request_headers()
        resp = await self._http.request("GET", url, headers=headers, deployment=self.name)
        return self._checked(resp)

    def _checked(self, resp: HTTPResponse) -> bytes:
        if not 200 <= resp.status < 300:
            raise self.error_from(resp.status, resp.headers, resp.body)
        return resp.body

    def _open_stream(
        self, url: str, body: Any, *, headers: Mapping[str, str] | None = None
    ) -> contextlib.AbstractAsyncContextManager[StreamResponse]:
        """POST JSON for an event stream (`async with`): the open 2xx response, else the
        mapped `ProviderError` is raised. `headers` are added to the adapter's own."""
        return _OpenStream(self, url, body, headers)

    def _json(
        self, raw: bytes, what: str = "response", *, error: type[ProviderError] = ServerError
    ) -> dict[str, Any]:
        """Parse a provider's JSON object; garbage from upstream raises `error`."""
        parsed = self._json_object(raw)
        if parsed is None:
            raise error(f"{self.kind} sent a malformed {what}", deployment=self.name)
        return parsed

    @staticmethod
    def _json_object(raw: bytes) -> dict[str, Any] | None:
        """A provider's JSON object, or None when `raw` is not one (a garbled stream event:
        yield `malformed_chunk(raw)` for the router to skip and count)."""
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return None
        return parsed if isinstance(parsed, dict) else None

    # -- errors -----------------------------------------------------------------------------

    def error_from(self, status: int, headers: Mapping[str, str], raw: bytes) -> ProviderError:
        """The `ProviderError` for an error response, keeping the provider's own message."""
        raw = self._redact(raw)
        parsed = _loads_or_none(raw)
        message, code = self.error_details(parsed, raw)
        kind = self.classify(status, f"{code or ''} {message} {self.error_hints(parsed)}")
        retry_after = self.retry_after(headers, parsed) if kind in _RETRY_KINDS else None
        return error_for(
            kind,
            f"{self.kind} {status}: {message}",
            status=status,
            retry_after=retry_after,
            deployment=self.name,
            code=code,
            body=parsed if parsed is not None else raw.decode("utf-8", "replace")[:_MAX_MESSAGE],
        )

    def stream_error(self, raw: bytes) -> ProviderError:
        """The `ProviderError` for an error event inside a 200 stream (no HTTP status)."""
        raw = self._redact(raw)
        parsed = _loads_or_none(raw)
        err = parsed.get("error") if isinstance(parsed, dict) else None
        message, code = self.error_details(parsed, raw)
        status = _status_of(err)
        kind = self.classify(status, f"{code or ''} {message} {self.error_hints(parsed)}")
        return error_for(
            kind,
            f"{self.kind} stream error: {message}",
            deployment=self.name,
            code=code,
            body=parsed if parsed is not None else raw.decode("utf-8", "replace")[:_MAX_MESSAGE],
        )

    def classify(self, status: int, text: str) -> Kind:
        return classify_status(status, text)

    def error_details(self, parsed: Any, raw: bytes) -> tuple[str, str | None]:
        """(message, code) from an error body: `{"error": {"message", "code"|"status"|"type"}}`."""
        err = parsed.get("error") if isinstance(parsed, dict) else None
        if isinstance(err, dict):
            code = next(
                (v for k in ("code", "status", "type") if isinstance(v := err.get(k), str)), None
            )
            return str(err.get("message") or code or "error")[:_MAX_MESSAGE], code
        if isinstance(err, str):
            return err[:_MAX_MESSAGE], None
        if isinstance(parsed, dict) and isinstance(parsed.get("message"), str):
            return parsed["message"][:_MAX_MESSAGE], None
        text = raw.decode("utf-8", "replace").strip()[:_MAX_MESSAGE]
        return text or "empty error body", None

    def error_hints(self, parsed: Any) -> str:
        """Extra text for classification (e.g. the provider's error type); '' by default."""
        err = parsed.get("error") if isinstance(parsed, dict) else None
        return str(err.get("type") or "") if isinstance(err, dict) else ""

    def retry_after(self, headers: Mapping[str, str], parsed: Any) -> float | None:
        return parse_retry_after(headers, self._clock.wall())

    def _redact(self, raw: bytes) -> bytes:
        # some providers echo the key they were sent; it must not reach an error or a log
        if self._api_key and len(self._api_key) >= 4:
            raw = raw.replace(self._api_key.encode(), b"***")
        return raw

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} base_url={self.base_url!r}>"


class _OpenStream:
    """`HTTPAdapter._open_stream`'s context: a class, not a generator-based context manager
    (every stream opens one: an async generator costs more to start, run and close)."""

    __slots__ = ("_adapter", "_body", "_headers", "_inner", "_url")

    def __init__(
        self, adapter: HTTPAdapter, url: str, body: Any, headers: Mapping[str, str] | None
    ) -> None:
        self._adapter = adapter
        self._url = url
        self._body = body
        self._headers = headers

    async def __aenter__(self) -> StreamResponse:
        adapter = self._adapter
        own = await adapter.request_headers()
        sent = {**own, **(self._headers or {}), "accept": "text/event-stream"}
        self._inner = inner = adapter._http.stream(
            "POST", self._url, headers=sent, body=orjson.dumps(self._body), deployment=adapter.name
        )
        resp = await inner.__aenter__()
        try:
            _note_headers(resp.headers)
            if not 200 <= resp.status < 300:
                raise adapter.error_from(resp.status, resp.headers, await resp.read())
        except BaseException as exc:
            await inner.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        return resp

    async def __aexit__(self, *exc: Any) -> None:
        await self._inner.__aexit__(*exc)


# the HTTP status each provider error type stands for, for errors that arrive inside a stream
_STATUS_BY_TYPE = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "rate_limit_exceeded": 429,
    "insufficient_quota": 429,
    "overloaded_error": 529,
    "timeout_error": 504,
}


def _status_of(err: Any) -> int:
    if not isinstance(err, dict):
        return 500
    if isinstance(code := err.get("code"), int) and 400 <= code < 600:
        return code
    for key in ("type", "code"):
        if isinstance(value := err.get(key), str) and value in _STATUS_BY_TYPE:
            return _STATUS_BY_TYPE[value]
    return 500


def _loads_or_none(raw: bytes) -> Any:
    try:
        return orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        return None


def _note_headers(headers: Mapping[str, str]) -> None:
    """Hand the provider's answer headers to the attempt in flight (its rate-limit figures
    steer traffic away before the limit is hit)."""
    info = CURRENT_CALL.get()
    if info is not None:
        info.headers = headers
