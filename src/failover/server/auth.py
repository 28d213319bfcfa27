"""Who may call the gateway.

Client keys (`server.api_keys`) guard the model APIs; a separate admin key (`server.admin_key`)
guards `/admin/*`. Keys are held only as SHA-256 digests and compared with
`hmac.compare_digest` against every configured digest, so neither the comparison nor the
number of keys tried leaks timing. A client presents its key as `Authorization: Bearer KEY`
or `x-api-key: KEY` (what the OpenAI and Anthropic SDKs send); the gateway never forwards it:
upstream calls carry only the provider credentials from the config.

Each key is a `Client`: a name (for logs and quotas, never the key itself), the priority its
requests get, which is also the highest one they may ask for with `x-failover-priority`, and
whether it has quotas of its own (see `failover.resilience.admission`).

    no api_keys      the model APIs are open (the CLI warns when binding a non-loopback host);
                     `x-failover-priority` is taken as sent
    no admin_key     /admin/* answers loopback clients only (127.0.0.0/8, ::1); others get 403
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from ..config import ApiKeyConfig
from ..controls import Priority

__all__ = ["AdminGuard", "Client", "KeyRing", "is_loopback"]

_RANK = {Priority.LOW: 0, Priority.NORMAL: 1, Priority.HIGH: 2}


def _digest(key: bytes) -> bytes:
    return hashlib.sha256(key).digest()


@dataclass(frozen=True, slots=True)
class Client:
    """Whose key a request presented: its name, its priority, whether it has quotas."""

    name: str
    priority: Priority = Priority.NORMAL
    limited: bool = False  # quotas of its own in server.admission's key limits

    def grant(self, asked: Priority | None) -> Priority:
        """The priority a request asking for `asked` gets: never above the key's own."""
        if asked is None or _RANK[asked] > _RANK[self.priority]:
            return self.priority
        return asked


class KeyRing:
    """A set of keys held as digests, each with its `Client`. Empty: everything is allowed."""

    __slots__ = ("_entries",)

    def __init__(self, keys: Iterable[str | ApiKeyConfig]) -> None:
        entries = []
        for i, key in enumerate(keys, 1):
            if isinstance(key, str):
                if key:
                    entries.append((_digest(key.encode()), Client(f"key-{i}")))
                continue
            client = Client(key.name, Priority(key.priority), key.limited)
            entries.append((_digest(key.key.get_secret_value().encode()), client))
        self._entries = tuple(entries)

    @property
    def open(self) -> bool:
        """No keys configured."""
        return not self._entries

    def match(self, presented: bytes | None) -> Client | None:
        """The `Client` whose key `presented` is (None: no key matches, or the ring is open)."""
        if presented is None or not self._entries:
            return None
        digest = _digest(presented)
        found = None
        for known, client in self._entries:  # no early exit: every key costs the same
            found = client if hmac.compare_digest(known, digest) else found
        return found

    def allows(self, presented: bytes | None) -> bool:
        """Whether `presented` is one of the keys (always true for an open ring)."""
        return not self._entries or self.match(presented) is not None

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"<KeyRing keys={len(self._entries)}>"


class AdminGuard:
    """The admin key when one is configured; loopback clients only when none is."""

    __slots__ = ("_ring",)

    def __init__(self, admin_key: str | None) -> None:
        self._ring = KeyRing([admin_key] if admin_key else [])

    @property
    def keyed(self) -> bool:
        return not self._ring.open

    def check(self, presented: bytes | None, client_host: str | None) -> int:
        """0 when allowed, else the HTTP status to answer (401 wrong key, 403 not loopback)."""
        if self._ring.open:
            return 0 if is_loopback(client_host) else 403
        return 0 if self._ring.allows(presented) else 401


def is_loopback(host: str | None) -> bool:
    """Whether `host` (an ASGI client address) is this machine."""
    if not host:
        return False
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host == "localhost"
    mapped = getattr(address, "ipv4_mapped", None)
    return bool((mapped or address).is_loopback)
