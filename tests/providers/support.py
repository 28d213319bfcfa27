"""Helpers for the adapter tests: draining streams and checking OpenAI-format output against
both the official `openai` SDK types and OpenAI's published OpenAPI schema."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from openai.types.chat import ChatCompletion, ChatCompletionChunk

from failover.types import Chunk
from openapi_schema import validate

USER_HI = {"messages": [{"role": "user", "content": "Hi"}]}


async def collect(stream: AsyncIterator[Chunk]) -> list[dict[str, Any]]:
    """Every chunk's body, in order."""
    return [chunk.body async for chunk in stream]


def check_completion(body: dict[str, Any]) -> ChatCompletion:
    """`body` is a valid chat.completion for the SDK and for the OpenAPI schema."""
    validate("CreateChatCompletionResponse", body)
    return ChatCompletion.model_validate(body)


def check_chunks(bodies: list[dict[str, Any]]) -> list[ChatCompletionChunk]:
    """Every chunk is valid for the SDK and the schema, and has a finish_reason key."""
    parsed = []
    for body in bodies:
        validate("CreateChatCompletionStreamResponse", body)
        for entry in body["choices"]:
            assert "finish_reason" in entry and "logprobs" in entry
        parsed.append(ChatCompletionChunk.model_validate(body))
    return parsed


def text_of(bodies: list[dict[str, Any]]) -> str:
    return "".join(c["delta"].get("content") or "" for body in bodies for c in body["choices"])


def unreadable(chunk: Chunk) -> bool:
    """Whether `chunk` is one the router skips and counts as malformed (its body does not
    parse)."""
    try:
        return not chunk.body
    except ValueError:
        return True
