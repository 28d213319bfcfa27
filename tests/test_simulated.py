"""The simulated provider: OpenAI-exact shapes, pacing on the injected clock, failure modes."""

from __future__ import annotations

import base64
import random
import struct
from typing import Any

import pytest
from openai.types import CreateEmbeddingResponse
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from failover.clock import FakeClock
from failover.errors import (
    BadRequest,
    ConfigError,
    ConnectionFailed,
    Overloaded,
    RateLimited,
    ServerError,
)
from failover.providers.simulated import SimulatedProvider
from failover.types import BaseDeployment, Chunk
from openapi_schema import validate

HELLO = {"messages": [{"role": "user", "content": "hello there big world"}]}
WEATHER_TOOL = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}},
}


def assert_spec(body: dict[str, Any], schema: str) -> None:
    validate(schema, body)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make(clock: FakeClock, **options: Any) -> SimulatedProvider:
    return SimulatedProvider(
        name="sim/m", model="m", options=options, clock=clock, rng=random.Random(7)
    )


async def collect(provider: SimulatedProvider, request: dict[str, Any]) -> list[dict[str, Any]]:
    return [chunk.body async for chunk in provider.stream(request)]


async def timed_stream(
    clock: FakeClock, provider: SimulatedProvider, request: dict[str, Any]
) -> list[tuple[float, Chunk]]:
    start = clock.now()
    async with clock.autojump():
        return [(clock.now() - start, c) async for c in provider.stream(request)]


async def timed_complete(clock: FakeClock, provider: SimulatedProvider) -> float:
    start = clock.now()
    async with clock.autojump():
        await provider.complete(HELLO)
    return clock.now() - start


# -- shapes --


async def test_completion_validates_as_openai_sdk_type_and_spec(clock: FakeClock) -> None:
    """A whole answer parses as the SDK's ChatCompletion and matches the published schema."""
    body = (await make(clock).complete(HELLO)).body
    ChatCompletion.model_validate(body)
    assert_spec(body, "CreateChatCompletionResponse")


async def test_completion_carries_openai_exact_choice_keys(clock: FakeClock) -> None:
    """The choice has refusal and logprobs null and finish_reason stop, as OpenAI sends."""
    choice = (await make(clock).complete(HELLO)).body["choices"][0]
    assert choice == {
        "index": 0,
        "message": {"role": "assistant", "content": choice["message"]["content"], "refusal": None},
        "logprobs": None,
        "finish_reason": "stop",
    }


async def test_stream_chunks_validate_as_sdk_type_and_spec(clock: FakeClock) -> None:
    """Every stream chunk parses as ChatCompletionChunk and matches the published schema."""
    for body in await collect(make(clock), HELLO):
        ChatCompletionChunk.model_validate(body)
        assert_spec(body, "CreateChatCompletionStreamResponse")


async def test_stream_is_role_then_content_then_stop(clock: FakeClock) -> None:
    """The role chunk comes first, then content, then an empty delta with finish_reason stop."""
    chunks = await collect(make(clock, reply="a b"), HELLO)
    deltas = [c["choices"][0]["delta"] for c in chunks]
    reasons = [c["choices"][0]["finish_reason"] for c in chunks]
    assert deltas == [
        {"role": "assistant", "content": "", "refusal": None},
        {"content": "a"},
        {"content": " b"},
        {},
    ]
    assert reasons == [None, None, None, "stop"]


async def test_every_chunk_has_null_logprobs_and_one_id(clock: FakeClock) -> None:
    """Each chunk carries logprobs null and the same id, object and model."""
    chunks = await collect(make(clock), HELLO)
    assert {c["id"] for c in chunks} == {chunks[0]["id"]}
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == "m" for c in chunks)
    assert all(c["choices"][0]["logprobs"] is None for c in chunks)


async def test_stream_content_joins_to_the_whole_answer(clock: FakeClock) -> None:
    """The streamed content concatenates to what complete() answers."""
    provider = make(clock)
    whole = (await provider.complete(HELLO)).text
    chunks = await collect(provider, HELLO)
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == whole


async def test_include_usage_adds_a_final_usage_chunk(clock: FakeClock) -> None:
    """With stream_options.include_usage, usage is null until a last chunk with no choices."""
    request = {**HELLO, "stream_options": {"include_usage": True}}
    chunks = await collect(make(clock, reply="{last_user}"), request)
    for body in chunks:
        assert_spec(body, "CreateChatCompletionStreamResponse")
    assert [c["usage"] for c in chunks[:-1]] == [None] * (len(chunks) - 1)
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {"prompt_tokens": 4, "completion_tokens": 4, "total_tokens": 8}


async def test_usage_counts_prompt_and_reply_words(clock: FakeClock) -> None:
    """Usage counts words of the prompt and of the reply as tokens."""
    body = (await make(clock, reply="one two three").complete(HELLO)).body
    assert body["usage"] == {"prompt_tokens": 4, "completion_tokens": 3, "total_tokens": 7}


# -- reply text --


async def test_default_reply_echoes_the_last_user_message(clock: FakeClock) -> None:
    """Without a template the reply names the model and repeats the last user message."""
    request = {"messages": [{"role": "user", "content": "first"}, {"role": "user", "content": "x"}]}
    assert (await make(clock).complete(request)).text == "Simulated reply from m: x"


async def test_fixed_reply_text(clock: FakeClock) -> None:
    """A reply without placeholders is answered verbatim."""
    assert (await make(clock, reply="All good.").complete(HELLO)).text == "All good."


async def test_reply_template_fields(clock: FakeClock) -> None:
    """The template can use the deployment's name, model and call number."""
    provider = make(clock, reply="{name} {model} #{call}")
    await provider.complete(HELLO)
    assert (await provider.complete(HELLO)).text == "sim/m m #2"


async def test_reply_reads_text_from_content_parts(clock: FakeClock) -> None:
    """A user message given as content parts is echoed from its text parts."""
    parts = [{"type": "text", "text": "from"}, {"type": "text", "text": "parts"}]
    request = {"messages": [{"role": "user", "content": parts}]}
    assert (await make(clock, reply="{last_user}").complete(request)).text == "from parts"


async def test_tokens_option_stretches_the_reply(clock: FakeClock) -> None:
    """`tokens` makes every reply exactly that many tokens long."""
    body = (await make(clock, reply="ab cd", tokens=5).complete(HELLO)).body
    assert body["choices"][0]["message"]["content"] == "ab cd ab cd ab"
    assert body["usage"]["completion_tokens"] == 5


async def test_max_tokens_cuts_the_reply_with_finish_reason_length(clock: FakeClock) -> None:
    """A request's max_tokens truncates the reply and reports finish_reason length."""
    body = (await make(clock, reply="a b c d").complete({**HELLO, "max_tokens": 2})).body
    assert body["choices"][0]["message"]["content"] == "a b"
    assert body["choices"][0]["finish_reason"] == "length"


# -- timing --


async def test_latency_is_the_time_to_a_whole_answer(clock: FakeClock) -> None:
    """A fixed latency given as "250ms" delays complete() by exactly that on the clock."""
    assert await timed_complete(clock, make(clock, latency="250ms")) == pytest.approx(0.25)


async def test_uniform_latency_stays_within_bounds(clock: FakeClock) -> None:
    """A uniform latency is drawn between low and high."""
    provider = make(clock, latency={"dist": "uniform", "low": "1s", "high": "2s"})
    waits = [await timed_complete(clock, provider) for _ in range(20)]
    assert all(1.0 <= w <= 2.0 for w in waits)
    assert len(set(waits)) > 1


async def test_lognormal_latency_is_capped_by_max(clock: FakeClock) -> None:
    """A lognormal latency never exceeds its max."""
    latency = {"dist": "lognormal", "median": "1s", "sigma": 2, "max": "3s"}
    provider = make(clock, latency=latency)
    waits = [await timed_complete(clock, provider) for _ in range(30)]
    assert all(0 < w <= 3.0 for w in waits)
    assert 3.0 in waits


async def test_ttft_delays_the_first_chunk(clock: FakeClock) -> None:
    """The role chunk and the first token arrive after ttft."""
    timed = await timed_stream(clock, make(clock, ttft=2), HELLO)
    assert [t for t, _ in timed] == [2.0] * len(timed)


async def test_tokens_per_second_paces_content_chunks(clock: FakeClock) -> None:
    """Content chunks after the first arrive 1/tokens_per_second apart."""
    provider = make(clock, ttft=1, tokens_per_second=2, reply="a b c")
    timed = await timed_stream(clock, provider, HELLO)
    assert [t for t, _ in timed] == [1.0, 1.0, 1.5, 2.0, 2.0]


async def test_stream_without_ttft_waits_the_latency_first(clock: FakeClock) -> None:
    """With only a latency set, a stream spends it before its first chunk."""
    timed = await timed_stream(clock, make(clock, latency=3), HELLO)
    assert timed[0][0] == 3.0


async def test_complete_without_latency_takes_ttft_plus_pacing(clock: FakeClock) -> None:
    """Without a latency, complete() takes as long as the stream of the same reply would."""
    provider = make(clock, ttft=1, tokens_per_second=2, reply="a b c")
    assert await timed_complete(clock, provider) == pytest.approx(2.0)


# -- failures --


async def test_down_refuses_complete(clock: FakeClock) -> None:
    """A down deployment fails complete() with ConnectionFailed."""
    with pytest.raises(ConnectionFailed, match="refused"):
        await make(clock, down=True).complete(HELLO)


async def test_down_refuses_stream_before_any_chunk(clock: FakeClock) -> None:
    """A down deployment fails a stream before it yields anything."""
    with pytest.raises(ConnectionFailed):
        await collect(make(clock, down=True), HELLO)


async def test_down_fails_the_probe(clock: FakeClock) -> None:
    """probe() raises while the deployment is down."""
    with pytest.raises(ConnectionFailed):
        await make(clock, down=True).probe()


async def test_probe_ignores_error_rate(clock: FakeClock) -> None:
    """probe() succeeds when the deployment is up, whatever its error rate."""
    await make(clock, error_rate=1.0).probe()


async def test_error_rate_one_with_status_503_raises_overloaded(clock: FakeClock) -> None:
    """error_rate 1 with error_status 503 fails every call as Overloaded with that status."""
    with pytest.raises(Overloaded) as info:
        await make(clock, error_rate="100%", error_status=503).complete(HELLO)
    assert info.value.status == 503
    assert info.value.deployment == "sim/m"


async def test_error_defaults_to_a_500_server_error(clock: FakeClock) -> None:
    """Without a status or kind the injected error is a 500 ServerError."""
    with pytest.raises(ServerError) as info:
        await make(clock, error_rate=1).complete(HELLO)
    assert info.value.status == 500


async def test_error_kind_picks_the_error_class_and_status(clock: FakeClock) -> None:
    """error_kind rate_limited raises RateLimited with status 429."""
    with pytest.raises(RateLimited) as info:
        await make(clock, error_rate=1, error_kind="rate_limited").complete(HELLO)
    assert info.value.status == 429


async def test_partial_error_rate_fails_about_that_share(clock: FakeClock) -> None:
    """error_rate 30% fails roughly 30% of calls."""
    provider = make(clock, error_rate="30%")
    failures = 0
    for _ in range(300):
        try:
            await provider.complete(HELLO)
        except ServerError:
            failures += 1
    assert 60 <= failures <= 120


async def test_update_switches_options_at_runtime(clock: FakeClock) -> None:
    """update(down=True) takes a running deployment down, update(down=False) brings it back."""
    provider = make(clock, reply="ok")
    provider.update(down=True)
    with pytest.raises(ConnectionFailed):
        await provider.complete(HELLO)
    provider.update(down=False)
    assert (await provider.complete(HELLO)).text == "ok"


async def test_missing_messages_is_a_bad_request(clock: FakeClock) -> None:
    """A request without messages fails as BadRequest."""
    with pytest.raises(BadRequest):
        await make(clock).complete({"model": "m"})


async def test_malformed_max_tokens_is_a_bad_request(clock: FakeClock) -> None:
    """A max_tokens that is not a positive integer fails as BadRequest, not a TypeError."""
    with pytest.raises(BadRequest, match="max_tokens"):
        await make(clock).complete({**HELLO, "max_tokens": "many"})


async def test_empty_embeddings_input_is_a_bad_request(clock: FakeClock) -> None:
    """Embeddings of an empty input fail as BadRequest."""
    with pytest.raises(BadRequest, match="input"):
        await make(clock).embeddings({"input": []})


async def test_calls_are_counted_by_kind(clock: FakeClock) -> None:
    """calls, stream_calls, embedding_calls and probe_calls count what was received."""
    provider = make(clock, error_rate=1)
    for call in (provider.complete(HELLO), collect(provider, HELLO)):
        with pytest.raises(ServerError):
            await call
    await provider.probe()
    with pytest.raises(ServerError):
        await provider.embeddings({"input": "x"})
    counts = (provider.calls, provider.stream_calls, provider.embedding_calls)
    assert (*counts, provider.probe_calls) == (1, 1, 1, 1)
    assert provider.last_request == {"input": "x"}


# -- options validation --


def test_unknown_option_is_a_config_error_listing_known_ones(clock: FakeClock) -> None:
    """A misspelt option fails with its name and the list of known options."""
    with pytest.raises(ConfigError, match=r"latnecy: unknown option \(known: latency, ttft"):
        make(clock, latnecy="1s")


def test_unknown_reply_placeholder_is_a_config_error(clock: FakeClock) -> None:
    """A reply template with an unknown placeholder is rejected at construction."""
    with pytest.raises(ConfigError, match=r"reply: bad placeholder 'user'"):
        make(clock, reply="{user}")


def test_bad_duration_is_a_config_error(clock: FakeClock) -> None:
    """A latency that is not a duration names the option."""
    with pytest.raises(ConfigError, match=r"latency\.value: invalid duration 'soon'"):
        make(clock, latency="soon")


# -- tools --

TOOL_REQUEST: dict[str, Any] = {
    "messages": [{"role": "user", "content": "use get_weather for Paris"}],
    "tools": [WEATHER_TOOL],
}


async def test_tool_named_in_the_message_is_called(clock: FakeClock) -> None:
    """A request with tools whose last user message names one gets a tool call."""
    body = (await make(clock).complete(TOOL_REQUEST)).body
    ChatCompletion.model_validate(body)
    assert_spec(body, "CreateChatCompletionResponse")
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    assert choice["message"]["tool_calls"][0]["function"] == {
        "name": "get_weather",
        "arguments": "{}",
    }


async def test_tool_choice_none_answers_in_words(clock: FakeClock) -> None:
    """tool_choice none never calls a tool."""
    body = (await make(clock).complete({**TOOL_REQUEST, "tool_choice": "none"})).body
    assert body["choices"][0]["finish_reason"] == "stop"


async def test_forced_tool_choice_is_called(clock: FakeClock) -> None:
    """A tool_choice naming a function calls it even if the message does not mention it."""
    forced = {"type": "function", "function": {"name": "get_weather"}}
    request = {**HELLO, "tools": [WEATHER_TOOL], "tool_choice": forced}
    body = (await make(clock).complete(request)).body
    assert body["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "get_weather"


async def test_tool_result_gets_a_text_answer(clock: FakeClock) -> None:
    """After a tool result the reply is text, so agent loops end."""
    result = {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}
    request = {**TOOL_REQUEST, "messages": [*TOOL_REQUEST["messages"], result]}
    body = (await make(clock).complete(request)).body
    assert body["choices"][0]["finish_reason"] == "stop"


async def test_tool_call_stream_validates_and_ends_with_tool_calls(clock: FakeClock) -> None:
    """A streamed tool call validates chunk by chunk and finishes with tool_calls."""
    chunks = await collect(make(clock), TOOL_REQUEST)
    for body in chunks:
        ChatCompletionChunk.model_validate(body)
        assert_spec(body, "CreateChatCompletionStreamResponse")
    assert chunks[0]["choices"][0]["delta"]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


# -- embeddings --


async def test_embeddings_have_openai_list_shape(clock: FakeClock) -> None:
    """Embeddings come back as OpenAI's list of embedding objects with usage."""
    body = (await make(clock).embeddings({"input": ["a b", "c"], "model": "e"})).body
    CreateEmbeddingResponse.model_validate(body)
    assert_spec(body, "CreateEmbeddingResponse")
    assert [d["index"] for d in body["data"]] == [0, 1]
    assert body["usage"] == {"prompt_tokens": 3, "total_tokens": 3}


async def test_embeddings_are_deterministic_unit_vectors(clock: FakeClock) -> None:
    """The same text embeds to the same unit vector; another text to another one."""
    body = (await make(clock).embeddings({"input": ["x", "x", "y"]})).body
    first, again, other = (d["embedding"] for d in body["data"])
    assert first == again != other
    assert sum(v * v for v in first) == pytest.approx(1.0)


async def test_embeddings_honour_dimensions_and_base64(clock: FakeClock) -> None:
    """`dimensions` sets the length and base64 encodes the same float32 vector."""
    provider = make(clock)
    floats = (await provider.embeddings({"input": "x", "dimensions": 5})).body
    request = {"input": "x", "dimensions": 5, "encoding_format": "base64"}
    packed = (await provider.embeddings(request)).body["data"][0]["embedding"]
    decoded = struct.unpack("<5f", base64.b64decode(packed))
    assert decoded == pytest.approx(floats["data"][0]["embedding"], rel=1e-6)


# -- the protocol --


async def test_is_an_adapter_with_its_config(clock: FakeClock) -> None:
    """It is a deployment and keeps its name, model, weight and timeout."""
    provider = SimulatedProvider(name="s", model="m", weight=2.0, timeout=5.0, clock=clock)
    assert isinstance(provider, BaseDeployment)
    assert (provider.name, provider.model, provider.weight, provider.timeout) == ("s", "m", 2, 5)
    await provider.aclose()
    assert provider.closed
