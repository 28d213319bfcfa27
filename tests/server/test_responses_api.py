"""The OpenAI Responses API at /v1/responses, through the official SDK, on a route whose
deployments speak only chat completions: translated, routed and failed over like chat."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from fakes import FakeOpenAI, Reply, Stream, sse
from openapi_schema import validate

from .harness import Raw, Stack

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


def payloads(body: bytes) -> list[dict[str, Any]]:
    """The data of each event of a Responses stream."""
    return [
        json.loads(line.removeprefix(b"data: "))
        for line in body.split(b"\n")
        if line.startswith(b"data: ")
    ]


NATIVE = {"providers": {"primary": {"options": {"responses": True}}}}  # serves /v1/responses
REASONING = {"id": "rs_fake1", "type": "reasoning", "summary": [], "status": "completed"}


def sent_to(stack: Stack, fake: Any) -> dict[str, Any]:
    """The chat request the last call to `fake` carried."""
    body = json.loads(fake.requests[-1].body)
    assert isinstance(body, dict)
    return body


def test_a_whole_response_from_a_chat_deployment(stack: Stack, oai: openai.OpenAI) -> None:
    """`responses.create` gets a Response that fits OpenAI's schema, translated from chat."""
    raw = oai.responses.with_raw_response.create(
        model="chat", instructions="Be brief.", input="hi", max_output_tokens=50
    )
    response = raw.parse()
    validate("Response", json.loads(raw.content))
    assert response.output_text == "Hello from the fake OpenAI."
    assert response.status == "completed" and response.usage is not None
    chat = sent_to(stack, stack.primary)
    assert chat["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi"},
    ]
    assert chat["max_completion_tokens"] == 50


def test_a_streamed_response_has_the_sdks_events(stack: Stack, oai: openai.OpenAI) -> None:
    """`stream=True` gives the event sequence the SDK expects, each event per the schema."""
    with oai.responses.with_streaming_response.create(model="chat", input="hi", stream=True) as raw:
        events = payloads(raw.read())
    for event in events:
        validate("ResponseStreamEvent", event)
    kinds = [e["type"] for e in events]
    assert kinds[:3] == ["response.created", "response.in_progress", "response.output_item.added"]
    assert kinds[-1] == "response.completed"
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    events = list(oai.responses.create(model="chat", input="hi", stream=True))
    final = events[-1]
    assert final.type == "response.completed"
    assert final.response.output_text == "Hello from the fake OpenAI."


def test_responses_fail_over_like_chat(stack: Stack, oai: openai.OpenAI) -> None:
    """A 500 from the primary is invisible: the backup answers, whole and streamed."""
    stack.primary.push(stack.primary.error(500, "down"), stack.primary.error(500, "down"))
    raw = oai.responses.with_raw_response.create(model="chat", input="hi")
    assert raw.headers["x-failover-deployment"] == "backup/gpt-4o-mini"
    assert raw.parse().output_text == "Hello from the backup."
    stack.primary.push(stack.primary.error(500, "down"), stack.primary.error(500, "down"))
    events = list(oai.responses.create(model="chat", input="hi", stream=True))
    assert events[-1].response.output_text == "Hello from the backup."


def test_function_calls_round_trip(stack: Stack, oai: openai.OpenAI) -> None:
    """A chat tool call comes back as a function_call item; its output goes back as a tool
    message."""
    call = {"id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}  # fmt: skip
    stack.primary.push(stack.primary.reply(None, tool_calls=[call], finish_reason="tool_calls"))
    first = oai.responses.create(model="chat", input="weather in Paris?", tools=[WEATHER])
    (item,) = first.output
    assert (item.type, item.name, item.call_id) == ("function_call", "get_weather", "call_1")
    assert sent_to(stack, stack.primary)["tools"][0]["function"]["name"] == "get_weather"
    oai.responses.create(
        model="chat",
        input=[
            {"role": "user", "content": "weather in Paris?"},
            {"type": "function_call", "call_id": "call_1", "name": "get_weather",
             "arguments": '{"city":"Paris"}'},
            {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
        ],
        tools=[WEATHER],
    )  # fmt: skip
    messages = sent_to(stack, stack.primary)["messages"]
    assert messages[1]["tool_calls"][0]["id"] == "call_1"
    assert messages[2] == {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}


def interleaved_tool_calls() -> Stream:
    """A chat stream of two tool calls whose argument pieces alternate between them."""
    starts = [
        {"index": i, "id": f"call_{i}", "type": "function",
         "function": {"name": name, "arguments": ""}}
        for i, name in enumerate(("get_weather", "get_time"))
    ]  # fmt: skip
    pieces = [(0, '{"city":'), (1, '{"zone":'), (0, '"Paris"}'), (1, '"CET"}')]
    chunks = [
        FakeOpenAI.chunk({"role": "assistant", "content": None}),
        *(FakeOpenAI.chunk({"tool_calls": [start]}) for start in starts),
        *(
            FakeOpenAI.chunk({"tool_calls": [{"index": i, "function": {"arguments": a}}]})
            for i, a in pieces
        ),
        FakeOpenAI.chunk({}, finish="tool_calls"),
    ]
    return Stream([*(sse(c) for c in chunks), sse("[DONE]")])


def test_interleaved_tool_calls_stream_into_their_own_items(stack: Stack, http: Raw) -> None:
    """Argument pieces of two tool calls that alternate each go to their own function_call
    item, in events that fit OpenAI's schema."""
    stack.primary.push(interleaved_tool_calls())
    answer = http.post("/v1/responses", {"model": "chat", "input": "hi", "stream": True})
    events = payloads(answer.body)
    for event in events:
        validate("ResponseStreamEvent", event)
    items = events[-1]["response"]["output"]
    streamed = {item["id"]: "" for item in items}
    for event in events:
        if event["type"] == "response.function_call_arguments.delta":
            assert items[event["output_index"]]["id"] == event["item_id"]
            streamed[event["item_id"]] += event["delta"]
    assert [(i["name"], i["arguments"]) for i in items] == [
        ("get_weather", '{"city":"Paris"}'),
        ("get_time", '{"zone":"CET"}'),
    ]
    assert [streamed[i["id"]] for i in items] == [i["arguments"] for i in items]


def test_a_follow_up_continues_a_translated_conversation(stack: Stack, oai: openai.OpenAI) -> None:
    """`previous_response_id` of a translated response: the gateway kept the conversation."""
    first = oai.responses.create(model="chat", input="My name is Ada.")
    second = oai.responses.create(model="chat", input="What is my name?",
                                  previous_response_id=first.id)  # fmt: skip
    assert second.previous_response_id == first.id
    messages = sent_to(stack, stack.primary)["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[0]["content"] == "My name is Ada."
    assert messages[1]["content"] == "Hello from the fake OpenAI."


def test_a_follow_up_does_not_inherit_the_previous_instructions(
    stack: Stack, oai: openai.OpenAI
) -> None:
    """With previous_response_id, the follow-up reaches the deployment with its own
    instructions only, as OpenAI does not carry `instructions` over."""
    first = oai.responses.create(model="chat", input="Hi.", instructions="Answer in French.")
    oai.responses.create(
        model="chat",
        input="And now?",
        instructions="Answer in German.",
        previous_response_id=first.id,
    )
    messages = sent_to(stack, stack.primary)["messages"]
    systems = [m["content"] for m in messages if m["role"] in ("system", "developer")]
    assert systems == ["Answer in German."]


def test_an_unknown_previous_response_is_a_clear_400(oai: openai.OpenAI) -> None:
    """An id this gateway never made: 400, saying to send the conversation instead."""
    with pytest.raises(openai.BadRequestError, match="unknown previous_response_id"):
        oai.responses.create(model="chat", input="hi", previous_response_id="resp_nope")


def test_built_in_tools_need_a_native_deployment(oai: openai.OpenAI) -> None:
    """A built-in tool cannot be translated to chat: a 400 that says why."""
    with pytest.raises(openai.BadRequestError, match="speaks the Responses API natively"):
        oai.responses.create(model="chat", input="news?", tools=[{"type": "web_search"}])


def test_a_request_without_input_is_refused(http: Raw) -> None:
    """No `input` and no previous response: a 400 in OpenAI's format naming the field."""
    answer = http.post("/v1/responses", {"model": "chat"})
    assert answer.status == 400
    validate("ErrorResponse", answer.json)
    assert answer.json["error"]["param"] == "input"


def test_a_pinned_stream_names_each_item_as_the_final_response_does(make_stack: Any) -> None:
    """A pinned follow-up asked as a stream: every event's output_index and item id are those
    of the item at that index in the response.completed output, reasoning included."""
    stack: Stack = make_stack(NATIVE)
    with Raw(stack.port) as http:
        first = http.post("/v1/responses", {"model": "solo", "input": "hi"}).json
        answer = FakeOpenAI.response(
            [REASONING, FakeOpenAI.message_item("Hi again.")], response_id="resp_fake2"
        )
        stack.primary.push(Reply(answer))
        follow_up = {"model": "solo", "input": "and?", "previous_response_id": first["id"]}
        events = payloads(http.post("/v1/responses", {**follow_up, "stream": True}).body)
    for event in events:
        validate("ResponseStreamEvent", event)
    ids = [item["id"] for item in events[-1]["response"]["output"]]
    assert ids == ["rs_fake1", "msg_fake1"]
    added = [e for e in events if e["type"] == "response.output_item.added"]
    assert [(e["output_index"], e["item"]["id"]) for e in added] == list(enumerate(ids))
    for event in events:
        if "output_index" in event:
            named = event.get("item_id") or event["item"]["id"]
            assert named == ids[event["output_index"]], event["type"]
