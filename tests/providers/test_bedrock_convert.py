"""Translating OpenAI chat requests to Bedrock Converse requests, answers and stream events back."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from failover.errors import BadRequest, ConnectionFailed, Kind
from failover.providers._bedrock_convert import (
    finish_reason,
    from_converse,
    to_converse_request,
    usage_of,
)
from failover.providers._bedrock_errors import error_kind, error_type_of
from failover.providers._bedrock_stream import StreamTranslator, decode_messages
from fakes.bedrock_server import event_message

from .support import check_chunks, check_completion

TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
PNG = "iVBORw0KGgo="


def msgs(*messages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"messages": list(messages), **extra}


USER_X = {"role": "user", "content": "x"}


def test_system_and_developer_messages_become_system_blocks() -> None:
    """Each system or developer message becomes one system text block; turns keep order."""
    body = to_converse_request(
        msgs(
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "No emoji."}]},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello"},
            {"role": "user", "content": "Bye"},
        )
    )
    assert body["system"] == [{"text": "Be brief."}, {"text": "No emoji."}]
    assert body["messages"] == [
        {"role": "user", "content": [{"text": "Hi"}]},
        {"role": "assistant", "content": [{"text": "Hello"}]},
        {"role": "user", "content": [{"text": "Bye"}]},
    ]


def test_consecutive_same_role_messages_merge() -> None:
    """Two user messages in a row become one turn: Converse wants roles to alternate."""
    body = to_converse_request(msgs({"role": "user", "content": "a"}, USER_X))
    assert body["messages"] == [{"role": "user", "content": [{"text": "a"}, {"text": "x"}]}]


def test_data_url_image_becomes_an_image_block() -> None:
    """A data: image becomes an image block with its format and base64 bytes."""
    part = {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}
    text = {"type": "text", "text": "What is this?"}
    body = to_converse_request(msgs({"role": "user", "content": [text, part]}))
    assert body["messages"][0]["content"] == [
        {"text": "What is this?"},
        {"image": {"format": "png", "source": {"bytes": PNG}}},
    ]


def test_s3_image_becomes_an_s3_location() -> None:
    """An s3:// image URI is read by Bedrock itself from S3."""
    part = {"type": "image_url", "image_url": {"url": "s3://bucket/cats/cat.JPG"}}
    body = to_converse_request(msgs({"role": "user", "content": [part]}))
    image = body["messages"][0]["content"][0]["image"]
    assert image == {
        "format": "jpeg",
        "source": {"s3Location": {"uri": "s3://bucket/cats/cat.JPG"}},
    }


def test_remote_image_url_is_a_clear_bad_request() -> None:
    """An https image URL is refused: Bedrock cannot fetch it."""
    part = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    with pytest.raises(BadRequest, match="cannot fetch image URLs"):
        to_converse_request(msgs({"role": "user", "content": [part]}))


def test_unsupported_image_format_is_bad_request() -> None:
    """A data: image Bedrock cannot read (e.g. TIFF) is refused by name."""
    part = {"type": "image_url", "image_url": {"url": f"data:image/tiff;base64,{PNG}"}}
    with pytest.raises(BadRequest, match="tiff"):
        to_converse_request(msgs({"role": "user", "content": [part]}))


def test_pdf_file_part_becomes_a_document_with_a_safe_name() -> None:
    """A base64 PDF becomes a document block named from its file name, Bedrock's charset."""
    part = {
        "type": "file",
        "file": {
            "filename": "Q3_report (final).pdf",
            "file_data": "data:application/pdf;base64,JVBE",
        },
    }
    body = to_converse_request(msgs({"role": "user", "content": [part]}))
    assert body["messages"][0]["content"] == [
        {"document": {"format": "pdf", "name": "Q3 report (final)", "source": {"bytes": "JVBE"}}}
    ]


def test_unsupported_content_part_is_bad_request() -> None:
    """An audio part is refused by name."""
    part = {"type": "input_audio", "input_audio": {"data": "x", "format": "wav"}}
    with pytest.raises(BadRequest, match="input_audio"):
        to_converse_request(msgs({"role": "user", "content": [part]}))


def test_tools_become_tool_specs() -> None:
    """Function tools become toolConfig.tools[].toolSpec with the JSON Schema under json."""
    body = to_converse_request(msgs(USER_X, tools=[TOOL]))
    assert body["toolConfig"] == {
        "tools": [
            {
                "toolSpec": {
                    "name": "get_weather",
                    "description": "Weather in a city",
                    "inputSchema": {"json": TOOL["function"]["parameters"]},
                }
            }
        ]
    }


def test_tool_without_parameters_gets_an_empty_object_schema() -> None:
    """A tool with no parameters still gets the inputSchema Bedrock requires."""
    bare = {"type": "function", "function": {"name": "now"}}
    spec = to_converse_request(msgs(USER_X, tools=[bare]))["toolConfig"]["tools"][0]["toolSpec"]
    assert spec == {"name": "now", "inputSchema": {"json": {"type": "object", "properties": {}}}}


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"auto": {}}),
        ("required", {"any": {}}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            {"tool": {"name": "get_weather"}},
        ),
    ],
)
def test_tool_choice_mapping(choice: Any, expected: dict[str, Any]) -> None:
    """tool_choice maps to toolChoice auto / any / tool."""
    body = to_converse_request(msgs(USER_X, tools=[TOOL], tool_choice=choice))
    assert body["toolConfig"]["toolChoice"] == expected


def test_tool_choice_none_offers_no_tools() -> None:
    """Converse has no "none": the tools are left out instead."""
    assert "toolConfig" not in to_converse_request(msgs(USER_X, tools=[TOOL], tool_choice="none"))


def test_tool_choice_none_keeps_tools_once_the_conversation_used_them() -> None:
    """With toolUse blocks in the history Bedrock requires toolConfig, so tools stay."""
    call = {"id": "t1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
    body = to_converse_request(
        msgs(
            USER_X,
            {"role": "assistant", "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "t1", "content": "sunny"},
            tools=[TOOL],
            tool_choice="none",
        )
    )
    assert body["toolConfig"]["tools"][0]["toolSpec"]["name"] == "get_weather"
    assert "toolChoice" not in body["toolConfig"]


def test_tool_call_round_trip_becomes_tool_use_and_tool_result() -> None:
    """tool_calls become toolUse blocks; tool messages become toolResult blocks of a user turn."""
    calls = [
        {
            "id": "t1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
        },
        {"id": "t2", "type": "function", "function": {"name": "get_weather", "arguments": ""}},
    ]
    body = to_converse_request(
        msgs(
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "content": "Checking.", "tool_calls": calls},
            {"role": "tool", "tool_call_id": "t1", "content": "18C"},
            {"role": "tool", "tool_call_id": "t2", "content": [{"type": "text", "text": "20C"}]},
            tools=[TOOL],
        )
    )
    assert body["messages"][1] == {
        "role": "assistant",
        "content": [
            {"text": "Checking."},
            {"toolUse": {"toolUseId": "t1", "name": "get_weather", "input": {"city": "Paris"}}},
            {"toolUse": {"toolUseId": "t2", "name": "get_weather", "input": {}}},
        ],
    }
    assert body["messages"][2] == {
        "role": "user",
        "content": [
            {"toolResult": {"toolUseId": "t1", "content": [{"text": "18C"}]}},
            {"toolResult": {"toolUseId": "t2", "content": [{"text": "20C"}]}},
        ],
    }


def test_legacy_function_call_round_trip() -> None:
    """A legacy function_call and its function message pair up through a made-up id."""
    body = to_converse_request(
        msgs(
            USER_X,
            {"role": "assistant", "function_call": {"name": "get_weather", "arguments": "{}"}},
            {"role": "function", "name": "get_weather", "content": "sunny"},
            functions=[TOOL["function"]],
        )
    )
    use = body["messages"][1]["content"][0]["toolUse"]
    result = body["messages"][2]["content"][0]["toolResult"]
    assert use["toolUseId"] == result["toolUseId"] == "call_legacy_1"
    assert body["toolConfig"]["tools"][0]["toolSpec"]["name"] == "get_weather"


@pytest.mark.parametrize(
    "bad",
    [
        msgs(USER_X, {"role": "assistant", "tool_calls": [{"function": {"arguments": "{}"}}]}),
        msgs(
            USER_X,
            {"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "[1]"}}]},
        ),
        msgs(USER_X, {"role": "tool", "content": "no id"}),
        msgs(USER_X, {"role": "function", "content": "no call before"}),
        msgs({"role": "narrator", "content": "x"}),
        {"messages": []},
        msgs(USER_X, n=2),
        msgs(USER_X, tools=[{"type": "code_interpreter"}]),
    ],
    ids=[
        "call-without-name",
        "arguments-not-object",
        "tool-without-id",
        "orphan-function",
        "unknown-role",
        "no-messages",
        "n-2",
        "non-function-tool",
    ],
)
def test_malformed_requests_are_bad_requests(bad: dict[str, Any]) -> None:
    """Requests Converse cannot express are refused as the caller's fault."""
    with pytest.raises(BadRequest):
        to_converse_request(bad)


def test_inference_config() -> None:
    """max tokens, temperature (capped at 1), top_p and stop go to inferenceConfig."""
    body = to_converse_request(
        msgs(USER_X, max_completion_tokens=99, temperature=1.7, top_p=0.9, stop="END")
    )
    assert body["inferenceConfig"] == {
        "maxTokens": 99,
        "temperature": 1.0,
        "topP": 0.9,
        "stopSequences": ["END"],
    }


def test_no_parameters_means_no_inference_config() -> None:
    """A request without sampling parameters leaves the model's defaults alone."""
    assert to_converse_request(msgs(USER_X)) == {
        "messages": [{"role": "user", "content": [{"text": "x"}]}]
    }


def test_deployment_extras_are_merged_into_the_body() -> None:
    """guardrailConfig and additionalModelRequestFields from the deployment reach the body."""
    extra = {"guardrailConfig": {"guardrailIdentifier": "g1", "guardrailVersion": "1"}}
    assert (
        to_converse_request(msgs(USER_X), extra=extra)["guardrailConfig"]["guardrailIdentifier"]
        == "g1"
    )


def test_the_request_is_not_mutated() -> None:
    """Translation leaves the caller's request untouched."""
    request = msgs(USER_X, tools=[TOOL], tool_choice="required", stop=["a"])
    before = copy.deepcopy(request)
    to_converse_request(request)
    assert request == before


@pytest.mark.parametrize(
    ("stop", "expected"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("guardrail_intervened", "content_filter"),
        ("content_filtered", "content_filter"),
        ("something_new", "stop"),
    ],
)
def test_finish_reason_mapping(stop: str, expected: str) -> None:
    """Each Converse stopReason maps to its OpenAI finish_reason."""
    assert finish_reason(stop) == expected


def test_response_with_text_and_tool_use() -> None:
    """A Converse answer with text and toolUse becomes a valid completion with tool_calls."""
    body = from_converse(
        {
            "output": {
                "message": {
                    "role": "assistant",
                    "content": [
                        {"reasoningContent": {"reasoningText": {"text": "hmm"}}},
                        {"text": "Checking."},
                        {
                            "toolUse": {
                                "toolUseId": "tu1",
                                "name": "get_weather",
                                "input": {"city": "P"},
                            }
                        },
                    ],
                }
            },
            "stopReason": "tool_use",
            "usage": {"inputTokens": 3, "outputTokens": 4, "totalTokens": 7},
        },
        model="anthropic.claude-x",
        created=1,
    )
    completion = check_completion(body)
    message = completion.choices[0].message
    assert message.content == "Checking." and completion.choices[0].finish_reason == "tool_calls"
    assert message.tool_calls is not None and message.tool_calls[0].id == "tu1"
    assert message.tool_calls[0].function.arguments == '{"city":"P"}'  # type: ignore[union-attr]
    assert completion.model == "anthropic.claude-x"


def test_usage_counts_cache_tokens_as_prompt_tokens() -> None:
    """Cache reads and writes are prompt tokens; reads are reported as cached."""
    used = usage_of(
        {
            "inputTokens": 10,
            "outputTokens": 5,
            "cacheReadInputTokens": 100,
            "cacheWriteInputTokens": 7,
        }
    )
    assert used == {
        "prompt_tokens": 117,
        "completion_tokens": 5,
        "total_tokens": 122,
        "prompt_tokens_details": {"cached_tokens": 100},
    }


# -- stream events -----------------------------------------------------------------------------


def _translate(
    events: list[tuple[str, dict[str, Any]]], *, usage: bool = False
) -> list[dict[str, Any]]:
    translator = StreamTranslator(model="m", created=1, include_usage=usage)
    bodies = [chunk.body for name, data in events for chunk in translator.feed(name, data)]
    return bodies + [chunk.body for chunk in translator.close()]


def test_stream_events_become_valid_chunks() -> None:
    """messageStart, text deltas and messageStop become role, content and finish chunks."""
    bodies = _translate(
        [
            ("messageStart", {"role": "assistant"}),
            ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hi"}}),
            ("contentBlockStop", {"contentBlockIndex": 0}),
            ("messageStop", {"stopReason": "max_tokens"}),
            ("metadata", {"usage": {"inputTokens": 2, "outputTokens": 1}}),
        ],
        usage=True,
    )
    check_chunks(bodies)
    assert [b["choices"][0]["delta"] for b in bodies[:2]] == [
        {"role": "assistant", "content": "", "refusal": None},
        {"content": "Hi"},
    ]
    assert bodies[2]["choices"][0]["finish_reason"] == "length"
    assert bodies[3]["usage"] == {"prompt_tokens": 2, "completion_tokens": 1, "total_tokens": 3}


def test_stream_tool_use_becomes_tool_call_deltas() -> None:
    """A toolUse block becomes a tool_calls delta with id and name, then argument pieces."""
    bodies = _translate(
        [
            ("messageStart", {"role": "assistant"}),
            (
                "contentBlockStart",
                {"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "tu1", "name": "f"}}},
            ),
            (
                "contentBlockDelta",
                {"contentBlockIndex": 1, "delta": {"toolUse": {"input": '{"a"'}}},
            ),
            ("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": ":1}"}}}),
            ("messageStop", {"stopReason": "tool_use"}),
        ]
    )
    check_chunks(bodies)
    calls = [t for b in bodies for c in b["choices"] for t in c["delta"].get("tool_calls") or []]
    assert calls[0] == {
        "index": 0,
        "id": "tu1",
        "type": "function",
        "function": {"name": "f", "arguments": ""},
    }
    assert "".join(c["function"]["arguments"] for c in calls) == '{"a":1}'
    assert bodies[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_stream_is_done_only_after_metadata_follows_message_stop() -> None:
    """messageStop completes the answer; metadata after it ends the stream."""
    translator = StreamTranslator(model="m", created=1, include_usage=False)
    translator.feed("messageStop", {"stopReason": "end_turn"})
    assert (translator.stopped, translator.done) == (True, False)
    translator.feed("metadata", {"usage": {}})
    assert translator.done


def test_decoding_a_corrupt_message_is_connection_failed() -> None:
    """A message whose CRC does not match is a broken stream, not an answer."""
    from botocore.eventstream import EventStreamBuffer

    frame = bytearray(event_message({":message-type": "event"}, b"{}"))
    frame[-1] ^= 0xFF
    buffer = EventStreamBuffer()
    buffer.add_data(bytes(frame))
    with pytest.raises(ConnectionFailed, match="malformed bedrock event stream"):
        decode_messages(buffer, deployment="d")


# -- errors ------------------------------------------------------------------------------------


def test_error_type_comes_from_the_header_or_the_body() -> None:
    """x-amzn-ErrorType wins; the body's __type is read without its namespace."""
    header = {"X-Amzn-ErrorType": "ThrottlingException:http://internal.amazon.com/coral/x/"}
    assert error_type_of(header, None) == "ThrottlingException"
    body = {"__type": "com.amazon.coral.service#UnrecognizedClientException"}
    assert error_type_of({}, body) == "UnrecognizedClientException"
    assert error_type_of({}, {"message": "x"}) is None


@pytest.mark.parametrize(
    ("error_type", "message", "status", "expected"),
    [
        ("ThrottlingException", "Too many requests", 429, Kind.RATE_LIMITED),
        ("ServiceQuotaExceededException", "quota", 400, Kind.RATE_LIMITED),
        ("ModelNotReadyException", "not ready", 429, Kind.OVERLOADED),
        ("ServiceUnavailableException", "unavailable", 503, Kind.OVERLOADED),
        ("InternalServerException", "oops", 500, Kind.SERVER_ERROR),
        ("ModelErrorException", "model failed", 424, Kind.SERVER_ERROR),
        ("ModelTimeoutException", "took too long", 408, Kind.TIMEOUT),
        ("ValidationException", "Input is too long for requested model.", 400, Kind.CONTEXT_WINDOW),
        ("ValidationException", "Too many input tokens. Max: 8192", 400, Kind.CONTEXT_WINDOW),
        ("ValidationException", "prompt is too long: 210000 tokens", 400, Kind.CONTEXT_WINDOW),
        ("ValidationException", "The provided model identifier is invalid.", 400, Kind.NOT_FOUND),
        ("ValidationException", "messages.0: field required", 400, Kind.BAD_REQUEST),
        ("AccessDeniedException", "no access to the model", 403, Kind.AUTH),
        ("UnrecognizedClientException", "The security token is invalid.", 403, Kind.AUTH),
        ("InvalidSignatureException", "signature does not match", 403, Kind.AUTH),
        (
            "ExpiredTokenException",
            "The security token included in the request is expired",
            403,
            Kind.AUTH,
        ),
        ("ResourceNotFoundException", "Model not found", 404, Kind.NOT_FOUND),
        (None, "Bad Gateway", 502, Kind.SERVER_ERROR),
    ],
)
def test_error_kinds(error_type: str | None, message: str, status: int, expected: Kind) -> None:
    """Each AWS error type (and message, for ValidationException) maps to its kind."""
    assert error_kind(error_type, message, status, None) is expected


def test_model_stream_error_uses_the_models_own_status() -> None:
    """A modelStreamErrorException carrying originalStatusCode 529 is an overload."""
    parsed = {"message": "x", "originalStatusCode": 529, "originalMessage": "Overloaded"}
    assert error_kind("ModelStreamErrorException", "x", None, parsed) is Kind.OVERLOADED


def test_a_trailing_assistant_message_stays_the_final_turn() -> None:
    """An assistant message at the end goes as the last turn, which Claude on Converse
    continues (prefill)."""
    body = to_converse_request(msgs(USER_X, {"role": "assistant", "content": "The quick"}))
    assert body["messages"][-1] == {"role": "assistant", "content": [{"text": "The quick"}]}
