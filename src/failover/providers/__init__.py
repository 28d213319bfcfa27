"""Provider adapters, one module per wire format, and `create_adapter` to build one from config.

kind        adapter               wire format
openai      OpenAIAdapter         OpenAI Chat Completions (any compatible server)
azure       AzureOpenAIAdapter    the same, at Azure OpenAI deployment URLs
anthropic   AnthropicAdapter      Anthropic Messages, translated
gemini      GeminiAdapter         Gemini generateContent, translated
bedrock     BedrockAdapter        AWS Bedrock Converse (SigV4), translated; in providers.bedrock
vertex      VertexAdapter         Gemini or Claude on Google Vertex AI, translated; providers.vertex
simulated   SimulatedProvider     no network: a fake LLM for tests and demos
"""

from __future__ import annotations

from ..clock import Clock
from ..config import DeploymentConfig, ProviderConfig, SimulatedOptions
from ..errors import ConfigError
from ..transport import Transport
from ..types import BaseDeployment
from ._http import HTTPAdapter
from .anthropic import AnthropicAdapter
from .gemini import GeminiAdapter
from .openai import AzureOpenAIAdapter, OpenAIAdapter

__all__ = [
    "AnthropicAdapter",
    "AzureOpenAIAdapter",
    "GeminiAdapter",
    "HTTPAdapter",
    "OpenAIAdapter",
    "create_adapter",
]

_HTTP_ADAPTERS: dict[str, type[HTTPAdapter]] = {
    "openai": OpenAIAdapter,
    "azure": AzureOpenAIAdapter,
    "anthropic": AnthropicAdapter,
    "gemini": GeminiAdapter,
}


def create_adapter(
    dep: DeploymentConfig,
    provider: ProviderConfig,
    *,
    provider_name: str,
    transport: Transport,
    clock: Clock | None = None,
) -> BaseDeployment:
    """The adapter for deployment `dep` of `provider`, sharing `transport`'s connection pools.

    `clock` (the router's) paces simulated providers and dates Retry-After headers.
    """
    if isinstance(provider.options, SimulatedOptions):  # kind: simulated
        from .simulated import SimulatedProvider  # only loaded by configs that use it

        return SimulatedProvider(
            name=dep.key,
            model=dep.model,
            options=provider.options,
            weight=dep.weight,
            timeout=dep.timeout,
            clock=clock,
        )
    if provider.kind == "vertex":
        # loaded only by configs that use it: google-auth and requests take ~80ms to import
        from .vertex import VertexAdapter

        # the Gemini or the Anthropic wire format, chosen by each deployment's model
        return VertexAdapter.from_config(
            dep, provider, provider_name=provider_name, transport=transport, clock=clock
        )
    cls = _HTTP_ADAPTERS.get(provider.kind)
    if cls is None and provider.kind == "bedrock":
        # loaded only by configs that use it: botocore costs a quarter second to import
        from .bedrock import BedrockAdapter

        cls = BedrockAdapter
    if cls is None:
        known = ", ".join([*_HTTP_ADAPTERS, "bedrock", "vertex", "simulated"])
        raise ConfigError(
            f"providers.{provider_name}.kind: unknown provider kind {provider.kind!r} "
            f"(known: {known})"
        )
    adapter: BaseDeployment = cls.from_config(
        dep, provider, provider_name=provider_name, transport=transport, clock=clock
    )
    return adapter
