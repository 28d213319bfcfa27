"""Who may call the gateway.

Client keys (`server.api_keys`) guard the model APIs; a separate admin key (`server.admin_key`)
guards `/admin/*`. Keys are held only as SHA-256 digests and compared with
`hmac.compare_digest` against every configured digest, so neither the comparison nor the
number of keys tried leaks timing. A client presents its key as `Authorization: Bearer KEY`
or `x-api-key: KEY` (what the OpenAI and Anthropic SDKs send); the gateway never forwards it:
upstream calls carry only the provider credentials from the config.

    no api_keys      the model APIs are open (the CLI warns when binding a non-loopback host)
    no admin_key     /admin/* answers loopback clients only (127.0.0.0/8, ::1); others get 403
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Iterable

__all__ = ["AdminGuard", "KeyRing", "is_loopback"]


def _digest(key: bytes) -> bytes:
    return hashlib.sha256(key).digest()


class KeyRing:
    """A set of keys held as digests. Empty: everything is allowed."""

    __slots__ = ("_digests",)

    def __init__(self, keys: Iterable[str]) -> None:
        self._digests = tuple(_digest(k.encode()) for k in keys if k)

    @property
    def open(self) -> bool:
        """No keys configured."""
        return not self._digests

    def allows(self, presented: bytes | None) -> bool:
        """Whether `presented` is one of the keys (always true for an open ring)."""
        if not self._digests:
            return True
        digest = _digest(presented or b"")
        matched = False
        for known in self._digests:  # no early exit: every key costs the same
            matched |= hmac.compare_digest(known, digest)
        return matched and presented is not None

    def __len__(self) -> int:
        return len(self._digests)

    def __repr__(self) -> str:
        return f"<KeyRing keys={len(self._digests)}>"


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
