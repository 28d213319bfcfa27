"""The OpenAI Responses endpoint: POST /v1/responses, whole and streamed.

Routed and failed over like chat. Whole answers go to each deployment in its own format (the
`RESPONSES` dialect: passed through where it speaks the Responses API, translated to chat where
not); streams are chat streams underneath, so they keep stream recovery, and their chunks are
turned into Responses events.

A follow-up naming `previous_response_id` continues a conversation, and where that
conversation lives decides where it may go:

    created by a deployment that speaks Responses     its state lives at that provider: the
                                                      follow-up is pinned to that deployment;
                                                      if it is unavailable, a clear error
                                                      instead of a failover that would lose it
    created here, by translation                      the gateway kept the conversation: the
                                                      follow-up goes anywhere on its route

Both are remembered in memory, bounded (`Conversations`); an id this gateway does not know is
a 400 that says so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from ..errors import BadRequest, RequestFailed
from ..trace import Trace
from .admission import admit
from .controls import RequestControls, read_controls
from .errors import ClientError, Failure
from .http import JSON_TYPE, Call
from .responses_format import RESPONSES, chat_messages, input_messages, responses_request
from .responses_stream import ResponseEvents
from .streaming import relay, routing_headers

if TYPE_CHECKING:
    from .generation import Generation

__all__ = ["responses"]


async def responses(call: Call, gen: Generation) -> Trace | None:
    """POST /v1/responses"""
    body = await call.json(gen.max_body)
    model, stream = responses_request(body)
    controls = read_controls(call.controls, gen.max_deadline)
    route = controls.route or model
    with admit(call, gen, route, controls, stream=stream):
        previous = body.get("previous_response_id")
        if previous:
            owner = gen.conversations.owner(previous)
            if owner is not None:
                return await _pinned(call, gen, body, owner, stream, controls)
            kept = gen.conversations.conversation(previous)
            if kept is None:
                raise ClientError(Failure(400, _unknown(previous), param="previous_response_id"))
            body = {**body, "previous_response_id": None}
            history: list[dict[str, Any]] = kept
        else:
            history = []
        if stream:
            await _stream(call, gen, body, route, history, controls, previous)
            return None
        return await _whole(call, gen, body, route, history, controls, previous)


async def _whole(
    call: Call,
    gen: Generation,
    body: dict[str, Any],
    route: str,
    history: list[dict[str, Any]],
    controls: RequestControls,
    previous: str | None,
) -> Trace:
    router = gen.router
    if history:  # a follow-up of a conversation kept here: translated, with its history
        chat = _with_history(body, history)
        reply = await router.complete(route, chat, request_id=call.request_id, **controls.router)
        response = RESPONSES.from_chat(reply.completion, body).body
    else:
        reply = await router.complete(
            route, body, request_id=call.request_id, dialect=RESPONSES, **controls.router
        )
        response = orjson.loads(reply.completion.raw)
    response["previous_response_id"] = previous
    _remember(gen, body, response, reply.deployment, history)
    headers = call.headers(JSON_TYPE, *routing_headers(reply.route, reply.deployment, reply.trace))
    await call.respond(200, orjson.dumps(response), headers)
    return reply.trace


async def _stream(
    call: Call,
    gen: Generation,
    body: dict[str, Any],
    route: str,
    history: list[dict[str, Any]],
    controls: RequestControls,
    previous: str | None,
) -> None:
    chat = _with_history(body, history) if history else _translated(body)
    reply = await gen.router.open_stream(route, chat, request_id=call.request_id, **controls.router)
    events = ResponseEvents({**body, "previous_response_id": previous}, model=str(body["model"]))
    await relay(call, reply, events, call.headers())
    if events.response is not None:
        messages = [*history, *input_messages(body), *_assistant(events.response)]
        gen.conversations.keep(events.response["id"], messages)


async def _pinned(
    call: Call,
    gen: Generation,
    body: dict[str, Any],
    owner: str,
    stream: bool,
    controls: RequestControls,
) -> Trace | None:
    """A follow-up whose conversation lives at `owner`: there, natively, or a clear error."""
    request = {key: value for key, value in body.items() if key != "stream"}
    kwargs = {**controls.router, "fallbacks": False}
    try:
        reply = await gen.router.complete(
            owner, request, request_id=call.request_id, dialect=RESPONSES, **kwargs
        )
    except RequestFailed as exc:
        message = (
            f"previous_response_id {body['previous_response_id']!r} lives at {owner}, which "
            f"could not answer ({exc.message}); not failing over, which would lose the "
            "conversation"
        )
        failure = Failure(503, message, code="conversation_unavailable", trace=exc.trace)
        raise ClientError(failure) from exc
    response = orjson.loads(reply.completion.raw)
    gen.conversations.pin(str(response.get("id")), owner)
    routing = routing_headers(reply.route, reply.deployment, reply.trace)
    if not stream:
        await call.respond(200, reply.completion.raw, call.headers(JSON_TYPE, *routing))
        return reply.trace
    await call.start_stream(call.headers(*routing))
    await call.end(ResponseEvents(body, model=str(body["model"])).replay(response))
    return reply.trace


def _remember(
    gen: Generation,
    body: dict[str, Any],
    response: dict[str, Any],
    deployment: str,
    history: list[dict[str, Any]],
) -> None:
    answered_by = gen.router.deployments().get(deployment)
    if not history and answered_by is not None and answered_by.speaks(RESPONSES.name):
        gen.conversations.pin(str(response["id"]), deployment)
        return
    messages = [*history, *input_messages(body), *_assistant(response)]
    gen.conversations.keep(str(response["id"]), messages)


def _with_history(body: dict[str, Any], history: list[dict[str, Any]]) -> dict[str, Any]:
    chat = _translated(body)
    chat["messages"] = chat_messages(body, history)  # this request's instructions come first
    return chat


def _translated(body: dict[str, Any]) -> dict[str, Any]:
    try:
        return RESPONSES.to_chat(body)
    except BadRequest as exc:
        raise ClientError(Failure(400, exc.message)) from exc


def _assistant(response: dict[str, Any]) -> list[dict[str, Any]]:
    """The chat message(s) of a Response's output, to continue the conversation from."""
    text = ""
    calls = []
    for item in response.get("output") or []:
        if item.get("type") == "message":
            text += "".join(str(p.get("text") or "") for p in item.get("content") or [])
        elif item.get("type") == "function_call":
            function = {"name": item.get("name"), "arguments": item.get("arguments")}
            calls.append({"id": item.get("call_id"), "type": "function", "function": function})
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        message["tool_calls"] = calls
    return [message]


def _unknown(response_id: str) -> str:
    return (
        f"unknown previous_response_id {response_id!r}: this gateway did not create it (or has "
        "forgotten it); send the whole conversation in `input` instead"
    )
