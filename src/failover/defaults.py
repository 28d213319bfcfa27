"""The configuration `failover serve` uses when no config file is given.

Built from the API keys found in the environment: one route per model family, failing over
across every provider that has a key, and `smart` falling back to `fast`:

    smart   openai/gpt-4o  -> anthropic/claude-sonnet-4-5 -> gemini/gemini-2.5-pro   (then fast)
    fast    openai/gpt-4o-mini -> anthropic/claude-haiku-4-5 -> gemini/gemini-2.5-flash
    embed   openai/text-embedding-3-small                     (with an OpenAI key only)

With no key at all it serves three simulated providers (sim-a, sim-b, sim-c) behind the same
route names, so the gateway, the SDKs and the failover logic can be tried with no account.
`FAILOVER_API_KEY` and `FAILOVER_ADMIN_KEY`, when set, become the gateway's client and admin keys.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .config import Config

__all__ = ["DefaultConfig", "default_config"]

# provider name -> (kind, environment variables holding its key, in order of preference)
PROVIDERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "openai": ("openai", ("OPENAI_API_KEY",)),
    "anthropic": ("anthropic", ("ANTHROPIC_API_KEY",)),
    "gemini": ("gemini", ("GEMINI_API_KEY", "GOOGLE_API_KEY")),
}
MODELS: dict[str, dict[str, str]] = {
    "smart": {"openai": "gpt-4o", "anthropic": "claude-sonnet-4-5", "gemini": "gemini-2.5-pro"},
    "fast": {
        "openai": "gpt-4o-mini",
        "anthropic": "claude-haiku-4-5",
        "gemini": "gemini-2.5-flash",
    },
}
EMBEDDINGS = {"openai": "text-embedding-3-small"}

SIMULATED: dict[str, Any] = {
    "providers": {
        "sim-a": {"kind": "simulated", "options": {"ttft": "40ms", "tokens_per_second": 150}},
        "sim-b": {"kind": "simulated", "options": {"ttft": "60ms", "tokens_per_second": 100}},
        "sim-c": {"kind": "simulated", "options": {"ttft": "15ms", "tokens_per_second": 300}},
    },
    "routes": {
        "smart": {
            "deployments": [
                {"provider": "sim-a", "model": "sim-large"},
                {"provider": "sim-b", "model": "sim-large"},
            ],
            "fallbacks": ["fast"],
        },
        "fast": {
            "deployments": [
                {"provider": "sim-c", "model": "sim-small"},
                {"provider": "sim-b", "model": "sim-small"},
            ],
        },
        "embed": {"deployments": [{"provider": "sim-c", "model": "sim-embed"}]},
    },
}


@dataclass(frozen=True, slots=True)
class DefaultConfig:
    """The built config and a sentence saying where it came from."""

    config: Config
    description: str
    simulated: bool


def default_config(env: Mapping[str, str] | None = None) -> DefaultConfig:
    """The config for the keys in `env` (default: the process environment)."""
    env = os.environ if env is None else env
    keys = {name: key for name, (_, names) in PROVIDERS.items() if (key := _first(env, names))}
    data: dict[str, Any] = dict(SIMULATED) if not keys else _from_keys(keys)
    data["server"] = _server(env)
    config = Config.from_dict(data)
    if not keys:
        description = (
            "no provider API keys found (OPENAI_API_KEY, ANTHROPIC_API_KEY, GEMINI_API_KEY): "
            "serving SIMULATED providers sim-a, sim-b, sim-c"
        )
    else:
        description = "providers from the environment: " + ", ".join(keys)
    return DefaultConfig(config, description, simulated=not keys)


def _first(env: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    return next((env[n] for n in names if env.get(n)), None)


def _from_keys(keys: dict[str, str]) -> dict[str, Any]:
    providers = {name: {"kind": PROVIDERS[name][0], "api_key": key} for name, key in keys.items()}
    routes: dict[str, Any] = {
        route: {"deployments": [{"provider": p, "model": models[p]} for p in keys]}
        for route, models in MODELS.items()
    }
    routes["smart"]["fallbacks"] = ["fast"]
    embed = [{"provider": p, "model": m} for p, m in EMBEDDINGS.items() if p in keys]
    if embed:
        routes["embed"] = {"deployments": embed}
    return {"providers": providers, "routes": routes}


def _server(env: Mapping[str, str]) -> dict[str, Any]:
    server: dict[str, Any] = {}
    if env.get("FAILOVER_API_KEY"):
        server["api_keys"] = [k.strip() for k in env["FAILOVER_API_KEY"].split(",") if k.strip()]
    if env.get("FAILOVER_ADMIN_KEY"):
        server["admin_key"] = env["FAILOVER_ADMIN_KEY"]
    return server
