"""The Anthropic-compatible endpoint: POST /v1/messages, whole and streamed.

The request goes through the router in Anthropic's own format (the `ANTHROPIC` dialect): a
deployment that speaks Messages gets it as it is (prompt caching, extended thinking,
documents, citations, the client's beta headers) and its answer comes back byte for byte;
any other deployment gets it translated to OpenAI chat and its answer translated back (see
`anthropic_format`). So an Anthropic SDK client gets the same failover as an OpenAI one, over
any mix of providers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..trace import Trace
from .admission import admit
from .anthropic_format import ANTHROPIC, messages_request
from .controls import read_controls
from .http import JSON_TYPE, Call
from .streaming import AnthropicEncoder, relay, routing_headers

if TYPE_CHECKING:
    from .generation import Generation

__all__ = ["messages"]


async def messages(call: Call, gen: Generation) -> Trace | None:
    """POST /v1/messages"""
    body = await call.json(gen.max_body)
    model, stream = messages_request(body)
    controls = read_controls(call.controls, gen.max_deadline)
    route = controls.route or model
    with admit(call, gen, route, controls, stream=stream, anthropic=True):
        kwargs = {"request_id": call.request_id, "dialect": ANTHROPIC, **controls.router}
        kwargs["headers"] = _anthropic_headers(call)
        if stream:
            stream_reply = await gen.router.open_stream(route, body, **kwargs)
            await relay(call, stream_reply, AnthropicEncoder(model), call.headers())
            return None
        reply = await gen.router.complete(route, body, **kwargs)
    headers = call.headers(JSON_TYPE, *routing_headers(reply.route, reply.deployment, reply.trace))
    await call.respond(200, reply.completion.raw, headers)
    return reply.trace


def _anthropic_headers(call: Call) -> dict[str, str]:
    """The client's `anthropic-version` and `anthropic-beta`, passed on to deployments that
    speak Messages."""
    return {
        name.decode("latin-1"): value.decode("latin-1")
        for name, value in call.scope["headers"]
        if name in (b"anthropic-version", b"anthropic-beta")
    }
