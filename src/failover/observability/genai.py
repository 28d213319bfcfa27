"""Span attributes in the OpenTelemetry GenAI semantic conventions, and failover's own.

    gen_ai.operation.name        "chat" or "embeddings"
    gen_ai.provider.name         "openai", "anthropic", "aws.bedrock", ... (`GENAI_PROVIDERS`)
    gen_ai.request.model         the route asked for (request span), the deployment's model
    gen_ai.response.model / id   what the answer says
    gen_ai.usage.input_tokens / output_tokens, gen_ai.response.finish_reasons
    error.type                   the failure's kind (`server_error`, `timeout`, ...)
    server.address / port        the provider's base URL, when configured
    failover.*                   route, deployment, outcome, retry, hedge, recovery, breaker

Only names, kinds, counts and timings: never prompts, completions or keys; error messages are
passed through `redact()`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from opentelemetry.util.types import AttributeValue

from ..kinds import Kind
from ..trace import Answer, Attempt, Trace
from .logs import redact

if TYPE_CHECKING:
    from ..config import Config
    from ..types import BaseDeployment

__all__ = [
    "GENAI_PROVIDERS",
    "Place",
    "attempt_attributes",
    "describe",
    "failed",
    "outcome",
    "place_of",
    "response_attributes",
    "retries_before",
]

# `gen_ai.provider.name` of each provider kind (the conventions' well-known values)
GENAI_PROVIDERS = {
    "openai": "openai",
    "azure": "azure.ai.openai",
    "anthropic": "anthropic",
    "gemini": "gcp.gemini",
    "bedrock": "aws.bedrock",
}


# token counts: OpenAI's names, then Anthropic's
_USAGE = (
    (("prompt_tokens", "input_tokens"), "gen_ai.usage.input_tokens"),
    (("completion_tokens", "output_tokens"), "gen_ai.usage.output_tokens"),
)


@dataclass(frozen=True, slots=True)
class Place:
    """Where a deployment lives, in the conventions' terms."""

    provider: str
    model: str
    address: str | None = None
    port: int | None = None

    def attributes(self) -> dict[str, AttributeValue]:
        """`gen_ai.provider.name`, `gen_ai.request.model` and the server, when known."""
        out: dict[str, AttributeValue] = {
            "gen_ai.provider.name": self.provider,
            "gen_ai.request.model": self.model,
        }
        if self.address is not None:
            out["server.address"] = self.address
        if self.port is not None:
            out["server.port"] = self.port
        return out


def place_of(name: str, deployment: BaseDeployment | None, config: Config | None) -> Place:
    """Provider and model of deployment `name`: from the config when it names them, else
    from the name (`provider/model`) and the deployment's own `model`."""
    prefix, _, rest = name.partition("/")
    provider_key = prefix
    model = deployment.model if deployment is not None else rest or name
    if config is None:
        return Place(provider_key, model)
    for route in config.routes.values():
        for dep in route.deployments:
            if dep.key == name:
                provider_key, model = dep.provider, dep.model
    provider = config.providers.get(provider_key)
    if provider is None:
        return Place(provider_key, model)
    url = urlsplit(provider.base_url) if provider.base_url else None
    return Place(
        GENAI_PROVIDERS.get(provider.kind, provider.kind),
        model,
        url.hostname if url else None,
        url.port if url else None,
    )


def attempt_attributes(trace: Trace, attempt: Attempt, place: Place) -> dict[str, AttributeValue]:
    """Everything an attempt span says: where it went, how it ended, what it answered."""
    out = place.attributes()
    out["gen_ai.operation.name"] = trace.operation
    out["failover.route"] = attempt.route
    out["failover.deployment"] = attempt.deployment
    out["failover.outcome"] = outcome(attempt)
    out["failover.retry"] = retries_before(trace, attempt)
    out["failover.hedge"] = attempt.hedge
    if failed(attempt):
        out["error.type"] = attempt.kind.value
    if attempt.status is not None:
        out["http.response.status_code"] = attempt.status
    if attempt.waited:
        out["failover.backoff_ms"] = round(attempt.waited * 1000, 3)
    if attempt.ttft is not None:
        out["failover.ttft_ms"] = round(attempt.ttft * 1000, 3)
    if attempt.recovery is not None:
        out["failover.recovery.mode"] = attempt.recovery
    if attempt.delivered is not None:
        out["failover.delivered_chars"] = attempt.delivered
    if attempt.local is not None:
        out["failover.local"] = attempt.local
    out.update(response_attributes(attempt.answer))
    return out


def response_attributes(answer: Answer | None) -> dict[str, AttributeValue]:
    """`gen_ai.response.*` and `gen_ai.usage.*` of an answer, as far as it says: an OpenAI
    body, or an Anthropic Messages one (a request passed through in its own API)."""
    if answer is None:
        return {}
    try:
        body = answer.body
    except ValueError:  # a body that does not parse says nothing
        return {}
    out: dict[str, AttributeValue] = {}
    for key, name in (("model", "gen_ai.response.model"), ("id", "gen_ai.response.id")):
        if isinstance(value := body.get(key), str) and value:
            out[name] = value
    usage = body.get("usage")
    if isinstance(usage, dict):
        for keys, name in _USAGE:
            counts = [usage[k] for k in keys if _is_count(usage.get(k))]
            if counts:
                out[name] = counts[0]
    reasons = [
        choice["finish_reason"]
        for choice in body.get("choices") or ()
        if isinstance(choice, dict) and isinstance(choice.get("finish_reason"), str)
    ]
    if not reasons and isinstance(stop := body.get("stop_reason"), str):
        reasons = [stop]
    if reasons:
        out["gen_ai.response.finish_reasons"] = reasons
    return out


def outcome(attempt: Attempt) -> str:
    """`failover.outcome`: the kind, or `cancelled` for a call that lost a race."""
    return Kind.CANCELLED.value if attempt.cancelled else attempt.kind.value


def failed(attempt: Attempt) -> bool:
    """Whether the call failed (a cancelled one did not: nobody is blamed)."""
    return attempt.kind is not Kind.OK and not attempt.cancelled


def describe(attempt: Attempt) -> str:
    """A span status description: the kind and the provider's message, secrets masked."""
    text = f"{attempt.kind.value}: {attempt.message}" if attempt.message else attempt.kind.value
    return redact(text)[:300]


def retries_before(trace: Trace, attempt: Attempt) -> int:
    """Calls of the same deployment made earlier in the request (0: the first)."""
    count = 0
    for earlier in trace.attempts:
        if earlier is attempt:
            break
        if earlier.skipped is None and earlier.deployment == attempt.deployment:
            count += 1
    return count


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
