"""The config `failover serve` builds from the environment when given none."""

from __future__ import annotations

from failover.defaults import default_config


def test_no_keys_means_simulated_providers() -> None:
    """Without keys: three simulated providers behind smart and fast, said out loud."""
    built = default_config({})
    assert built.simulated
    assert "SIMULATED" in built.description
    assert set(built.config.providers) == {"sim-a", "sim-b", "sim-c"}
    assert {p.kind for p in built.config.providers.values()} == {"simulated"}
    assert list(built.config.routes) == ["smart", "fast", "embed"]
    assert built.config.routes["smart"].fallbacks == ["fast"]


def test_keys_make_one_route_per_family_across_providers() -> None:
    """Each provider with a key joins every route, in a fixed order."""
    env = {"ANTHROPIC_API_KEY": "a", "GOOGLE_API_KEY": "g-secret", "OPENAI_API_KEY": "o"}
    built = default_config(env)
    smart = [d.key for d in built.config.routes["smart"].deployments]
    assert smart == ["openai/gpt-4o", "anthropic/claude-sonnet-4-5", "gemini/gemini-2.5-pro"]
    fast = [d.key for d in built.config.routes["fast"].deployments]
    assert fast[0] == "openai/gpt-4o-mini"
    assert built.config.routes["embed"].deployments[0].model == "text-embedding-3-small"
    key = built.config.providers["gemini"].api_key
    assert key is not None and key.get_secret_value() == "g-secret"
    assert "g-secret" not in repr(built.config.providers["gemini"])


def test_one_provider_no_embeddings_route_without_openai() -> None:
    """Anthropic alone: smart and fast, no embeddings route."""
    built = default_config({"ANTHROPIC_API_KEY": "a"})
    assert list(built.config.routes) == ["smart", "fast"]
    assert not built.simulated


def test_gateway_keys_from_the_environment() -> None:
    """FAILOVER_API_KEY (comma-separated) and FAILOVER_ADMIN_KEY protect the gateway."""
    built = default_config({"FAILOVER_API_KEY": "k1, k2", "FAILOVER_ADMIN_KEY": "adm"})
    server = built.config.server
    assert [k.get_secret_value() for k in server.api_keys] == ["k1", "k2"]
    assert server.admin_key is not None and server.admin_key.get_secret_value() == "adm"
