"""Small asyncio helpers shared by the router's modules."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

__all__ = ["aclose_quietly"]


async def aclose_quietly(iterator: AsyncIterator[Any]) -> None:
    """Close an async iterator if it can be closed; a broken stream may fail to, harmlessly."""
    aclose = getattr(iterator, "aclose", None)  # plain async iterators have none
    if aclose is not None:
        with contextlib.suppress(Exception):
            await aclose()
