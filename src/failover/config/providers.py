"""The `providers:` section: one endpoint per name, and its `options` typed by its `kind`.

    providers:
      openai: {kind: openai, api_key: "${OPENAI_API_KEY}", options: {organization: org-abc}}
      claude: {kind: anthropic, api_key: "${ANTHROPIC_API_KEY}", options: {beta: [b-2025]}}
      sim:    {kind: simulated, options: {ttft: 50ms, tokens_per_second: 40}}

kind        options model
openai      OpenAIOptions      organization, project, probe_path + the HTTP ones
azure       AzureOptions       probe_path + the HTTP ones
anthropic   AnthropicOptions   beta, default_max_tokens + the HTTP ones
gemini      GeminiOptions      the HTTP ones: read_timeout, max_connections
vertex      VertexOptions      project, location, credentials_file, format + Anthropic's
simulated   SimulatedOptions   latency, ttft, pacing, reply, failures (no network)
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator

from ..errors import Kind
from ..resilience.streams import Prefill
from .base import Duration, Fraction, StrictModel
from .chaos import Delay

__all__ = [
    "OPTIONS_BY_KIND",
    "AnthropicOptions",
    "AzureOptions",
    "BedrockOptions",
    "GeminiOptions",
    "HTTPOptions",
    "OpenAIOptions",
    "ProviderConfig",
    "ProviderKind",
    "ProviderOptions",
    "SimulatedOptions",
    "VertexOptions",
]

ProviderKind = Literal["openai", "azure", "anthropic", "gemini", "bedrock", "vertex", "simulated"]


class HTTPOptions(StrictModel):
    """What every provider called over HTTP understands: its connection pool's limits."""

    read_timeout: Duration | None = Field(None, gt=0)  # a connection silent this long fails
    max_connections: int | None = Field(None, ge=1)  # pool size; default: the transport's
    prefill: Prefill | None = None  # how it continues another's broken answer; default: kind's


class OpenAIOptions(HTTPOptions):
    """An OpenAI-compatible endpoint: OpenAI's account headers and the health probe's path."""

    organization: str | None = None  # sent as openai-organization
    project: str | None = None  # sent as openai-project
    probe_path: str = "models"  # what the health probe GETs, under base_url
    responses: bool | None = None  # speaks the Responses API natively (default: OpenAI's own)


class AzureOptions(OpenAIOptions):
    """Azure OpenAI: the OpenAI options but OpenAI's account headers, which Azure has no use for."""

    @field_validator("organization", "project")
    @classmethod
    def _openai_only(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None:
            raise ValueError(f"{info.field_name} is an OpenAI header, not sent to azure")
        return value


class AnthropicOptions(HTTPOptions):
    """Anthropic's Messages API: beta features and the max_tokens a request without one gets."""

    beta: tuple[str, ...] = ()  # sent as anthropic-beta, comma-separated
    default_max_tokens: int = Field(4096, ge=1)  # Anthropic requires max_tokens; OpenAI doesn't

    @field_validator("beta", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        if isinstance(value, str):
            return (value,) if value else ()
        return value


class GeminiOptions(HTTPOptions):
    """Gemini: only the HTTP options."""


class BedrockOptions(HTTPOptions):
    """AWS Bedrock: the region and credentials profile, and fields sent in every Converse body.

    Credentials come the AWS way (environment, shared profile, container or instance role,
    IRSA), or `api_key` holds a Bedrock API key.
    """

    region: str | None = None  # default: AWS_REGION, AWS_DEFAULT_REGION or the profile's
    profile: str | None = None  # a profile of ~/.aws/credentials; default: botocore's
    control_url: str | None = None  # the control plane the probe asks; default its region's
    guardrail_config: dict[str, Any] | None = None  # Converse guardrailConfig
    additional_model_request_fields: dict[str, Any] | None = None  # model-specific fields
    performance_config: dict[str, Any] | None = None  # Converse performanceConfig


# project ids and numbers, domain-scoped projects (example.com:proj), locations: nothing that
# could change a URL's path
_GOOGLE_RESOURCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")


class VertexOptions(AnthropicOptions, GeminiOptions):
    """Google Vertex AI: the project and location, the credentials, and the wire format.

    Claude models there also take the Anthropic options (`beta`, `default_max_tokens`).
    """

    project: str | None = None  # default: GOOGLE_CLOUD_PROJECT; one of the two is required
    location: str = "us-central1"  # or another region, or "global"
    credentials_file: str | None = None  # a service-account key; default: application default
    format: Literal["gemini", "anthropic"] | None = None  # default: anthropic for claude-*

    @field_validator("project", "location")
    @classmethod
    def _path_safe(cls, value: str | None) -> str | None:
        if value is not None and not _GOOGLE_RESOURCE.match(value):
            raise ValueError(f"invalid value {value!r}")
        return value


_PLACEHOLDERS = {"last_user": "", "model": "", "name": "", "call": 0}


class SimulatedOptions(StrictModel):
    """How a simulated deployment paces, words and fails its answers. Durations in seconds."""

    latency: Delay | None = None  # time to a whole answer; default ttft + pacing
    ttft: Delay | None = None  # time to a stream's first chunk; default latency, else 0
    tokens_per_second: float | None = Field(None, gt=0)  # stream pacing; None: all at once
    reply: str = "Simulated reply from {model}: {last_user}"  # also {name} and {call}
    tokens: int | None = Field(None, ge=1)  # stretch or cut every reply to this many tokens
    error_rate: Fraction = 0.0
    error_status: int | None = Field(None, ge=400, le=599)  # default 500 (or the kind's)
    error_kind: Kind | None = None  # default: what error_status classifies as
    down: bool = False  # every call and probe fails as if the connection was refused
    prefill: Prefill = Prefill.ASSISTANT  # continues a trailing assistant message
    embedding_dimensions: int = Field(16, ge=1, le=8192)

    @field_validator("reply")
    @classmethod
    def _known_placeholders(cls, value: str) -> str:
        try:
            value.format_map(_PLACEHOLDERS)
        except (KeyError, IndexError, ValueError) as exc:
            known = ", ".join("{" + k + "}" for k in _PLACEHOLDERS)
            raise ValueError(f"bad placeholder {exc} in reply (use {known})") from None
        return value


ProviderOptions = (
    OpenAIOptions
    | AzureOptions
    | AnthropicOptions
    | GeminiOptions
    | BedrockOptions
    | VertexOptions
    | SimulatedOptions
)
OPTIONS_BY_KIND: dict[ProviderKind, type[StrictModel]] = {
    "openai": OpenAIOptions,
    "azure": AzureOptions,
    "anthropic": AnthropicOptions,
    "gemini": GeminiOptions,
    "bedrock": BedrockOptions,
    "vertex": VertexOptions,
    "simulated": SimulatedOptions,
}


class ProviderConfig(StrictModel):
    """One provider endpoint and its credentials; `options` are validated by `kind`."""

    kind: ProviderKind
    base_url: str | None = Field(None, validate_default=True)
    api_key: SecretStr | None = None
    api_version: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    connect_timeout: Duration = 5.0
    options: ProviderOptions = Field(default_factory=dict, validate_default=True)

    @field_validator("api_key", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return value or None

    @field_validator("api_version", mode="before")
    @classmethod
    def _date_as_text(cls, value: Any) -> Any:
        # YAML reads an unquoted 2024-10-21 as a date
        return value.isoformat() if hasattr(value, "isoformat") else value

    @field_validator("base_url")
    @classmethod
    def _http_only(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and info.data.get("kind") == "azure":
            raise ValueError("an azure provider needs base_url (https://NAME.openai.azure.com)")
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("base_url must start with http:// or https://")
        return value.rstrip("/") if value else value

    @field_validator("options", mode="plain")
    @classmethod
    def _options_of_kind(cls, value: Any, info: ValidationInfo) -> Any:
        kind = info.data.get("kind")
        if kind is None:
            return value  # the kind is wrong, and that error says all there is to say
        return OPTIONS_BY_KIND[kind].model_validate(value)
