"""Every adapter's answers, whole and streamed, leave no reference cycles of failover's own:
what a call allocated is freed as it ends, not left for the cycle collector."""

from __future__ import annotations

import pytest

from cycles import cyclic_garbage, ours

from .conftest import Pair
from .support import USER_HI, collect

ADAPTERS = ["openai", "anthropic", "gemini", "bedrock"]


@pytest.mark.parametrize("pair", ADAPTERS, indirect=True)
async def test_a_stream_leaves_no_cycles(pair: Pair) -> None:
    """A streamed answer read to its end leaves nothing of ours for the cycle collector."""
    await collect(pair.adapter.stream(USER_HI))  # warm: first-call caches are not per stream
    with cyclic_garbage() as garbage:
        chunks = await collect(pair.adapter.stream(USER_HI))
    assert chunks
    assert not ours(garbage)


@pytest.mark.parametrize("pair", ADAPTERS, indirect=True)
async def test_a_whole_answer_leaves_no_cycles(pair: Pair) -> None:
    """A whole answer leaves nothing of ours for the cycle collector."""
    await pair.adapter.complete(USER_HI)
    with cyclic_garbage() as garbage:
        payload = await pair.adapter.complete(USER_HI)
    assert payload.body["choices"]
    assert not ours(garbage)
