"""Translating OpenAI chat requests to Anthropic Messages requests and answers back."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from failover.errors import BadRequest
from failover.providers._anthropic_convert import (
    finish_reason,
    from_message,
    to_messages_request,
    usage_of,
)

from .support import check_completion

WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def convert(request: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    return to_messages_request(request, model="claude-x", default_max_tokens=4096, **kwargs)


def msgs(*messages: dict[str, Any]) -> dict[str, Any]:
    return {"messages": list(messages)}


def test_system_and_developer_messages_become_system() -> None:
    """System and developer messages are lifted into `system`, joined by blank lines."""
    body = convert(
        msgs(
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Be kind."}]},
            {"role": "user", "content": "Hi"},
        )
    )
    assert body["system"] == "Be brief.\n\nBe kind."
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]


def test_multi_turn_keeps_order_and_roles() -> None:
    """User and assistant turns alternate as given."""
    body = convert(
        msgs(
            {"role": "user", "content": "1"},
            {"role": "assistant", "content": "2"},
            {"role": "user", "content": "3"},
        )
    )
    assert [(m["role"], m["content"][0]["text"]) for m in body["messages"]] == [
        ("user", "1"),
        ("assistant", "2"),
        ("user", "3"),
    ]


def test_consecutive_same_role_messages_merge() -> None:
    """Two user messages in a row become one user turn with two blocks."""
    body = convert(msgs({"role": "user", "content": "a"}, {"role": "user", "content": "b"}))
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}
    ]


def test_data_url_image_becomes_base64_source() -> None:
    """A data: image URL becomes a base64 image block with its media type."""
    part = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    body = convert(msgs({"role": "user", "content": [{"type": "text", "text": "What?"}, part]}))
    assert body["messages"][0]["content"][1] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
    }


def test_http_image_becomes_url_source() -> None:
    """An http(s) image URL becomes a url image source."""
    part = {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}
    body = convert(msgs({"role": "user", "content": [part]}))
    source = body["messages"][0]["content"][0]["source"]
    assert source == {"type": "url", "url": "https://example.com/cat.jpg"}


def test_pdf_file_part_becomes_a_document() -> None:
    """A base64 file part becomes a document block."""
    part = {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0="}}
    block = convert(msgs({"role": "user", "content": [part]}))["messages"][0]["content"][0]
    assert block["type"] == "document" and block["source"]["media_type"] == "application/pdf"


def test_unsupported_content_part_is_bad_request() -> None:
    """Audio input has no Messages counterpart: the request is refused."""
    part = {"type": "input_audio", "input_audio": {"data": "AAA", "format": "wav"}}
    with pytest.raises(BadRequest, match="input_audio"):
        convert(msgs({"role": "user", "content": [part]}))


def test_tools_become_anthropic_tools() -> None:
    """Function tools become name/description/input_schema tools."""
    body = convert({**msgs({"role": "user", "content": "Weather?"}), "tools": [WEATHER_TOOL]})
    assert body["tools"] == [
        {
            "name": "get_weather",
            "description": "Weather in a city",
            "input_schema": WEATHER_TOOL["function"]["parameters"],
        }
    ]
    assert body["tool_choice"] == {"type": "auto"}


def test_legacy_functions_become_tools() -> None:
    """The deprecated `functions` list is translated like tools."""
    body = convert({**msgs({"role": "user", "content": "x"}), "functions": [{"name": "f"}]})
    assert body["tools"] == [{"name": "f", "input_schema": {"type": "object", "properties": {}}}]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"type": "auto"}),
        ("none", {"type": "none"}),
        ("required", {"type": "any"}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            {"type": "tool", "name": "get_weather"},
        ),
    ],
)
def test_tool_choice_mapping(choice: Any, expected: dict[str, Any]) -> None:
    """auto/none/required/a named function map to auto/none/any/tool."""
    request = {**msgs({"role": "user", "content": "x"}), "tools": [WEATHER_TOOL]}
    assert convert({**request, "tool_choice": choice})["tool_choice"] == expected


def test_parallel_tool_calls_false_disables_parallel_use() -> None:
    """parallel_tool_calls=false sets disable_parallel_tool_use."""
    request = {
        **msgs({"role": "user", "content": "x"}),
        "tools": [WEATHER_TOOL],
        "parallel_tool_calls": False,
    }
    assert convert(request)["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}


def test_tool_call_round_trip_becomes_tool_use_and_tool_result() -> None:
    """Assistant tool_calls become tool_use blocks; tool messages tool_result blocks."""
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
    }
    body = convert(
        msgs(
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_1", "content": "18C and sunny"},
            {"role": "user", "content": "Thanks"},
        )
    )
    assistant, results = body["messages"][1], body["messages"][2]
    assert assistant["content"] == [
        {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}}
    ]
    assert results == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "call_1", "content": "18C and sunny"},
            {"type": "text", "text": "Thanks"},
        ],
    }


def test_legacy_function_call_round_trip() -> None:
    """A deprecated function_call and its function message are paired by a made-up id."""
    body = convert(
        msgs(
            {"role": "user", "content": "x"},
            {"role": "assistant", "function_call": {"name": "f", "arguments": "{}"}},
            {"role": "function", "name": "f", "content": "done"},
        )
    )
    tool_use = body["messages"][1]["content"][0]
    result = body["messages"][2]["content"][0]
    assert tool_use["type"] == "tool_use" and result["tool_use_id"] == tool_use["id"]


def test_invalid_tool_arguments_are_bad_request() -> None:
    """Arguments that are not a JSON object make the request invalid."""
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{nope"}}
    with pytest.raises(BadRequest, match="arguments"):
        convert(msgs({"role": "assistant", "tool_calls": [call]}))


def test_sampling_parameters_are_translated() -> None:
    """stop becomes stop_sequences, temperature is clamped to 1, top_p and user carried."""
    body = convert(
        {
            **msgs({"role": "user", "content": "x"}),
            "stop": "END",
            "temperature": 1.7,
            "top_p": 0.9,
            "user": "u-1",
        }
    )
    assert body["stop_sequences"] == ["END"]
    assert (body["temperature"], body["top_p"], body["metadata"]) == (1.0, 0.9, {"user_id": "u-1"})


@pytest.mark.parametrize(
    ("extra", "expected"),
    [({}, 4096), ({"max_tokens": 50}, 50), ({"max_completion_tokens": 70, "max_tokens": 50}, 70)],
)
def test_max_tokens(extra: dict[str, Any], expected: int) -> None:
    """max_tokens defaults to 4096 and prefers max_completion_tokens."""
    assert convert({**msgs({"role": "user", "content": "x"}), **extra})["max_tokens"] == expected


def test_n_above_one_is_bad_request() -> None:
    """Anthropic cannot return several choices."""
    with pytest.raises(BadRequest, match="n > 1"):
        convert({**msgs({"role": "user", "content": "x"}), "n": 2})


def test_unknown_role_is_bad_request() -> None:
    """A message role Anthropic cannot express is refused."""
    with pytest.raises(BadRequest, match="role"):
        convert(msgs({"role": "narrator", "content": "x"}))


def test_the_request_is_not_mutated() -> None:
    """Translation leaves the caller's request untouched."""
    request = {**msgs({"role": "user", "content": "x"}), "tools": [WEATHER_TOOL], "stop": ["a"]}
    before = copy.deepcopy(request)
    convert(request)
    assert request == before


@pytest.mark.parametrize(
    ("stop", "expected"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("pause_turn", "stop"),
    ],
)
def test_finish_reason_mapping(stop: str, expected: str) -> None:
    """Each Anthropic stop_reason maps to its OpenAI finish_reason."""
    assert finish_reason(stop) == expected


def test_response_with_text_and_tool_use() -> None:
    """Text blocks join into content; tool_use blocks become tool_calls with JSON arguments."""
    body = from_message(
        {
            "id": "msg_1",
            "model": "claude-x",
            "content": [
                {"type": "text", "text": "Let me check."},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": {"city": "P"},
                },
            ],
            "stop_reason": "tool_use",
            "usage": {"input_tokens": 10, "output_tokens": 5},
        },
        fallback_model="m",
        created=1,
    )
    message = check_completion(body).choices[0].message
    assert message.content == "Let me check."
    assert message.tool_calls is not None
    call = message.tool_calls[0]
    assert (call.id, call.function.name, call.function.arguments) == (  # type: ignore[union-attr]
        "toolu_1",
        "get_weather",
        '{"city":"P"}',
    )
    assert body["choices"][0]["finish_reason"] == "tool_calls"


def test_usage_counts_cache_tokens_as_prompt_tokens() -> None:
    """Cache reads and writes are part of prompt_tokens; reads are reported as cached."""
    used = usage_of(
        {
            "input_tokens": 10,
            "cache_creation_input_tokens": 5,
            "cache_read_input_tokens": 100,
            "output_tokens": 7,
        }
    )
    assert used == {
        "prompt_tokens": 115,
        "completion_tokens": 7,
        "total_tokens": 122,
        "prompt_tokens_details": {"cached_tokens": 100},
    }


def test_a_trailing_assistant_message_stays_the_final_turn() -> None:
    """An assistant message at the end goes as the last turn, which Anthropic continues
    (prefill), its text untouched."""
    body = to_messages_request(
        msgs({"role": "user", "content": "hi"}, {"role": "assistant", "content": "The quick"}),
        model="m",
        default_max_tokens=64,
    )
    assert body["messages"][-1] == {
        "role": "assistant",
        "content": [{"type": "text", "text": "The quick"}],
    }
