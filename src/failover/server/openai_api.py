"""The OpenAI-compatible endpoints: chat completions (whole and streamed), embeddings, models.

The fast path: parse the request once, check the fields the gateway needs, hand the dict to the
router, and write the upstream's own bytes back (`Completion.raw`, `Chunk.raw`) untouched.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

from ..trace import Trace
from .admission import admit
from .controls import read_controls
from .errors import ClientError, Failure
from .http import JSON_TYPE, Call
from .streaming import OpenAIEncoder, relay, routing_headers
from .validate import chat_request, embeddings_request

if TYPE_CHECKING:
    from .generation import Generation

__all__ = ["chat_completions", "embeddings", "model", "models"]

_ENCODER = OpenAIEncoder()


async def chat_completions(call: Call, gen: Generation) -> Trace | None:
    """POST /v1/chat/completions"""
    body = await call.json(gen.max_body)
    model_name, stream = chat_request(body)
    controls = read_controls(call.controls, gen.max_deadline)
    model_name = controls.route or model_name
    router = gen.router
    with admit(call, gen, model_name, controls, stream=stream):
        if stream:
            stream_reply = await router.open_stream(
                model_name, body, request_id=call.request_id, **controls.router
            )
            await relay(call, stream_reply, _ENCODER, call.headers())
            return None
        reply = await router.complete(
            model_name, body, request_id=call.request_id, **controls.router
        )
    headers = call.headers(JSON_TYPE, *routing_headers(reply.route, reply.deployment, reply.trace))
    await call.respond(200, reply.completion.raw, headers)
    return reply.trace


async def embeddings(call: Call, gen: Generation) -> Trace:
    """POST /v1/embeddings"""
    body = await call.json(gen.max_body)
    controls = read_controls(call.controls, gen.max_deadline)
    model_name = controls.route or embeddings_request(body)
    with admit(call, gen, model_name, controls, stream=False):
        reply = await gen.router.embeddings(
            model_name, body, request_id=call.request_id, **controls.router
        )
    headers = call.headers(JSON_TYPE, *routing_headers(reply.route, reply.deployment, reply.trace))
    await call.respond(200, reply.embeddings.raw, headers)
    return reply.trace


async def models(call: Call, gen: Generation) -> None:
    """GET /v1/models: the routes, in OpenAI's list format."""
    await call.respond(200, gen.models_body, call.headers(JSON_TYPE))


async def model(call: Call, gen: Generation) -> None:
    """GET /v1/models/{name}"""
    name = call.scope["path"].removeprefix("/v1/models/")
    if name not in gen.router.route_names():
        message = f"unknown model {name!r}; see GET /v1/models"
        raise ClientError(Failure(404, message, code="model_not_found", param="model"))
    data = {"id": name, "object": "model", "created": int(gen.loaded_at), "owned_by": "failover"}
    await call.respond(200, orjson.dumps(data), call.headers(JSON_TYPE))
