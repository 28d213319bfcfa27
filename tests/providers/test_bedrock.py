"""The Bedrock adapter against a fake Bedrock that checks SigV4 signatures: Converse and
ConverseStream, credentials through botocore's chain, errors, the probe, and failover."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

import pytest

from failover.errors import (
    AttemptTimeout,
    AuthFailed,
    BadRequest,
    ConfigError,
    ConnectionFailed,
    ContextWindowExceeded,
    ModelNotFound,
    Overloaded,
    ProviderError,
    RateLimited,
    ServerError,
)
from failover.providers.bedrock import BedrockAdapter
from failover.transport import Transport
from fakes import Delay, FakeBedrock, Reply, Stream
from fakes.bedrock_server import ACCESS_KEY, SECRET_KEY, event, event_message, exception_message

from .support import USER_HI, check_chunks, check_completion, collect, text_of, unreadable

MODEL = "anthropic.claude-sonnet-4-5-20250929-v1:0"
PROFILE_ARN = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-v1:0"
TOKEN = "FwoGZXIvYXdzEFAKESESSIONTOKEN//////////wEaDKx9"
TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
TOOL_REQUEST = {"messages": [{"role": "user", "content": "Weather in Paris?"}], "tools": [TOOL]}
BOUND = 5.0  # seconds; a correct adapter needs milliseconds


def _adapter(server: FakeBedrock, transport: Transport, **kwargs: Any) -> BedrockAdapter:
    settings: dict[str, Any] = {
        "model": MODEL,
        "region": "us-east-1",
        "base_url": server.base_url,
        "control_url": server.base_url,
        "transport": transport,
        **kwargs,
    }
    return BedrockAdapter(**settings)


def _texts(error: BaseException) -> str:
    """Everything an error could show: str, repr, body, and its whole cause chain."""
    parts: list[str] = []
    seen: BaseException | None = error
    while seen is not None:
        parts += [str(seen), repr(seen), str(getattr(seen, "body", "")), str(vars(seen))]
        seen = seen.__cause__ or seen.__context__
    return "\n".join(parts)


# -- whole answers -----------------------------------------------------------------------------


async def test_complete_posts_a_signed_converse_request(
    bedrock: BedrockAdapter, bedrock_server: FakeBedrock
) -> None:
    """The request goes to /model/{id}/converse, SigV4-signed, with the Converse body."""
    await bedrock.complete({**USER_HI, "max_tokens": 50})
    received = bedrock_server.requests[0]
    assert received.raw_path == f"/model/{MODEL}/converse"
    assert received.headers["authorization"].startswith(
        f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/"
    )
    assert "/us-east-1/bedrock/aws4_request" in received.headers["authorization"]
    assert bedrock_server.verified == 1
    assert received.json == {
        "messages": [{"role": "user", "content": [{"text": "Hi"}]}],
        "inferenceConfig": {"maxTokens": 50},
    }


async def test_complete_returns_an_openai_completion(bedrock: BedrockAdapter) -> None:
    """A Converse answer comes back as a valid OpenAI chat.completion with usage."""
    completion = check_completion((await bedrock.complete(USER_HI)).body)
    assert completion.choices[0].message.content == "Hello from the fake Bedrock."
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.total_tokens) == (12, 19)
    assert completion.model == MODEL


async def test_tool_use_answer_becomes_tool_calls(
    bedrock: BedrockAdapter, bedrock_server: FakeBedrock
) -> None:
    """A toolUse answer becomes tool_calls; the tools were sent as toolSpecs."""
    uses = [("tooluse_1", "get_weather", {"city": "Paris"})]
    bedrock_server.push(Reply(FakeBedrock.converse(None, tool_uses=uses, stop_reason="tool_use")))
    completion = check_completion((await bedrock.complete(TOOL_REQUEST)).body)
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert (call.id, call.function.arguments) == ("tooluse_1", '{"city":"Paris"}')  # type: ignore[union-attr]
    spec = bedrock_server.requests[0].json["toolConfig"]["tools"][0]["toolSpec"]
    assert spec["name"] == "get_weather"


async def test_images_and_system_reach_bedrock_as_blocks(
    bedrock: BedrockAdapter, bedrock_server: FakeBedrock
) -> None:
    """A system prompt becomes a system block and a data: image an image block."""
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/webp;base64,UklGRg=="}},
    ]
    request = {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": content},
        ]
    }
    await bedrock.complete(request)
    sent = bedrock_server.requests[0].json
    assert sent["system"] == [{"text": "Be brief."}]
    assert sent["messages"][0]["content"][1] == {
        "image": {"format": "webp", "source": {"bytes": "UklGRg=="}}
    }


async def test_remote_image_is_refused_before_any_call(
    bedrock: BedrockAdapter, bedrock_server: FakeBedrock
) -> None:
    """An https image URL is a BadRequest (a 400 for the client) and nothing is sent."""
    part = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    with pytest.raises(BadRequest, match="cannot fetch image URLs"):
        await bedrock.complete({"messages": [{"role": "user", "content": [part]}]})
    assert bedrock_server.requests == []


async def test_malformed_fields_are_the_callers_fault(bedrock: BedrockAdapter) -> None:
    """A request field that breaks translation is a BadRequest, never a server error."""
    with pytest.raises(BadRequest):
        await bedrock.complete({**USER_HI, "temperature": "hot"})


async def test_guardrail_stop_is_content_filter(
    bedrock: BedrockAdapter, bedrock_server: FakeBedrock
) -> None:
    """A guardrail that intervened finishes the answer with content_filter."""
    bedrock_server.push(Reply(FakeBedrock.converse("Sorry.", stop_reason="guardrail_intervened")))
    completion = check_completion((await bedrock.complete(USER_HI)).body)
    assert completion.choices[0].finish_reason == "content_filter"


async def test_deployment_options_reach_the_body(
    bedrock_server: FakeBedrock, transport: Transport, aws_env: Path
) -> None:
    """guardrail_config and additional_model_request_fields options are sent with each request."""
    options = {
        "guardrail_config": {"guardrailIdentifier": "gr-1", "guardrailVersion": "2"},
        "additional_model_request_fields": {"top_k": 40},
    }
    await _adapter(bedrock_server, transport, options=options).complete(USER_HI)
    sent = bedrock_server.requests[0].json
    assert sent["guardrailConfig"]["guardrailIdentifier"] == "gr-1"
    assert sent["additionalModelRequestFields"] == {"top_k": 40}


async def test_inference_profile_arn_is_one_quoted_path_segment(
    bedrock_server: FakeBedrock, transport: Transport, aws_env: Path
) -> None:
    """An inference profile ARN is sent with its "/" quoted, and the signature still holds."""
    await _adapter(bedrock_server, transport, model=PROFILE_ARN).complete(USER_HI)
    received = bedrock_server.requests[0]
    quoted = PROFILE_ARN.replace("/", "%2F")
    assert received.raw_path == f"/model/{quoted}/converse" and bedrock_server.verified == 1


async def test_embeddings_are_not_supported(bedrock: BedrockAdapter) -> None:
    """Embeddings through Converse do not exist: a clear BadRequest."""
    with pytest.raises(BadRequest, match="embeddings"):
        await bedrock.embeddings({"input": "x"})


# -- streams -----------------------------------------------------------------------------------


async def test_stream_translates_events(
    bedrock: BedrockAdapter, bedrock_server: FakeBedrock
) -> None:
    """ConverseStream events become valid chunks: the role first, text, then the finish."""
    bedrock_server.push(bedrock_server.stream(["Hel", "lo", "!"]))
    bodies = await collect(bedrock.stream(USER_HI))
    chunks = check_chunks(bodies)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert text_of(bodies) == "Hello!"
    assert chunks[-1].choices[0].finish_reason == "stop"
    received = bedrock_server.requests[0]
    assert received.raw_path == f"/model/{MODEL}/converse-stream" and bedrock_server.verified == 1


async def test_stream_tool_use_becomes_tool_call_deltas(
    bedrock: BedrockAdapter, bedrock_server: FakeBedrock
) -> None:
    """A streamed toolUse block becomes tool_calls deltas with index, id, name and arguments."""
    tool = ("tooluse_9", "get_weather", ['{"city"', ': "Paris"}'])
    bedrock_server.push(bedrock_server.stream(["Let me check."], tool=tool))
    bodies = await collect(bedrock.stream(TOOL_REQUEST))
    check_chunks(bodies)
    calls = [t for b in bodies for c in b["choices"] for t in c["delta"].get("tool_calls") or []]
    assert (calls[0]["index"], calls[0]["id"], calls[0]["function"]["name"]) == (
        0,
        "tooluse_9",
        "get_weather",
    )
    assert "".join(c["function"]["arguments"] for c in calls) == '{"city": "Paris"}'
    assert bodies[-1]["choices"][0]["finish_reason"] == "tool_calls"


async def test_stream_include_usage_adds_a_usage_chunk(bedrock: BedrockAdapter) -> None:
    """With stream_options.include_usage the metadata event becomes a last usage chunk."""
    bodies = await collect(bedrock.stream({**USER_HI, "stream_options": {"include_usage": True}}))
    check_chunks(bodies)
    assert bodies[-1]["choices"] == [] and bodies[-1]["usage"]["total_tokens"] == 19
    assert bodies[-2]["choices"][0]["finish_reason"] == "stop"


async def test_stream_without_usage_request_has_no_usage_chunk(bedrock: BedrockAdapter) -> None:
    """Without include_usage every chunk has a choice."""
    bodies = await collect(bedrock.stream(USER_HI))
    assert all(b["choices"] for b in bodies)


@pytest.mark.parametrize(
    ("exception", "expected"),
    [
        (exception_message("throttlingException", "Too many requests"), RateLimited),
        (exception_message("modelStreamErrorException", "The model failed"), ServerError),
        (exception_message("internalServerException", "Internal error"), ServerError),
        (exception_message("serviceUnavailableException", "Unavailable"), Overloaded),
        (
            exception_message("validationException", "Input is too long for requested model."),
            ContextWindowExceeded,
        ),
        (
            exception_message(
                "modelStreamErrorException",
                "x",
                originalStatusCode=529,
                originalMessage="Overloaded",
            ),
            Overloaded,
        ),
    ],
    ids=["throttling", "model-stream-error", "internal", "unavailable", "too-long", "model-529"],
)
async def test_exception_event_mid_stream_raises_its_error(
    exception: bytes,
    expected: type[ProviderError],
    bedrock: BedrockAdapter,
    bedrock_server: FakeBedrock,
) -> None:
    """An exception message after the first text raises the mapped error, not an end."""
    bedrock_server.push(
        bedrock_server.stream(["Hel", "lo"], exception_after=2, exception=exception)
    )
    seen: list[dict[str, Any]] = []
    with pytest.raises(ProviderError) as caught:
        async for chunk in bedrock.stream(USER_HI):
            seen.append(chunk.body)
    assert type(caught.value) is expected and text_of(seen) == "Hel"
    assert caught.value.deployment == bedrock.name


async def test_stream_cut_mid_way_is_connection_failed(
    bedrock: BedrockAdapter, bedrock_server: FakeBedrock
) -> None:
    """A connection lost after some events raises ConnectionFailed."""
    bedrock_server.push(bedrock_server.stream(["a", "b", "c"], cut_after=3))
    with pytest.raises(ConnectionFailed):
        await asyncio.wait_for(collect(bedrock.stream(USER_HI)), BOUND)


async def test_stream_ending_before_message_stop_is_connection_failed(
    bedrock: BedrockAdapter, bedrock_server: FakeBedrock
) -> None:
    """A stream whose body ends cleanly but without messageStop was cut short."""
    frames = FakeBedrock.events(["a", "b"])[:3]
    bedrock_server.push(Stream(frames, content_type="application/vnd.amazon.eventstream"))
    with pytest.raises(ConnectionFailed, match="messageStop"):
        await collect(bedrock.stream(USER_HI))


async def test_stream_ending_inside_a_message_is_connection_failed(
    bedrock: BedrockAdapter, bedrock_server: FakeBedrock
) -> None:
    """A body that stops half-way through an event message raises ConnectionFailed."""
    frames = FakeBedrock.events(["a", "b"])
    bedrock_server.push(Stream([*frames[:2], frames[2][:10]]))
    with pytest.raises(ConnectionFailed, match="inside an event"):
        await collect(bedrock.stream(USER_HI))


async def test_event_with_broken_json_yields_an_unreadable_chunk(
    bedrock: BedrockAdapter, bedrock_server: FakeBedrock
) -> None:
    """A well-framed event whose payload is not JSON becomes a chunk whose body does not
    parse (the router skips and counts it); the events after it are read."""
    broken = event_message(
        {":event-type": "contentBlockDelta", ":message-type": "event"}, b'{"delta": {"te'
    )
    frames = FakeBedrock.events(["a"])
    bedrock_server.push(Stream([frames[0], broken, *frames[1:]]))
    chunks = [chunk async for chunk in bedrock.stream(USER_HI)]
    skipped = [c for c in chunks if unreadable(c)]
    assert [c.raw for c in skipped] == [b'{"delta": {"te']
    assert text_of([c.body for c in chunks if c not in skipped]) == "a"


async def test_stream_that_stopped_without_metadata_is_complete(
    bedrock: BedrockAdapter, bedrock_server: FakeBedrock
) -> None:
    """After messageStop the answer is whole: a body ending before metadata is no break."""
    frames = FakeBedrock.events(["a", "b"])[:-1]
    bedrock_server.push(Stream(frames, content_type="application/vnd.amazon.eventstream"))
    bodies = await collect(bedrock.stream({**USER_HI, "stream_options": {"include_usage": True}}))
    assert text_of(bodies) == "ab" and bodies[-1]["choices"][0]["finish_reason"] == "stop"


async def test_protocol_error_message_raises_its_error(
    bedrock: BedrockAdapter, bedrock_server: FakeBedrock
) -> None:
    """An event-stream error message (code and message in headers) maps like an exception."""
    error = event_message(
        {
            ":message-type": "error",
            ":error-code": "ThrottlingException",
            ":error-message": "Rate exceeded",
        },
        b"",
    )
    bedrock_server.push(Stream([*FakeBedrock.events(["a"])[:2], error]))
    with pytest.raises(RateLimited, match="Rate exceeded"):
        await collect(bedrock.stream(USER_HI))


async def test_message_of_unknown_type_is_connection_failed(
    bedrock: BedrockAdapter, bedrock_server: FakeBedrock
) -> None:
    """A message that is neither event, exception nor error is not Bedrock speaking."""
    odd = event_message({":message-type": "gossip"}, b"{}")
    bedrock_server.push(Stream([FakeBedrock.events(["a"])[0], odd]))
    with pytest.raises(ConnectionFailed, match="unknown type"):
        await collect(bedrock.stream(USER_HI))


async def test_unknown_events_are_skipped(
    bedrock: BedrockAdapter, bedrock_server: FakeBedrock
) -> None:
    """An event type added later carries nothing to translate and ends nothing."""
    frames = FakeBedrock.events(["a", "b"])
    novel = event("someFutureEvent", {"contentBlockIndex": 0})
    bedrock_server.push(Stream([frames[0], novel, *frames[1:]]))
    assert text_of(await collect(bedrock.stream(USER_HI))) == "ab"


async def test_slow_first_byte_is_waited_for(
    bedrock: BedrockAdapter, bedrock_server: FakeBedrock
) -> None:
    """The adapter sets no deadline of its own: a late stream is still an answer."""
    gate = asyncio.Event()
    bedrock_server.push(Delay(gate, bedrock_server.stream(["late"])))
    task = asyncio.create_task(collect(bedrock.stream(USER_HI)))
    await asyncio.wait_for(bedrock_server.wait_for_requests(1), BOUND)
    assert not task.done()
    gate.set()
    assert text_of(await asyncio.wait_for(task, BOUND)) == "late"


# -- errors ------------------------------------------------------------------------------------

ERRORS = [
    (FakeBedrock.throttled(), RateLimited),
    (FakeBedrock.error(400, "ServiceQuotaExceededException", "quota exceeded"), RateLimited),
    (FakeBedrock.model_not_ready(), Overloaded),
    (FakeBedrock.error(503, "ServiceUnavailableException", "Service unavailable"), Overloaded),
    (FakeBedrock.error(500, "InternalServerException", "Internal server error"), ServerError),
    (FakeBedrock.error(424, "ModelErrorException", "The model failed"), ServerError),
    (FakeBedrock.error(408, "ModelTimeoutException", "Model timed out"), AttemptTimeout),
    (FakeBedrock.input_too_long(), ContextWindowExceeded),
    (FakeBedrock.error(400, "ValidationException", "Malformed input request"), BadRequest),
    (FakeBedrock.error(403, "AccessDeniedException", "You don't have access"), AuthFailed),
    (FakeBedrock.error(404, "ResourceNotFoundException", "Model not found"), ModelNotFound),
]


@pytest.mark.parametrize(
    ("reply", "expected"),
    ERRORS,
    ids=[f"{r.status}-{r.headers['x-amzn-ErrorType'].split(':')[0]}" for r, _ in ERRORS],
)
async def test_error_mapping(
    reply: Reply,
    expected: type[ProviderError],
    bedrock: BedrockAdapter,
    bedrock_server: FakeBedrock,
) -> None:
    """Each Bedrock error answer raises its error class, keeping status, type and message."""
    bedrock_server.push(reply)
    with pytest.raises(ProviderError) as caught:
        await bedrock.complete(USER_HI)
    error = caught.value
    assert type(error) is expected
    assert (error.status, error.deployment) == (reply.status, bedrock.name)
    assert error.code == reply.headers["x-amzn-ErrorType"].split(":")[0]
    assert reply.body["message"] in error.message


async def test_stream_open_errors_are_mapped_too(
    bedrock: BedrockAdapter, bedrock_server: FakeBedrock
) -> None:
    """An error answering a ConverseStream request maps like a Converse one."""
    bedrock_server.push(FakeBedrock.throttled())
    with pytest.raises(RateLimited):
        await collect(bedrock.stream(USER_HI))


async def test_error_type_in_the_body_is_enough(
    bedrock: BedrockAdapter, bedrock_server: FakeBedrock
) -> None:
    """Without x-amzn-ErrorType, the body's __type names the error."""
    body = {"__type": "com.amazon.coral.service#ThrottlingException", "message": "slow down"}
    bedrock_server.push(Reply(body, status=400))
    with pytest.raises(RateLimited):
        await bedrock.complete(USER_HI)


# -- credentials and signatures ----------------------------------------------------------------


async def test_wrong_secret_fails_the_signature_check(
    bedrock: BedrockAdapter, bedrock_server: FakeBedrock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request signed with the wrong secret key gets the 403 InvalidSignatureException."""
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret-key-0000000000000000000")
    with pytest.raises(AuthFailed) as caught:
        await bedrock.complete(USER_HI)
    assert caught.value.code == "InvalidSignatureException" and caught.value.status == 403
    assert bedrock_server.verified == 0


async def test_unknown_access_key_is_auth_failed(
    bedrock: BedrockAdapter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key id AWS does not know gets UnrecognizedClientException: AuthFailed."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAUNKNOWNKEY000000")
    with pytest.raises(AuthFailed, match="security token included in the request is invalid"):
        await bedrock.complete(USER_HI)


async def test_no_secret_appears_in_an_error_or_a_repr(
    bedrock_server: FakeBedrock,
    transport: Transport,
    aws_env: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Key id, secret, session token and signature stay out of errors and reprs, even when
    AWS echoes the canonical request (which holds the session token) in its 403."""
    bedrock_server.credentials = bedrock_server.credentials.__class__(
        ACCESS_KEY, "other-secret-key-1234", TOKEN
    )
    monkeypatch.setenv("AWS_SESSION_TOKEN", TOKEN)
    adapter = _adapter(bedrock_server, transport)
    with pytest.raises(AuthFailed) as caught:
        await adapter.complete(USER_HI)
    signature = bedrock_server.requests[0].headers["authorization"].rpartition("Signature=")[2]
    assert "Canonical String" in caught.value.message  # the echo arrived, scrubbed
    shown = _texts(caught.value) + repr(adapter) + str(adapter)
    for secret in (ACCESS_KEY, SECRET_KEY, TOKEN, signature):
        assert secret not in shown


async def test_botocore_debug_logs_carry_no_secret(
    bedrock: BedrockAdapter,
    bedrock_server: FakeBedrock,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Even at DEBUG, signing logs neither the session token nor the signature."""
    bedrock_server.credentials = bedrock_server.credentials.__class__(ACCESS_KEY, SECRET_KEY, TOKEN)
    monkeypatch.setenv("AWS_SESSION_TOKEN", TOKEN)
    with caplog.at_level(logging.DEBUG):
        await bedrock.complete(USER_HI)
    signature = bedrock_server.requests[0].headers["authorization"].rpartition("Signature=")[2]
    assert bedrock_server.verified == 1
    for secret in (SECRET_KEY, TOKEN, signature):
        assert secret not in caplog.text


async def test_session_token_is_sent_and_signed(
    bedrock: BedrockAdapter, bedrock_server: FakeBedrock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Temporary credentials send x-amz-security-token, covered by the signature."""
    bedrock_server.credentials = bedrock_server.credentials.__class__(ACCESS_KEY, SECRET_KEY, TOKEN)
    monkeypatch.setenv("AWS_SESSION_TOKEN", TOKEN)
    await bedrock.complete(USER_HI)
    received = bedrock_server.requests[0]
    assert received.headers["x-amz-security-token"] == TOKEN
    assert "x-amz-security-token" in received.headers["authorization"]


def _write_profile(folder: Path, name: str, key: str, secret: str) -> None:
    (folder / "credentials").write_text(
        f"[{name}]\naws_access_key_id = {key}\naws_secret_access_key = {secret}\n"
    )


async def test_credentials_from_a_named_profile(
    bedrock_server: FakeBedrock,
    transport: Transport,
    aws_env: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With the profile option, the keys come from that profile of the shared credentials file."""
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(var)
    _write_profile(aws_env, "work", ACCESS_KEY, SECRET_KEY)
    adapter = _adapter(bedrock_server, transport, options={"profile": "work"})
    await adapter.complete(USER_HI)
    assert bedrock_server.verified == 1


async def test_credentials_from_aws_profile(
    bedrock_server: FakeBedrock,
    transport: Transport,
    aws_env: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """AWS_PROFILE picks the profile when the provider names none."""
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(var)
    monkeypatch.setenv("AWS_PROFILE", "team")
    _write_profile(aws_env, "team", ACCESS_KEY, SECRET_KEY)
    await _adapter(bedrock_server, transport).complete(USER_HI)
    assert bedrock_server.verified == 1


async def test_missing_profile_is_auth_failed(
    bedrock_server: FakeBedrock, transport: Transport, aws_env: Path
) -> None:
    """A profile that is not in the files fails the request as AuthFailed, naming it."""
    adapter = _adapter(bedrock_server, transport, profile="nope")
    with pytest.raises(AuthFailed, match="nope"):
        await adapter.complete(USER_HI)
    assert bedrock_server.requests == []


async def test_no_credentials_is_a_clear_auth_failure(
    bedrock_server: FakeBedrock,
    transport: Transport,
    aws_env: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without any credentials the request and the probe say where credentials come from."""
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(var)
    adapter = _adapter(bedrock_server, transport)
    with pytest.raises(AuthFailed, match=r"no AWS credentials found.*AWS_ACCESS_KEY_ID") as caught:
        await adapter.probe()
    assert caught.value.deployment == adapter.name
    with pytest.raises(AuthFailed, match="AWS_PROFILE"):
        await adapter.complete(USER_HI)
    assert bedrock_server.requests == []


_PROCESS = """\
import json, pathlib, sys, datetime
counter = pathlib.Path(sys.argv[1])
n = int(counter.read_text()) + 1 if counter.exists() else 1
counter.write_text(str(n))
# expiring within botocore's refresh window: every use refreshes
expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=5)
print(json.dumps({"Version": 1, "AccessKeyId": f"ASIAROTATING0000000{n}",
                  "SecretAccessKey": f"rotating-secret-{n}", "SessionToken": f"token-{n}",
                  "Expiration": expires.isoformat()}))
"""


async def test_expiring_credentials_are_refreshed_by_botocore(
    bedrock_server: FakeBedrock,
    transport: Transport,
    aws_env: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Temporary credentials about to expire are refreshed before a request is signed."""
    from botocore.credentials import Credentials

    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(var)
    script, counter = aws_env / "creds.py", aws_env / "count"
    script.write_text(_PROCESS)
    (aws_env / "config").write_text(
        f"[profile rotating]\ncredential_process = {sys.executable} {script} {counter}\n"
    )
    adapter = _adapter(bedrock_server, transport, profile="rotating")
    # loading the profile runs the process once; signing the first request refreshes it again
    bedrock_server.credentials = Credentials("ASIAROTATING00000002", "rotating-secret-2", "token-2")
    await adapter.complete(USER_HI)
    bedrock_server.credentials = Credentials("ASIAROTATING00000003", "rotating-secret-3", "token-3")
    await adapter.complete(USER_HI)
    assert bedrock_server.verified == 2 and counter.read_text() == "3"


async def test_a_bedrock_api_key_is_sent_as_a_bearer_token(
    transport: Transport, aws_env: Path
) -> None:
    """With api_key set the request carries the Bedrock API key instead of a SigV4 signature."""
    async with FakeBedrock(api_key="bedrock-api-key-ABSKfake") as server:
        adapter = _adapter(server, transport, api_key="bedrock-api-key-ABSKfake")
        await adapter.complete(USER_HI)
        headers = server.requests[0].headers
    assert headers["authorization"] == "Bearer bedrock-api-key-ABSKfake"
    assert "x-amz-date" not in headers


# -- region --------------------------------------------------------------------------------------


def test_region_picks_the_public_endpoints(aws_env: Path) -> None:
    """Without base_url the runtime and control plane of the region are called."""
    adapter = BedrockAdapter(model=MODEL, region="eu-west-3")
    assert adapter.base_url == "https://bedrock-runtime.eu-west-3.amazonaws.com"
    assert adapter.control_url == "https://bedrock.eu-west-3.amazonaws.com"
    assert adapter.model_url("converse").endswith(f"/model/{MODEL}/converse")


@pytest.mark.parametrize("var", ["AWS_REGION", "AWS_DEFAULT_REGION"])
def test_region_from_the_environment(
    var: str, aws_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AWS_REGION or AWS_DEFAULT_REGION stand in for the region option."""
    monkeypatch.setenv(var, "ap-northeast-1")
    assert BedrockAdapter(model=MODEL).region == "ap-northeast-1"


def test_region_from_the_profile_config(aws_env: Path) -> None:
    """The named profile's region in ~/.aws/config is used when nothing else sets one."""
    (aws_env / "config").write_text("[profile work]\nregion = ca-central-1\n")
    assert BedrockAdapter(model=MODEL, options={"profile": "work"}).region == "ca-central-1"


def test_no_region_is_a_config_error(aws_env: Path) -> None:
    """Without a region anywhere, building the adapter fails and says how to set one."""
    with pytest.raises(ConfigError, match=r"providers\.aws\.options\.region.*AWS_REGION"):
        BedrockAdapter(model=MODEL, provider_name="aws")


# -- probe -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "path"),
    [
        (MODEL, f"/foundation-models/{MODEL}"),
        ("us.anthropic.claude-v1:0", "/inference-profiles/us.anthropic.claude-v1:0"),
        (PROFILE_ARN, f"/inference-profiles/{PROFILE_ARN.replace('/', '%2F')}"),
        (
            "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-pro-v1:0",
            "/foundation-models/amazon.nova-pro-v1:0",
        ),
        ("arn:aws:bedrock:us-east-1:123456789012:prompt/P1", "/inference-profiles?maxResults=1"),
    ],
    ids=["model-id", "profile-id", "profile-arn", "model-arn", "other-arn"],
)
async def test_probe_gets_the_model_from_the_control_plane(
    model: str, path: str, bedrock_server: FakeBedrock, transport: Transport, aws_env: Path
) -> None:
    """The probe is a signed GET describing the model, profile or ARN."""
    await _adapter(bedrock_server, transport, model=model).probe()
    received = bedrock_server.requests[0]
    assert (received.method, received.raw_path) == ("GET", path)
    assert bedrock_server.verified == 1


async def test_probe_of_an_unknown_model_is_model_not_found(
    bedrock: BedrockAdapter, bedrock_server: FakeBedrock
) -> None:
    """A control plane answering ResourceNotFoundException fails the probe as not found."""
    bedrock_server.push(FakeBedrock.error(404, "ResourceNotFoundException", "no such model"))
    with pytest.raises(ModelNotFound):
        await bedrock.probe()
