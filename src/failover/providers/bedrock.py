"""AWS Bedrock's Converse API behind the OpenAI chat interface: one request shape for every
Bedrock model, requests signed with SigV4 (credentials from botocore's chain), answers and
ConverseStream events translated back into OpenAI completions and chunks.

    POST {base_url}/model/{modelId}/converse           whole answers (JSON)
    POST {base_url}/model/{modelId}/converse-stream    application/vnd.amazon.eventstream

`modelId` is a foundation model id, an inference profile id (`us.anthropic...`) or any
Bedrock model ARN. The event stream is decoded by botocore's own parser.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import Any, ClassVar
from urllib.parse import quote

import orjson
from botocore.eventstream import EventStreamBuffer
from botocore.session import Session
from pydantic import SecretStr

from ..clock import Clock
from ..config import BedrockOptions, HTTPOptions, validate_as
from ..errors import ConnectionFailed, Kind, ProviderError, callers_fault, error_for
from ..openai_shapes import wants_usage
from ..resilience.streams import Prefill
from ..transport import StreamResponse, Transport
from ..types import JSON, Chunk, Completion, Request, malformed_chunk
from ._aws import AWSSigner, resolve_region, secrets_of
from ._bedrock_convert import from_converse, to_converse_request
from ._bedrock_errors import error_kind, error_type_of, message_of
from ._bedrock_stream import Message, StreamTranslator, decode_messages
from ._http import HTTPAdapter

__all__ = ["BedrockAdapter"]

_RETRY_KINDS = (Kind.RATE_LIMITED, Kind.OVERLOADED)
_MAX_MESSAGE = 500
# deployment options passed into every Converse body as they are
_EXTRA_FIELDS = {
    "guardrail_config": "guardrailConfig",
    "additional_model_request_fields": "additionalModelRequestFields",
    "performance_config": "performanceConfig",
}


class BedrockAdapter(HTTPAdapter):
    """Any Bedrock model through Converse / ConverseStream, SigV4-signed (or a Bedrock API key)."""

    kind: ClassVar[str] = "bedrock"
    options_type: ClassVar[type[HTTPOptions]] = BedrockOptions
    options: BedrockOptions

    def __init__(
        self,
        *,
        model: str,
        region: str | None = None,
        profile: str | None = None,
        session: Session | None = None,
        control_url: str | None = None,
        name: str | None = None,
        api_key: str | SecretStr | None = None,
        base_url: str | None = None,
        api_version: str | None = None,
        headers: Mapping[str, str] | None = None,
        options: Mapping[str, Any] | None = None,
        weight: float = 1.0,
        timeout: float | None = None,
        transport: Transport | None = None,
        provider_name: str | None = None,
        connect_timeout: float = 5.0,
        clock: Clock | None = None,
    ) -> None:
        opts = validate_as(BedrockOptions, options, what=f"options of {name or model}")
        self.profile: str | None = profile or opts.profile  # None: botocore's default
        where = f"providers.{provider_name}.options.region" if provider_name else "region"
        self.region = resolve_region(
            region or opts.region, profile=self.profile, session=session, where=where
        )
        super().__init__(
            model=model,
            name=name,
            api_key=api_key,
            base_url=base_url,
            api_version=api_version,
            headers=headers,
            options=opts,
            weight=weight,
            timeout=timeout,
            transport=transport,
            provider_name=provider_name,
            connect_timeout=connect_timeout,
            clock=clock,
        )
        if opts.prefill is None and "anthropic." in model:
            self.prefill = Prefill.ASSISTANT  # Claude on Converse continues an assistant turn
        control = control_url or opts.control_url
        # the control plane (model descriptions, for the probe) has its own host
        self.control_url = str(control or f"https://bedrock.{self.region}.amazonaws.com").rstrip(
            "/"
        )
        # Bedrock signs with service "bedrock" for the runtime and the control plane alike
        self._signer = AWSSigner(
            service="bedrock", region=self.region, profile=self.profile, session=session
        )
        self._extra = {
            field: value
            for key, field in _EXTRA_FIELDS.items()
            if (value := getattr(opts, key)) is not None
        }

    def normalize_base_url(self, base_url: str) -> str:
        return base_url or f"https://bedrock-runtime.{self.region}.amazonaws.com"

    def model_url(self, action: str) -> str:
        """The runtime URL of `action` ("converse", "converse-stream") for this model."""
        return f"{self.base_url}/model/{_path_segment(self.model)}/{action}"

    # -- chat -------------------------------------------------------------------------------

    def _body(self, request: Request) -> bytes:
        with callers_fault("bedrock", deployment=self.name):
            return orjson.dumps(to_converse_request(request, extra=self._extra))

    async def complete(self, request: Request) -> Completion:
        raw = await self._send("POST", self.model_url("converse"), self._body(request))
        created = int(self._clock.wall())
        return Completion(from_converse(self._json(raw), model=self.model, created=created))

    async def stream(self, request: Request) -> AsyncIterator[Chunk]:
        body = self._body(request)
        translator = StreamTranslator(
            model=self.model,
            created=int(self._clock.wall()),
            include_usage=wants_usage(request),
        )
        async with self._open_eventstream(self.model_url("converse-stream"), body) as opened:
            resp, secrets = opened
            async with contextlib.aclosing(self._events(resp, secrets)) as events:
                async for event_type, data in events:
                    if isinstance(data, bytes):  # unreadable: the router skips it and counts it
                        yield malformed_chunk(data)
                        continue
                    for chunk in translator.feed(event_type, data):
                        yield chunk
                    if translator.done:
                        resp.end()
                        return
            if not translator.stopped:
                raise ConnectionFailed(
                    "bedrock stream ended before messageStop", deployment=self.name
                )
            for chunk in translator.close():
                yield chunk

    async def _events(
        self, resp: StreamResponse, secrets: list[str]
    ) -> AsyncGenerator[tuple[str, JSON | bytes], None]:
        """(event type, payload) of each event, the payload as bytes when it is not JSON;
        exception messages raise their error."""
        buffer = EventStreamBuffer()
        fed = used = 0
        async with contextlib.aclosing(resp.aiter_raw()) as received:
            async for data in received:
                buffer.add_data(data)
                fed += len(data)
                for message in decode_messages(buffer, deployment=self.name):
                    used += message.size
                    yield self._event(message, secrets)
        if used != fed:
            raise ConnectionFailed(
                "bedrock stream ended inside an event message", deployment=self.name
            )

    def _event(self, message: Message, secrets: list[str]) -> tuple[str, JSON | bytes]:
        headers = message.headers
        kind = headers.get(":message-type")
        if kind == "event":
            event_type = str(headers.get(":event-type") or "")
            data = self._json_object(message.payload)
            return event_type, _scrub(message.payload, secrets) if data is None else data
        if kind == "exception":
            error_type = str(headers.get(":exception-type") or "")
            raise self.stream_exception(error_type, _scrub(message.payload, secrets))
        if kind == "error":  # the event-stream protocol's own errors: code and message headers
            text = str(headers.get(":error-message") or "")
            raw = _scrub(orjson.dumps({"message": text}), secrets)
            raise self.stream_exception(str(headers.get(":error-code") or ""), raw)
        raise ConnectionFailed(
            f"bedrock stream sent a message of unknown type {kind!r}", deployment=self.name
        )

    def stream_exception(self, error_type: str, raw: bytes) -> ProviderError:
        """The `ProviderError` for an exception message inside a ConverseStream."""
        parsed = _loads(raw)
        # the stream names exceptions as members (throttlingException): compare as types
        error_type = error_type[:1].upper() + error_type[1:] or "UnknownException"
        message = message_of(parsed, raw)
        kind = error_kind(error_type, message, None, parsed)
        return error_for(
            kind,
            f"bedrock stream {error_type}: {message}",
            deployment=self.name,
            code=error_type,
            body=parsed if parsed is not None else raw.decode("utf-8", "replace")[:_MAX_MESSAGE],
        )

    # -- probe ------------------------------------------------------------------------------

    async def probe(self) -> None:
        """A signed GET of the model on Bedrock's control plane (`GetFoundationModel`, or
        `GetInferenceProfile` and kin for profiles and ARNs): checks credentials, region and
        model at no token cost. Needs `bedrock:GetFoundationModel` (or the matching Get*)."""
        await self._send("GET", f"{self.control_url}{_control_path(self.model)}")

    # -- requests ---------------------------------------------------------------------------

    async def _authorize(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None
    ) -> tuple[dict[str, str], list[str]]:
        """The headers to send and the secrets in them (scrubbed from any error body)."""
        if self._api_key:  # a Bedrock API key: a bearer token instead of SigV4
            return dict(headers), [self._api_key]
        creds = await self._signer.credentials(deployment=self.name)
        signed = self._signer.sign(creds, method, url, headers=headers, body=body)
        signature = signed["authorization"].rpartition("Signature=")[2]
        return signed, [*secrets_of(creds), signature]

    async def _send(self, method: str, url: str, body: bytes | None = None) -> bytes:
        headers = self._headers if body is not None else _without_body(self._headers)
        signed, secrets = await self._authorize(method, url, headers, body)
        resp = await self._http.request(
            method, url, headers=signed, body=body, deployment=self.name
        )
        if not 200 <= resp.status < 300:
            raise self.error_from(resp.status, resp.headers, _scrub(resp.body, secrets))
        return resp.body

    @contextlib.asynccontextmanager
    async def _open_eventstream(
        self, url: str, body: bytes
    ) -> AsyncIterator[tuple[StreamResponse, list[str]]]:
        headers = {**self._headers, "accept": "application/vnd.amazon.eventstream"}
        signed, secrets = await self._authorize("POST", url, headers, body)
        async with self._http.stream(
            "POST", url, headers=signed, body=body, deployment=self.name
        ) as resp:
            if not 200 <= resp.status < 300:
                raw = _scrub(await resp.read(), secrets)
                raise self.error_from(resp.status, resp.headers, raw)
            yield resp, secrets

    # -- errors -----------------------------------------------------------------------------

    def error_from(self, status: int, headers: Mapping[str, str], raw: bytes) -> ProviderError:
        """The `ProviderError` for a Bedrock error answer: its type from `x-amzn-ErrorType`
        (or the body's `__type`), its message from the body."""
        raw = self._redact(raw)
        parsed = _loads(raw)
        error_type = error_type_of(headers, parsed)
        message = message_of(parsed, raw)
        kind = error_kind(error_type, message, status, parsed)
        retry_after = self.retry_after(headers, parsed) if kind in _RETRY_KINDS else None
        return error_for(
            kind,
            f"bedrock {status} {error_type or 'error'}: {message}",
            status=status,
            retry_after=retry_after,
            deployment=self.name,
            code=error_type,
            body=parsed if parsed is not None else raw.decode("utf-8", "replace")[:_MAX_MESSAGE],
        )

    def __repr__(self) -> str:
        return f"<BedrockAdapter {self.name} region={self.region} base_url={self.base_url!r}>"


def _path_segment(model_id: str) -> str:
    # ":" stays as it is: aiohttp would unquote %3A after signing, and the signature covers
    # the path as sent; "/" (in ARNs) must be %2F to stay one path segment
    return quote(model_id, safe=":")


# the Get* operation of the control plane for each kind of model ARN
_CONTROL_PATHS = {
    "foundation-model": "/foundation-models/",
    "inference-profile": "/inference-profiles/",
    "application-inference-profile": "/inference-profiles/",
    "provisioned-model": "/provisioned-model-throughput/",
    "custom-model": "/custom-models/",
    "imported-model": "/imported-models/",
}
# system inference profiles are a foundation model id behind a geography: us.anthropic...
_PROFILE_PREFIXES = {"us", "us-gov", "eu", "apac", "global", "jp", "au", "ca"}


def _control_path(model_id: str) -> str:
    """The control-plane path that describes `model_id` (an id, a profile id or an ARN)."""
    if model_id.startswith("arn:"):
        resource = model_id.split(":", 5)[-1]
        kind, _, rest = resource.partition("/")
        if kind == "foundation-model":
            return f"/foundation-models/{_path_segment(rest)}"
        if kind in _CONTROL_PATHS:
            return f"{_CONTROL_PATHS[kind]}{_path_segment(model_id)}"
        return "/inference-profiles?maxResults=1"  # an ARN of another kind: credentials only
    if model_id.partition(".")[0] in _PROFILE_PREFIXES:
        return f"/inference-profiles/{_path_segment(model_id)}"
    return f"/foundation-models/{_path_segment(model_id)}"


def _without_body(headers: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k != "content-type"}


def _scrub(raw: bytes, secrets: list[str]) -> bytes:
    """`raw` with every secret replaced by ***: AWS may echo the canonical request it got."""
    for secret in secrets:
        if len(secret) >= 4:
            raw = raw.replace(secret.encode(), b"***")
    return raw


def _loads(raw: bytes) -> Any:
    try:
        return orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        return None
