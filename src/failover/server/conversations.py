"""Where each Responses API answer's conversation lives, for follow-ups that name it by
`previous_response_id` (see `responses_api`): pinned to the deployment that created it, or kept
here when the gateway translated it. In memory, bounded, kept across config reloads."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

__all__ = ["MAX_CONVERSATIONS", "Conversations"]

MAX_CONVERSATIONS = 10_000  # follow-ups remembered, the oldest forgotten first


class Conversations:
    """Where each response's conversation lives: pinned to a deployment, or kept here."""

    def __init__(self, size: int = MAX_CONVERSATIONS) -> None:
        self.size = size
        self._pins: OrderedDict[str, str] = OrderedDict()  # response id -> deployment
        self._kept: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()  # id -> messages

    def pin(self, response_id: str, deployment: str) -> None:
        """A deployment created this response and holds its state."""
        _put(self._pins, response_id, deployment, self.size)

    def keep(self, response_id: str, messages: list[dict[str, Any]]) -> None:
        """The gateway translated this response: keep its conversation (as chat messages)."""
        _put(self._kept, response_id, messages, self.size)

    def owner(self, response_id: str) -> str | None:
        return self._pins.get(response_id)

    def conversation(self, response_id: str) -> list[dict[str, Any]] | None:
        return self._kept.get(response_id)

    def __len__(self) -> int:
        return len(self._pins) + len(self._kept)


def _put(store: OrderedDict[str, Any], key: str, value: Any, size: int) -> None:
    store[key] = value
    store.move_to_end(key)
    while len(store) > size:
        store.popitem(last=False)
