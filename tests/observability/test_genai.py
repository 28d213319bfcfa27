"""GenAI span attributes: read from answers, configs and deployment names."""

from __future__ import annotations

import pytest

from failover.config import Config
from failover.observability.genai import Place, place_of, response_attributes
from failover.testing import ScriptedDeployment
from failover.types import Completion, Payload

CONFIG = Config.model_validate(
    {
        "providers": {
            "azure": {"kind": "azure", "base_url": "https://eu.openai.azure.com", "api_key": "k"},
            "local": {"kind": "openai", "base_url": "http://127.0.0.1:11434/v1"},
            "claude": {"kind": "anthropic", "api_key": "k"},
            "sim": {"kind": "simulated"},
        },
        "routes": {
            "smart": {
                "deployments": [
                    {"provider": "azure", "model": "gpt-4o", "name": "eu-4o"},
                    {"provider": "local", "model": "llama3.1"},
                    {"provider": "claude", "model": "claude-sonnet-4-5"},
                    {"provider": "sim", "model": "fake"},
                ]
            }
        },
    }
)


def test_a_completion_gives_model_id_usage_and_finish_reasons() -> None:
    """Everything the conventions ask of a response, from an OpenAI-shaped body."""
    answer = Completion(
        raw=b'{"id": "chatcmpl-1", "model": "gpt-4o-2024", "usage": {"prompt_tokens": 5, '
        b'"completion_tokens": 7}, "choices": [{"finish_reason": "stop"}, '
        b'{"finish_reason": "length"}]}'
    )
    assert response_attributes(answer) == {
        "gen_ai.response.model": "gpt-4o-2024",
        "gen_ai.response.id": "chatcmpl-1",
        "gen_ai.usage.input_tokens": 5,
        "gen_ai.usage.output_tokens": 7,
        "gen_ai.response.finish_reasons": ["stop", "length"],
    }


def test_embeddings_count_input_tokens_only() -> None:
    """An embeddings answer has input tokens and no finish reasons."""
    answer = Payload({"object": "list", "model": "te-3", "usage": {"prompt_tokens": 3}})
    assert response_attributes(answer) == {
        "gen_ai.response.model": "te-3",
        "gen_ai.usage.input_tokens": 3,
    }


@pytest.mark.parametrize(
    "raw",
    [b"not json", b'{"model": 5, "usage": {"prompt_tokens": true}, "choices": ["x"]}'],
)
def test_an_answer_that_says_nothing_usable_gives_nothing(raw: bytes) -> None:
    """A body that does not parse, or holds the wrong types, adds no attributes."""
    assert response_attributes(Completion(raw=raw)) == {}


def test_no_answer_gives_nothing() -> None:
    """A failed attempt has no response attributes."""
    assert response_attributes(None) == {}


def test_a_configured_deployment_names_its_provider_kind_and_server() -> None:
    """Provider kinds map to the conventions' names; the base URL gives address and port."""
    assert place_of("local/llama3.1", None, CONFIG) == Place(
        "openai", "llama3.1", "127.0.0.1", 11434
    )
    assert place_of("eu-4o", None, CONFIG) == Place(
        "azure.ai.openai", "gpt-4o", "eu.openai.azure.com", None
    )
    assert place_of("claude/claude-sonnet-4-5", None, CONFIG) == Place(
        "anthropic", "claude-sonnet-4-5"
    )
    assert place_of("sim/fake", None, CONFIG).provider == "simulated"


def test_a_deployment_asked_for_by_name_is_placed_by_its_provider() -> None:
    """`provider/model` that no route lists still names the configured provider."""
    assert place_of("local/qwen2", None, CONFIG) == Place("openai", "qwen2", "127.0.0.1", 11434)


def test_without_a_config_the_name_says_what_it_can() -> None:
    """A deployment of your own: the provider is its name's prefix, the model its own."""
    assert place_of("vendor/model-x", None, None) == Place("vendor", "model-x")
    deployment = ScriptedDeployment("primary")
    assert place_of("primary", deployment, None) == Place("primary", "primary")


def test_an_anthropic_message_gives_usage_and_stop_reason() -> None:
    """A request passed through in Anthropic's API reads its own usage and stop reason."""
    answer = Completion(
        raw=b'{"id": "msg_1", "type": "message", "model": "claude-sonnet-4-5", '
        b'"stop_reason": "end_turn", "usage": {"input_tokens": 11, "output_tokens": 4}}'
    )
    assert response_attributes(answer) == {
        "gen_ai.response.model": "claude-sonnet-4-5",
        "gen_ai.response.id": "msg_1",
        "gen_ai.usage.input_tokens": 11,
        "gen_ai.usage.output_tokens": 4,
        "gen_ai.response.finish_reasons": ["end_turn"],
    }
