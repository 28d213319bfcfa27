"""The Anthropic-compatible endpoint: POST /v1/messages, whole and streamed.

Requests are translated to the router's canonical (OpenAI) format and answers translated back
(see `anthropic_format`), so an Anthropic SDK client gets the same failover as an OpenAI one,
over any mix of providers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

from ..trace import Trace
from .anthropic_format import to_anthropic_message, to_openai_request
from .controls import read_controls
from .http import JSON_TYPE, Call
from .streaming import AnthropicEncoder, relay, routing_headers

if TYPE_CHECKING:
    from .generation import Generation

__all__ = ["messages"]


async def messages(call: Call, gen: Generation) -> Trace | None:
    """POST /v1/messages"""
    body = await call.json(gen.max_body)
    model, request, stream = to_openai_request(body)
    controls = read_controls(call.scope["headers"], gen.max_deadline)
    route = controls.route or model
    rid = call.request_id
    if stream:
        stream_reply = await gen.router.open_stream(
            route, request, request_id=rid, **controls.router
        )
        await relay(call, stream_reply, AnthropicEncoder(model), call.headers())
        return None
    reply = await gen.router.complete(route, request, request_id=rid, **controls.router)
    message = to_anthropic_message(reply.completion.body, model)
    headers = call.headers(JSON_TYPE, *routing_headers(reply.route, reply.deployment, reply.trace))
    await call.respond(200, orjson.dumps(message), headers)
    return reply.trace
