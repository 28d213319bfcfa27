"""Google Vertex AI (`kind: vertex`): Gemini and Claude models served from a Google Cloud
project. Each speaks the wire format it speaks elsewhere — only the URL and the credentials
differ — so the Gemini and Anthropic adapters' translations and stream parsing are reused.

format      models      request
gemini      gemini-*    POST {base}/projects/P/locations/L/publishers/google/models/M
                        :generateContent, :streamGenerateContent?alt=sse
anthropic   claude-*    POST {base}/projects/P/locations/L/publishers/anthropic/models/M
                        :rawPredict, :streamRawPredict — the Messages body, without `model`,
                        with `anthropic_version`

`{base}` is `https://{location}-aiplatform.googleapis.com/v1`, or
`https://aiplatform.googleapis.com/v1` for `location: global`. Credentials: a `credentials_file`
or application default credentials, sent as OAuth bearer tokens (`GoogleAuth`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, ClassVar, Literal, Self, cast

from pydantic import BaseModel, SecretStr

from ..clock import Clock
from ..config import DeploymentConfig, ProviderConfig, VertexOptions, validate_as
from ..errors import BadRequest, ConfigError, ProviderError
from ..transport import Transport
from ..types import JSON, Payload, Request
from ._google_auth import NO_CREDENTIALS, GoogleAuth
from ._http import HTTPAdapter
from .anthropic import AnthropicAdapter
from .gemini import GeminiAdapter

__all__ = [
    "ANTHROPIC_VERSION",
    "NO_CREDENTIALS",
    "GoogleAuth",
    "VertexAdapter",
    "VertexAnthropicAdapter",
    "VertexGeminiAdapter",
    "vertex_base_url",
    "wire_format",
]

ANTHROPIC_VERSION = "vertex-2023-10-16"  # sent in the body on Vertex, not as a header
WireFormat = Literal["gemini", "anthropic"]
_FORMATS: tuple[WireFormat, ...] = ("gemini", "anthropic")


def wire_format(model: str, configured: str | None = None) -> WireFormat:
    """The format a Vertex model speaks: as configured, else `anthropic` for claude-*."""
    if configured is None:
        return "anthropic" if model.startswith("claude") else "gemini"
    if configured not in _FORMATS:
        raise ConfigError(f"options.format: expected gemini or anthropic, got {configured!r}")
    return configured


def vertex_base_url(location: str) -> str:
    """The Vertex AI API root for a location (`global` has no regional host)."""
    host = "aiplatform.googleapis.com"
    return f"https://{host}/v1" if location == "global" else f"https://{location}-{host}/v1"


class VertexAdapter(HTTPAdapter):
    """What Vertex deployments share: project, location, Google credentials, the probe.

    Build one with `VertexAdapter.for_model(...)` (or `from_config`), which picks
    `VertexGeminiAdapter` or `VertexAnthropicAdapter` by the model's wire format.
    """

    kind: ClassVar[str] = "vertex"
    publisher: ClassVar[str] = ""
    options_type: ClassVar[type[VertexOptions]] = VertexOptions
    options: VertexOptions

    def __init__(
        self,
        *,
        model: str,
        project: str | None = None,
        location: str | None = None,
        credentials_file: str | None = None,
        auth: GoogleAuth | None = None,
        name: str | None = None,
        api_key: str | SecretStr | None = None,
        base_url: str | None = None,
        options: VertexOptions | Mapping[str, Any] | None = None,
        clock: Clock | None = None,
        provider_name: str | None = None,
        **kwargs: Any,
    ) -> None:
        where = f"providers.{provider_name}" if provider_name else "vertex"
        if api_key:
            raise ConfigError(
                f"{where}.api_key: vertex authenticates with Google credentials "
                "(credentials_file or application default credentials), not api_key"
            )
        explicit = {"project": project, "location": location, "credentials_file": credentials_file}
        opts = _options(options, explicit, where=where, what=f"options of {name or model}")
        self.project: str = opts.project or ""  # _options made sure there is one
        self.location = opts.location
        self._owns_auth = auth is None
        file = opts.credentials_file
        self.auth = auth or GoogleAuth(
            credentials_file=os.path.expanduser(file) if file else None, clock=clock
        )
        self._auth_seen: Mapping[str, str] | None = None
        self._merged: Mapping[str, str] = {}
        super().__init__(
            model=model,
            name=name,
            base_url=base_url or vertex_base_url(self.location),
            options=opts,
            clock=clock,
            provider_name=provider_name,
            **kwargs,
        )

    @classmethod
    def for_model(cls, *, model: str, format: str | None = None, **kwargs: Any) -> VertexAdapter:
        """The Vertex adapter for `model`, in its wire format (`format` overrides the guess)."""
        opts = validate_as(VertexOptions, kwargs.pop("options", None), what=f"options of {model}")
        chosen = wire_format(model, format or opts.format)
        target = VertexAnthropicAdapter if chosen == "anthropic" else VertexGeminiAdapter
        return target(model=model, options=opts, **kwargs)

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
        """The adapter for one deployment; on `VertexAdapter` itself, of the model's format."""
        if cls is not VertexAdapter:
            return super().from_config(
                dep, provider, provider_name=provider_name, transport=transport, clock=clock
            )
        opts = validate_as(
            VertexOptions, provider.options, what=f"options of providers.{provider_name}"
        )
        chosen = wire_format(dep.model, opts.format)
        target = VertexAnthropicAdapter if chosen == "anthropic" else VertexGeminiAdapter
        adapter = target.from_config(
            dep, provider, provider_name=provider_name, transport=transport, clock=clock
        )
        return cast(Self, adapter)

    def normalize_base_url(self, base_url: str) -> str:
        return base_url  # used as given: it ends with the API version (/v1)

    @property
    def model_url(self) -> str:
        """The model's resource URL in this project and location."""
        return (
            f"{self.base_url}/projects/{self.project}/locations/{self.location}"
            f"/publishers/{self.publisher}/models/{self.model}"
        )

    async def request_headers(self) -> Mapping[str, str]:
        """The fixed headers plus a bearer token that is fresh (fetched when it is not)."""
        auth = await self.auth.headers(deployment=self.name)
        if auth is not self._auth_seen:  # merged once per token, not per request
            self._merged, self._auth_seen = {**self._headers, **auth}, auth
        return self._merged

    def error_from(self, status: int, headers: Mapping[str, str], raw: bytes) -> ProviderError:
        if status == 401:  # revoked or expired early: the next call fetches a new token
            self.auth.invalidate()
        return super().error_from(status, headers, self.auth.redact(raw))

    async def probe(self) -> None:
        """A token, then GET publishers/{publisher}/models/{model}: authenticated, no tokens spent.

        The Model Garden entry is the cheapest authenticated read that names the model; it does
        not prove quota in the project, which only a (billed) generation would.
        """
        model = self.model.partition("@")[0]  # claude-x@20250101 is listed as claude-x
        await self._get(f"{self.base_url}/publishers/{self.publisher}/models/{model}")

    async def aclose(self) -> None:
        await super().aclose()
        if self._owns_auth:
            self.auth.close()

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self.name} project={self.project!r} "
            f"location={self.location!r} credentials={self.auth.source!r}>"
        )


class VertexGeminiAdapter(VertexAdapter, GeminiAdapter):
    """Gemini on Vertex AI: generateContent / streamGenerateContent with a bearer token."""

    publisher: ClassVar[str] = "google"
    # declared again: mypy compares the two bases' declarations unless the class has its own
    options_type: ClassVar[type[VertexOptions]] = VertexOptions
    options: VertexOptions

    async def embeddings(self, request: Request) -> Payload:
        # Vertex embeds through :predict, not AI Studio's batchEmbedContents
        raise BadRequest("embeddings are not supported by vertex", deployment=self.name)


class VertexAnthropicAdapter(VertexAdapter, AnthropicAdapter):
    """Claude on Vertex AI: rawPredict / streamRawPredict with the Anthropic Messages body."""

    publisher: ClassVar[str] = "anthropic"
    options_type: ClassVar[type[VertexOptions]] = VertexOptions
    options: VertexOptions

    def auth_headers(self) -> dict[str, str]:
        # anthropic_version travels in the body on Vertex; beta features still go in a header
        return {"anthropic-beta": ",".join(self.options.beta)} if self.options.beta else {}

    def messages_url(self, *, stream: bool) -> str:
        return f"{self.model_url}:{'streamRawPredict' if stream else 'rawPredict'}"

    def wire_body(self, body: JSON, *, stream: bool) -> JSON:
        body = super().wire_body(body, stream=stream)
        del body["model"]  # the URL names the model; Vertex refuses it in the body
        body.pop("anthropic_version", None)
        return {"anthropic_version": ANTHROPIC_VERSION, **body}


def _options(
    given: VertexOptions | Mapping[str, Any] | None,
    explicit: Mapping[str, str | None],
    *,
    where: str,
    what: str,
) -> VertexOptions:
    """The options checked, with explicit arguments over them and GOOGLE_CLOUD_PROJECT under."""
    if isinstance(given, BaseModel):
        merged = given.model_dump(exclude_unset=True)
    else:
        merged = dict(given or {})
    merged.update({key: value for key, value in explicit.items() if value is not None})
    if not merged.get("project") and (env := os.environ.get("GOOGLE_CLOUD_PROJECT")):
        merged["project"] = env
    opts = validate_as(VertexOptions, merged, what=what, prefix=f"{where}.options")
    if not opts.project:
        raise ConfigError(
            f"{where}.options.project: a Google Cloud project is required "
            "(or set GOOGLE_CLOUD_PROJECT)"
        )
    return opts
