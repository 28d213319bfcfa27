"""Translating OpenAI chat requests to Gemini generateContent requests and answers back."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from failover.errors import BadRequest
from failover.providers._gemini_convert import (
    finish_reason,
    from_response,
    to_gemini_request,
    usage_of,
)

from .support import check_completion

TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "additionalProperties": False,
        },
    },
}


def msgs(*messages: dict[str, Any]) -> dict[str, Any]:
    return {"messages": list(messages)}


def test_roles_and_system_instruction() -> None:
    """System text goes to systemInstruction; assistant turns get the role model."""
    body = to_gemini_request(
        msgs(
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello"},
            {"role": "user", "content": "Bye"},
        )
    )
    assert body["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "Hi"}]},
        {"role": "model", "parts": [{"text": "Hello"}]},
        {"role": "user", "parts": [{"text": "Bye"}]},
    ]


def test_consecutive_same_role_messages_merge() -> None:
    """Two user messages in a row become one content with two parts."""
    body = to_gemini_request(
        msgs({"role": "user", "content": "a"}, {"role": "user", "content": "b"})
    )
    assert body["contents"] == [{"role": "user", "parts": [{"text": "a"}, {"text": "b"}]}]


def test_data_url_image_becomes_inline_data() -> None:
    """A data: image URL becomes an inlineData part."""
    part = {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}}
    body = to_gemini_request(msgs({"role": "user", "content": [part]}))
    assert body["contents"][0]["parts"] == [
        {"inlineData": {"mimeType": "image/jpeg", "data": "/9j/4AAQ"}}
    ]


def test_http_image_becomes_file_data() -> None:
    """An http(s) image URL becomes a fileData part with a guessed MIME type."""
    part = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    body = to_gemini_request(msgs({"role": "user", "content": [part]}))
    assert body["contents"][0]["parts"] == [
        {"fileData": {"mimeType": "image/png", "fileUri": "https://example.com/cat.png"}}
    ]


def test_tools_become_function_declarations() -> None:
    """Function tools become functionDeclarations with their JSON Schema as is."""
    body = to_gemini_request({**msgs({"role": "user", "content": "x"}), "tools": [TOOL]})
    assert body["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Weather in a city",
                    "parametersJsonSchema": TOOL["function"]["parameters"],
                }
            ]
        }
    ]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"mode": "AUTO"}),
        ("none", {"mode": "NONE"}),
        ("required", {"mode": "ANY"}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            {"mode": "ANY", "allowedFunctionNames": ["get_weather"]},
        ),
    ],
)
def test_tool_choice_mapping(choice: Any, expected: dict[str, Any]) -> None:
    """tool_choice maps to functionCallingConfig modes."""
    request = {**msgs({"role": "user", "content": "x"}), "tools": [TOOL], "tool_choice": choice}
    assert to_gemini_request(request)["toolConfig"] == {"functionCallingConfig": expected}


def test_tool_calls_and_results_become_function_parts() -> None:
    """Assistant tool_calls become functionCall parts; tool messages functionResponse parts."""
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
    }
    body = to_gemini_request(
        msgs(
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 18}'},
            {"role": "tool", "tool_call_id": "call_1", "content": "plain text"},
        )
    )
    assert body["contents"][1] == {
        "role": "model",
        "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}],
    }
    assert body["contents"][2] == {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "get_weather", "response": {"temp": 18}}},
            {"functionResponse": {"name": "get_weather", "response": {"result": "plain text"}}},
        ],
    }


def test_tool_result_without_its_call_is_bad_request() -> None:
    """A tool message whose call is unknown cannot be named for Gemini."""
    with pytest.raises(BadRequest, match="tool"):
        to_gemini_request(msgs({"role": "tool", "tool_call_id": "nope", "content": "x"}))


def test_generation_config() -> None:
    """temperature, top_p, max tokens and stop go to generationConfig."""
    body = to_gemini_request(
        {
            **msgs({"role": "user", "content": "x"}),
            "temperature": 0.2,
            "top_p": 0.8,
            "max_completion_tokens": 99,
            "stop": ["END"],
        }
    )
    assert body["generationConfig"] == {
        "temperature": 0.2,
        "topP": 0.8,
        "maxOutputTokens": 99,
        "stopSequences": ["END"],
    }


def test_json_schema_response_format() -> None:
    """A json_schema response_format asks for JSON with that schema."""
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    fmt = {"type": "json_schema", "json_schema": {"name": "s", "schema": schema}}
    config = to_gemini_request({**msgs({"role": "user", "content": "x"}), "response_format": fmt})[
        "generationConfig"
    ]
    assert config == {"responseMimeType": "application/json", "responseJsonSchema": schema}


def test_the_request_is_not_mutated() -> None:
    """Translation leaves the caller's request untouched."""
    request = {**msgs({"role": "user", "content": "x"}), "tools": [TOOL]}
    before = copy.deepcopy(request)
    to_gemini_request(request)
    assert request == before


@pytest.mark.parametrize(
    ("reason", "tools", "expected"),
    [
        ("STOP", False, "stop"),
        ("STOP", True, "tool_calls"),
        ("MAX_TOKENS", False, "length"),
        ("SAFETY", False, "content_filter"),
        ("RECITATION", False, "content_filter"),
        ("PROHIBITED_CONTENT", False, "content_filter"),
        ("BLOCKLIST", False, "content_filter"),
        ("OTHER", False, "stop"),
    ],
)
def test_finish_reason_mapping(reason: str, tools: bool, expected: str) -> None:
    """Each Gemini finishReason maps to its OpenAI finish_reason."""
    assert finish_reason(reason, tool_calls=tools) == expected


def test_response_with_function_call() -> None:
    """functionCall parts become tool_calls; thought parts are left out of the content."""
    body = from_response(
        {
            "candidates": [
                {
                    "content": {
                        "role": "model",
                        "parts": [
                            {"text": "thinking...", "thought": True},
                            {"text": "Checking."},
                            {"functionCall": {"name": "get_weather", "args": {"city": "P"}}},
                        ],
                    },
                    "finishReason": "STOP",
                }
            ],
            "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 4},
        },
        fallback_model="gemini-x",
        created=1,
    )
    completion = check_completion(body)
    message = completion.choices[0].message
    assert message.content == "Checking."
    assert message.tool_calls is not None
    assert message.tool_calls[0].function.arguments == '{"city":"P"}'  # type: ignore[union-attr]
    assert completion.choices[0].finish_reason == "tool_calls"
    assert completion.model == "gemini-x"


def test_usage_counts_thoughts_as_completion_tokens() -> None:
    """Thinking tokens are billed as output, so they count as completion tokens."""
    used = usage_of({"promptTokenCount": 10, "candidatesTokenCount": 5, "thoughtsTokenCount": 20})
    assert used == {"prompt_tokens": 10, "completion_tokens": 25, "total_tokens": 35}


def test_a_trailing_assistant_message_is_sent_as_it_is() -> None:
    """An assistant message at the end goes as a final model turn, unchanged."""
    body = to_gemini_request(
        msgs({"role": "user", "content": "hi"}, {"role": "assistant", "content": "The quick"})
    )
    assert body["contents"][-1] == {"role": "model", "parts": [{"text": "The quick"}]}
