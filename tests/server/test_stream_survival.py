"""Streams that survive, end to end: a real gateway in front of fake upstreams that misbehave
the way real ones do, read through the official OpenAI and Anthropic SDKs.

Each upstream fault comes with a healthy second deployment on the route, and each test checks
what the caller holds (exactly the whole answer), how long it took where that matters (wall
time: the gateway runs on the system clock here), the raw stream (`[DONE]` at the end, the
`: failover recovered` comment of a spliced stream, every chunk valid per OpenAI's schema)
and that the gateway is healthy afterwards. Silences are cut by the gateway's own `stall`
limit: short in most tests, the default 10 s in the one that proves the default.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import anthropic
import httpx2 as httpx
import openai
import pytest
from openai.types.chat import ChatCompletionChunk

from fakes import Delay, FakeServer, Stream
from openapi_schema import validate

from .harness import CLIENT_KEY, Raw, Recorder, Stack

HI = [{"role": "user", "content": "Tell me a story."}]
ANSWER = " ".join(f"word{i}" for i in range(1, 61)) + "."
PRIMARY = "primary/gpt-4o"
BACKUP = "backup/gpt-4o-mini"
CLAUDE = "claude/claude-sonnet-4-5"
FAST = {"defaults": {"timeouts": {"stall": "500ms"}}}  # a silence is cut after half a second
PREFILLS = {"providers": {"backup": {"options": {"prefill": "assistant"}}}}

MakeStack = Callable[..., Stack]


@dataclass
class Heard:
    """What an OpenAI SDK caller got from one stream, and the bytes it was read from."""

    text: str
    chunks: list[ChatCompletionChunk]
    raw: bytes
    seconds: float

    @property
    def payloads(self) -> list[bytes]:
        """The `data:` payloads of the raw stream, in order."""
        lines = self.raw.split(b"\n")
        return [line.removeprefix(b"data: ") for line in lines if line.startswith(b"data: ")]


def tell_the_story(*fakes: FakeServer) -> None:
    """Make each fake's normal answer the 60-word story, streamed word by word."""
    for fake in fakes:
        fake.text = ANSWER
        fake.by_words = True


def words(fake: FakeServer) -> list[str]:
    """The story's pieces as `fake` streams them ("word1", " word2", ...)."""
    return fake.split(ANSWER)


def cut(fake: Any, after: int) -> Stream:
    """The story, its connection dropped after `after` words."""
    stream: Stream = fake.stream(words(fake), cut_after=fake.after(after))
    return stream


def ask(stack: Stack, *, usage: bool = False, model: str = "chat") -> Heard:
    """Stream one answer through the sync OpenAI SDK, timing it and recording the wire."""
    recorder = Recorder()
    extra: dict[str, Any] = {"stream_options": {"include_usage": True}} if usage else {}
    http_client = httpx.Client(transport=recorder, timeout=60)
    with openai.OpenAI(
        base_url=f"{stack.url}/v1", api_key=CLIENT_KEY, max_retries=0, http_client=http_client
    ) as client:
        started = time.monotonic()
        stream = client.chat.completions.create(model=model, messages=HI, stream=True, **extra)
        chunks = list(stream)
        seconds = time.monotonic() - started
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    return Heard(text, chunks, recorder.last, seconds)


def check_openai_stream(heard: Heard, *, spliced: bool) -> None:
    """The stream ended with [DONE], every chunk fits OpenAI's schema, and a spliced one says
    so in a comment before the end."""
    assert heard.raw.endswith(b"data: [DONE]\n\n")
    for payload in heard.payloads[:-1]:
        validate("CreateChatCompletionStreamResponse", json.loads(payload))
    assert (b"\n: failover recovered" in heard.raw) is spliced


def deployment_status(stack: Stack, name: str) -> dict[str, Any]:
    with Raw(stack.port) as http:
        status = http.get("/admin/status").json
    found = [d for r in status["routes"].values() for d in r["deployments"] if d["name"] == name]
    return dict(found[0])


def assert_healthy(stack: Stack, name: str) -> None:
    """The gateway is ready, and `name`'s breaker has no failure and no event against it."""
    with Raw(stack.port) as http:
        assert http.get("/health/ready").status == 200
        events = http.get("/admin/events").json["events"]
    status = deployment_status(stack, name)
    assert status["available"] and status["healthy"]
    assert status["breaker"]["state"] == "closed"
    assert status["breaker"]["window_failures"] == 0
    against = [e for e in events if e.get("deployment") == name]
    assert not [e for e in against if e["type"] in ("breaker", "health")]


def posted(fake: FakeServer) -> list[dict[str, Any]]:
    """The request bodies a fake received."""
    return [r.json for r in fake.requests if r.method == "POST"]


def prefilled(body: dict[str, Any]) -> bool:
    return bool(body["messages"]) and body["messages"][-1]["role"] == "assistant"


def metric(stack: Stack, line_start: str) -> float:
    """The value of the one /metrics sample whose line starts with `line_start`."""
    with Raw(stack.port) as http:
        text = http.get("/metrics").body.decode()
    found = [line for line in text.splitlines() if line.startswith(line_start)]
    assert len(found) == 1, found
    return float(found[0].rpartition(" ")[2])


@pytest.fixture
def story(make_stack: MakeStack) -> Iterator[Callable[..., Stack]]:
    """A gateway (with `extra` config) whose upstreams all tell the 60-word story."""

    def make(extra: dict[str, Any] | None = None) -> Stack:
        stack = make_stack(extra)
        tell_the_story(stack.primary, stack.backup, stack.claude)
        return stack

    yield make


# -- quirks: the answer is whole, nobody is blamed ---------------------------------------------


def test_an_answer_without_done_is_whole_at_once(story: MakeStack) -> None:
    """An upstream that ends after the finish reason and usage, without [DONE], gives the
    caller the whole answer with its usage, at once and without a recovery."""
    stack = story()
    stack.primary.push(stack.primary.stream(words(stack.primary), usage=True, done=False))
    heard = ask(stack, usage=True)
    assert heard.text == ANSWER
    assert heard.chunks[-1].usage is not None and heard.chunks[-1].usage.completion_tokens == 60
    assert heard.seconds < 2.0  # no limit was waited for (stall is 10 s)
    check_openai_stream(heard, spliced=False)
    assert posted(stack.backup) == []
    assert_healthy(stack, PRIMARY)


def test_an_upstream_that_stays_open_after_its_usage_does_not_hold_the_answer(
    story: MakeStack,
) -> None:
    """The answer ends as soon as the finish reason and usage are in, even when the upstream
    neither sends [DONE] nor closes."""
    stack = story()
    frames = stack.primary.stream(words(stack.primary), usage=True, done=False).frames
    stack.primary.push(Stream(frames, stall_at=len(frames), stall_for=30))
    heard = ask(stack, usage=True)
    assert heard.text == ANSWER and heard.chunks[-1].usage is not None
    assert heard.seconds < 2.0
    check_openai_stream(heard, spliced=False)


async def test_one_malformed_event_is_skipped(story: MakeStack) -> None:
    """One garbled event in an otherwise whole stream is skipped: the async SDK gets the whole
    answer, from the primary alone."""
    stack = story()
    stack.primary.push(stack.primary.stream(words(stack.primary), malformed_after=30))
    recorder = Recorder()
    async with openai.AsyncOpenAI(
        base_url=f"{stack.url}/v1",
        api_key=CLIENT_KEY,
        max_retries=0,
        http_client=httpx.AsyncClient(transport=recorder, timeout=60),
    ) as client:
        stream = await client.chat.completions.create(model="chat", messages=HI, stream=True)
        chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == ANSWER
    check_openai_stream(Heard(text, chunks, recorder.last, 0.0), spliced=False)
    assert posted(stack.backup) == []
    assert_healthy(stack, PRIMARY)


def test_malformed_events_count_against_max_malformed(story: MakeStack) -> None:
    """With `max_malformed: 0` the same garbled event breaks the stream, and the backup
    finishes the answer."""
    stack = story({"defaults": {"streams": {"max_malformed": 0}}})
    stack.primary.push(stack.primary.stream(words(stack.primary), malformed_after=30))
    heard = ask(stack)
    assert heard.text == ANSWER
    check_openai_stream(heard, spliced=True)
    assert len(posted(stack.backup)) == 1


# -- breaks: recovered on the healthy deployment -----------------------------------------------


def test_a_connection_dropped_after_40_of_60_words_is_finished(story: MakeStack) -> None:
    """A drop after 40 words is finished by the backup (restart and match) within seconds."""
    stack = story()
    stack.primary.push(cut(stack.primary, 40))
    heard = ask(stack)
    assert heard.text == ANSWER
    assert heard.seconds < 3.0
    check_openai_stream(heard, spliced=True)
    assert [prefilled(b) for b in posted(stack.backup)] == [False]  # it cannot prefill
    assert_healthy(stack, BACKUP)


def test_a_silence_after_20_words_is_recovered_after_the_default_stall(
    story: MakeStack,
) -> None:
    """An upstream silent for 30 s after 20 words (then dropped) is given up after the
    default 10 s `stall` limit, and the backup finishes the answer."""
    stack = story()
    stack.primary.push(stack.primary.stream(words(stack.primary), stall_after=20, stall_for=30))
    heard = ask(stack)
    assert heard.text == ANSWER
    assert 9.5 <= heard.seconds < 13.0
    check_openai_stream(heard, spliced=True)
    assert_healthy(stack, BACKUP)


def test_a_silence_is_cut_after_the_configured_stall(story: MakeStack) -> None:
    """With `stall: 500ms` the same silence costs the caller half a second."""
    stack = story(FAST)
    stack.primary.push(stack.primary.stream(words(stack.primary), stall_after=20, stall_for=30))
    heard = ask(stack)
    assert heard.text == ANSWER
    assert 0.5 <= heard.seconds < 3.0
    check_openai_stream(heard, spliced=True)


def test_a_refused_prefill_is_learned_and_the_answer_restarted(story: MakeStack) -> None:
    """A backup configured to prefill that refuses it (400) restarts and matches instead; the
    refusal is not held against it, and the next break goes straight to a restart."""
    stack = story(PREFILLS)
    stack.backup.prefill = "refuse"
    for _ in range(2):
        cut = stack.primary.after(40)
        stack.primary.push(stack.primary.stream(words(stack.primary), cut_after=cut))
    heard = ask(stack)
    assert heard.text == ANSWER
    check_openai_stream(heard, spliced=True)
    assert [prefilled(b) for b in posted(stack.backup)] == [True, False]
    assert_healthy(stack, BACKUP)
    assert ask(stack).text == ANSWER
    assert [prefilled(b) for b in posted(stack.backup)] == [True, False, False]
    labels = f'deployment="{PRIMARY}",kind="connection",outcome="restarted",route="chat"'
    assert metric(stack, f"failover_stream_breaks_total{{{labels}}}") == 2.0


def test_a_drop_through_the_messages_api_is_finished(story: MakeStack) -> None:
    """The same drop read through the Anthropic SDK on /v1/messages ends with the whole
    answer, the recovery noted before message_stop."""
    stack = story()
    stack.primary.push(cut(stack.primary, 40))
    recorder = Recorder()
    with anthropic.Anthropic(
        base_url=stack.url,
        api_key=CLIENT_KEY,
        max_retries=0,
        http_client=httpx.Client(transport=recorder, timeout=60),
    ) as client:
        started = time.monotonic()
        stream = client.messages.create(model="chat", max_tokens=512, messages=HI, stream=True)
        events = list(stream)
        seconds = time.monotonic() - started
    deltas = [e.delta for e in events if e.type == "content_block_delta"]
    assert "".join(d.text for d in deltas if d.type == "text_delta") == ANSWER
    assert events[-1].type == "message_stop"
    assert seconds < 3.0
    raw = recorder.last
    assert raw.index(b"\n: failover recovered") < raw.index(b"event: message_stop")
    assert_healthy(stack, BACKUP)


def test_a_native_stream_finished_natively_elsewhere_keeps_its_usage(story: MakeStack) -> None:
    """A Claude stream read natively on /v1/messages, dropped after 40 words and continued on
    a second Claude deployment, ends with that deployment's usage, not zeros."""
    first = {"provider": "claude", "model": "claude-sonnet-4-5"}
    second = {"provider": "claude", "model": "claude-haiku-4-5"}
    stack = story({"routes": {"claude": {"deployments": [first, second]}}})
    stack.claude.push(cut(stack.claude, 40))
    client = anthropic.Anthropic(base_url=stack.url, api_key=CLIENT_KEY, max_retries=0)
    with client, client.messages.stream(model="claude", max_tokens=512, messages=HI) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == ANSWER
    assert posted(stack.claude)[1]["model"] == "claude-haiku-4-5"  # continued on the second
    assert final.usage.output_tokens == 15  # what the second's message_delta counted


def test_a_break_is_continued_on_a_deployment_that_prefills(story: MakeStack) -> None:
    """A Claude backup continues the answer from the delivered text (its trailing whitespace
    held back, which Anthropic refuses), and only the rest comes back."""
    claude_second = {"provider": "claude", "model": "claude-sonnet-4-5"}
    route = {"deployments": [{"provider": "primary", "model": "gpt-4o"}, claude_second]}
    stack = story({"routes": {"chat": route}})
    trailing = [w.strip() + " " for w in words(stack.primary)]  # "word1 ", "word2 ", ...
    trailing[-1] = trailing[-1].strip()
    stack.primary.push(stack.primary.stream(trailing, cut_after=stack.primary.after(40)))
    heard = ask(stack)
    assert heard.text == ANSWER
    check_openai_stream(heard, spliced=True)
    sent = posted(stack.claude)[0]["messages"][-1]
    delivered = "".join(trailing[:40])
    assert sent == {"role": "assistant", "content": [{"type": "text", "text": delivered.rstrip()}]}
    assert_healthy(stack, CLAUDE)


# -- nobody can finish it: a clean error naming the first cause ---------------------------------


def test_an_unrecoverable_break_is_an_error_event_naming_the_original_cause(
    story: MakeStack,
) -> None:
    """When every candidate fails to finish the answer (a refused prefill, a restart that
    says something else, a 500), the stream ends with an error event naming the original cut,
    never [DONE]; the gateway stays healthy and serves the next request."""
    stack = story(PREFILLS)
    stack.backup.prefill = "refuse"
    stack.backup.text = "Something else entirely, told another way."
    stack.primary.push(
        cut(stack.primary, 40),
        stack.primary.error(500, "The server had an error while processing your request."),
    )
    recorder = Recorder()
    with (
        openai.OpenAI(
            base_url=f"{stack.url}/v1",
            api_key=CLIENT_KEY,
            max_retries=0,
            http_client=httpx.Client(transport=recorder, timeout=60),
        ) as client,
        pytest.raises(openai.APIError) as info,
    ):
        for _ in client.chat.completions.create(model="chat", messages=HI, stream=True):
            pass
    message = str(info.value.message)
    assert f"stream from {PRIMARY} broke after" in message
    assert "cut short" in message or "closed the connection" in message
    assert "prefill" not in message and "500" not in message
    last = recorder.last.rstrip(b"\n").rpartition(b"\n")[2]
    assert json.loads(last.removeprefix(b"data: "))["error"]["code"] == "stream_interrupted"
    assert b"[DONE]" not in recorder.last
    assert [prefilled(b) for b in posted(stack.backup)] == [True, False]
    assert_healthy(stack, BACKUP)
    stack.backup.text = ANSWER
    assert ask(stack).text == ANSWER


# -- keep-alives while a slow recovery runs ----------------------------------------------------


SLOW = {
    "defaults": {
        "streams": {"heartbeat": "50ms"},
        "timeouts": {"attempt": "5s", "first_token": "5s"},
    }
}


def slow_recovery(stack: Stack) -> asyncio.Event:
    """A break after 10 words whose backup holds its answer back until the returned gate
    is set (on the gateway's loop)."""
    gate = asyncio.Event()
    stack.primary.push(cut(stack.primary, 10))
    stack.backup.push(Delay(gate, stack.backup.stream(words(stack.backup))))
    return gate


def read_until_released(
    stack: Stack, path: str, body: dict[str, Any], beat: bytes, gate: asyncio.Event
) -> list[bytes]:
    """The lines of a streamed answer; once two `beat` lines came, the backup is released."""
    lines: list[bytes] = []
    headers = {"authorization": f"Bearer {CLIENT_KEY}"}
    with (
        httpx.Client(timeout=30) as client,
        client.stream("POST", f"{stack.url}{path}", json=body, headers=headers) as response,
    ):
        for line in response.iter_lines():
            lines.append(line.encode())
            if lines.count(beat) == 2:
                stack.bg.soon(gate.set)
    return lines


def test_keep_alives_arrive_while_a_slow_recovery_runs(story: MakeStack) -> None:
    """While the backup takes its time, the OpenAI client gets `: keep-alive` comments
    between the delivered words and the rest of the answer."""
    stack = story(SLOW)
    gate = slow_recovery(stack)
    body = {"model": "chat", "messages": HI, "stream": True}
    lines = read_until_released(stack, "/v1/chat/completions", body, b": keep-alive", gate)
    beats = [i for i, line in enumerate(lines) if line == b": keep-alive"]
    data = [json.loads(line[6:]) for line in lines if line.startswith(b"data: {")]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in data if c["choices"])
    assert text == ANSWER and len(beats) >= 2
    content = [i for i, line in enumerate(lines) if b"word11" in line or b"word10" in line]
    assert content[0] < beats[0] and beats[-1] < content[-1]


def test_pings_arrive_while_a_slow_recovery_runs(story: MakeStack) -> None:
    """An Anthropic client gets `event: ping` while the backup takes its time."""
    stack = story(SLOW)
    gate = slow_recovery(stack)
    body = {"model": "chat", "max_tokens": 512, "messages": HI, "stream": True}
    lines = read_until_released(stack, "/v1/messages", body, b"event: ping", gate)
    beats = [i for i, line in enumerate(lines) if line == b"event: ping"]
    events = [json.loads(line[6:]) for line in lines if line.startswith(b"data: ")]
    deltas = [e["delta"] for e in events if e["type"] == "content_block_delta"]
    assert "".join(d.get("text") or "" for d in deltas) == ANSWER
    assert len(beats) >= 2 and events[-1]["type"] == "message_stop"
