"""Requests in a client API other than OpenAI chat completions (a `Dialect`, such as
Anthropic's Messages), passed through where the deployment speaks it and translated where not.

    native       the deployment lists the dialect in `dialects`: the request goes as it is
                 (every field, the client's beta headers), the answer comes back as it was sent
    translated   any other deployment: the request is translated to OpenAI chat for it and its
                 answer back into the dialect; what has no equivalent is left out (each
                 dialect documents which fields survive)

So a route can mix formats and fail over between them: the client always gets its own API.
Streams keep their recovery: native stream events carry their OpenAI equivalent
(`NativeChunk.body`) for the router's bookkeeping, and a request that is continued elsewhere
is continued in the dialect (its messages take the assistant prefill just the same).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Protocol

from ._request import Call, Operation
from .types import BaseDeployment, Chunk, Completion, Payload, Request

__all__ = ["Dialect", "NativeComplete", "NativeSource"]

# request fields a continuation adds (see _resume.continue_request) that a translation must keep
_CONTINUATION_FLAGS = ("continue_final_message", "add_generation_prompt")


class Dialect(Protocol):
    """A client API, and how to translate it to and from OpenAI chat completions."""

    name: str  # what deployments list in `dialects` when they speak it natively

    def to_chat(self, request: Request) -> Request:
        """The OpenAI chat request for a request in this dialect (raises BadRequest)."""
        ...

    def from_chat(self, completion: Completion, request: Request) -> Payload:
        """The answer in this dialect for an OpenAI chat completion."""
        ...


def chat_request(dialect: Dialect, request: Request) -> Request:
    """`request` translated for a deployment that speaks only OpenAI chat."""
    chat = dialect.to_chat(request)
    for flag in _CONTINUATION_FLAGS:
        if flag in request:
            chat[flag] = request[flag]
    return chat


class NativeComplete(Operation[Completion]):
    """A whole answer to a request in `dialect`, in `dialect`, from any deployment."""

    def __init__(self, dialect: Dialect, headers: Mapping[str, str]) -> None:
        self.dialect = dialect
        self.headers = headers  # the client's own headers to pass on (e.g. beta features)

    async def send(self, call: Call, request: Request) -> Completion:
        deployment = call.slot.deployment
        if deployment.speaks(self.dialect.name):
            payload = await deployment.complete_native(self.dialect.name, request, self.headers)
            return Completion(raw=payload.raw)
        answer = await deployment.complete(chat_request(self.dialect, request))
        return Completion(raw=self.dialect.from_chat(answer, request).raw)


class NativeSource:
    """Where a stream of a request in `dialect` comes from, deployment by deployment: its own
    events where it speaks the dialect, else OpenAI chunks of the translated request."""

    def __init__(self, dialect: Dialect, headers: Mapping[str, str]) -> None:
        self.dialect = dialect
        self.headers = headers

    def passes_through(self, deployment: BaseDeployment) -> bool:
        """Whether `deployment` gets the client's request as it is, with fields the gateway
        does not read (a refusal of it may be that request's, not the deployment's)."""
        return deployment.speaks(self.dialect.name)

    def request_for(self, deployment: BaseDeployment, request: Request) -> Request:
        """The request as it is where `deployment` speaks the dialect, else translated."""
        if self.passes_through(deployment):
            return request
        return chat_request(self.dialect, request)

    def stream(self, deployment: BaseDeployment, request: Request) -> AsyncIterator[Chunk]:
        """`request_for`'s request streamed: the deployment's own events, or OpenAI chunks."""
        if self.passes_through(deployment):
            return deployment.stream_native(self.dialect.name, request, self.headers)
        return deployment.stream(request)
