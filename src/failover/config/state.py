"""The `state:` setting: `memory`, or where the Redis that replicas share lives.

    redis://[[user]:password@]host[:6379][/db][?options]          one server (rediss:// for TLS)
    unix://[[user]:password@]/path/to/redis.sock[?db=0&options]   one server, on a local socket
    redis+sentinel://[[user]:password@]host:26379[,host:26379...]/master[/db][?options]
    redis+cluster://[[user]:password@]host:6379[,host:6379...][?options]

`rediss+sentinel://` and `rediss+cluster://` speak TLS (to the sentinels as well). The user
and password authenticate to Redis (the master, every node of a cluster); sentinels that
ask for their own credentials get `sentinel_username=` / `sentinel_password=`. Every option
is checked here, when the config loads, so `failover check` rejects what `failover serve`
would: an unknown option, a TLS option without TLS, a certificate file that is not there.
Messages never repeat the URL, which may hold a password.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote, urlsplit

__all__ = ["STATE_SCHEMES", "RedisMode", "RedisTarget", "parse_redis_url"]

RedisMode = Literal["server", "sentinel", "cluster"]

# scheme -> (mode, TLS)
STATE_SCHEMES: Mapping[str, tuple[RedisMode, bool]] = {
    "redis": ("server", False),
    "rediss": ("server", True),
    "unix": ("server", False),
    "redis+sentinel": ("sentinel", False),
    "rediss+sentinel": ("sentinel", True),
    "redis+cluster": ("cluster", False),
    "rediss+cluster": ("cluster", True),
}
_DEFAULT_PORT: Mapping[RedisMode, int] = {"server": 6379, "sentinel": 26379, "cluster": 6379}
_BOOLEANS = {"true": True, "yes": True, "on": True, "1": True}
_BOOLEANS |= {"false": False, "no": False, "off": False, "0": False}
_CERT_REQS = ("none", "optional", "required")


@dataclass(frozen=True, slots=True)
class RedisTarget:
    """A parsed Redis `state` URL: the mode, the hosts, credentials and connection options.

    `options` are redis-py connection arguments (TLS, keep-alive, health checks), already
    typed. Passwords stay out of the repr.
    """

    mode: RedisMode
    hosts: tuple[tuple[str, int], ...] = ()  # the server, the sentinels or the cluster's seeds
    socket: str | None = None  # a unix socket instead of hosts
    service: str | None = None  # the master's name in Sentinel
    db: int = 0
    tls: bool = False
    namespace: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    sentinel_username: str | None = None
    sentinel_password: str | None = field(default=None, repr=False)
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def tls_options(self) -> dict[str, Any]:
        """The `ssl_*` options alone (sentinel connections get them too)."""
        return {k: v for k, v in self.options.items() if k.startswith("ssl_")}

    def describe(self) -> str:
        """The URL again without credentials or options, for logs and the status page."""
        scheme = next(s for s, kind in STATE_SCHEMES.items() if kind == (self.mode, self.tls))
        if self.socket is not None:
            return f"unix://{self.socket}?db={self.db}"
        hosts = ",".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in self.hosts)
        if self.mode == "sentinel":
            return f"{scheme}://{hosts}/{self.service}/{self.db}"
        return f"{scheme}://{hosts}" + ("" if self.mode == "cluster" else f"/{self.db}")


def parse_redis_url(url: str) -> RedisTarget:
    """Parse and check a Redis `state` URL; a ValueError says what is wrong (never the URL)."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in STATE_SCHEMES:
        known = ", ".join(f"{s}://" for s in STATE_SCHEMES)
        raise ValueError(f"state must be 'memory' or a Redis URL ({known})")
    mode, tls = STATE_SCHEMES[scheme.lower()]
    parts = urlsplit(f"x://{rest}")
    if parts.fragment:
        raise ValueError("a Redis URL has no #fragment")
    userinfo, _, netloc = parts.netloc.rpartition("@")
    username, password = _credentials(userinfo)
    found: dict[str, Any] = {"mode": mode, "tls": tls, "username": username, "password": password}
    if scheme.lower() == "unix":
        if netloc or not parts.path or parts.path == "/":
            raise ValueError("a unix:// URL is the socket's path: unix:///run/redis/redis.sock")
        found["socket"] = unquote(parts.path)
    else:
        found["hosts"] = _hosts(netloc, mode)
        found.update(_path(parts.path, mode))
    _apply_options(found, parts.query, mode, tls)
    return RedisTarget(**found)


def _credentials(userinfo: str) -> tuple[str | None, str | None]:
    if not userinfo:
        return None, None
    user, _, password = userinfo.partition(":")
    return unquote(user) or None, unquote(password) or None


def _hosts(netloc: str, mode: RedisMode) -> tuple[tuple[str, int], ...]:
    if not netloc:
        if mode == "server":
            return (("localhost", 6379),)
        raise ValueError(f"a redis+{mode}:// URL lists its hosts: host:port,host:port")
    entries = netloc.split(",")
    if len(entries) > 1 and mode == "server":
        raise ValueError(
            "a redis:// URL names one server; for several use redis+sentinel:// or redis+cluster://"
        )
    return tuple(_host(entry, _DEFAULT_PORT[mode]) for entry in entries)


def _host(entry: str, default_port: int) -> tuple[str, int]:
    if entry.startswith("["):  # [::1]:6379
        host, _, port = entry[1:].partition("]")
        port = port.removeprefix(":")
    else:
        host, _, port = entry.rpartition(":") if ":" in entry else (entry, "", "")
    if not host:
        raise ValueError(f"a host is missing in {entry!r}" if entry else "an empty host")
    if not port:
        return host, default_port
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"invalid port {port!r} for host {host!r}")
    return host, int(port)


def _path(path: str, mode: RedisMode) -> dict[str, Any]:
    segments = [unquote(s) for s in path.strip("/").split("/")] if path.strip("/") else []
    if mode == "sentinel":
        if not segments or len(segments) > 2:
            raise ValueError(
                "a redis+sentinel:// URL names the master after its hosts: "
                "redis+sentinel://host:26379,host:26379/mymaster/0"
            )
        service, *db = segments
        return {"service": service, **({"db": _db("db", db[0])} if db else {})}
    if mode == "cluster":
        if segments not in ([], ["0"]):
            raise ValueError("Redis Cluster has only database 0: leave the path out")
        return {}
    if len(segments) > 1:
        raise ValueError("the path of a redis:// URL is the database number: redis://host:6379/0")
    return {"db": _db("db", segments[0])} if segments else {}


def _apply_options(found: dict[str, Any], query: str, mode: RedisMode, tls: bool) -> None:
    """Check each query option and put it where it belongs in `found`."""
    options: dict[str, Any] = {}
    given: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        given[name] = value  # the last one wins, as in redis-py
    for name, value in given.items():
        parsed = _parser(name, mode, tls)(name, value)
        if name in _TARGET_FIELDS:
            if found.get(name) not in (None, parsed):
                raise ValueError(f"{name} is given twice: in the URL and as {name}=")
            found[name] = parsed
        else:
            options[name] = parsed
    found["options"] = options


def _parser(name: str, mode: RedisMode, tls: bool) -> Callable[[str, str], Any]:
    if name in _TLS:
        if not tls:
            scheme = "rediss" if mode == "server" else f"rediss+{mode}"
            raise ValueError(f"{name}= needs TLS: use a {scheme}:// URL")
        return _TLS[name]
    if name == "db" and mode != "server":
        raise ValueError(f"db= is not an option of redis+{mode}:// URLs (see the path)")
    if name in _SENTINEL and mode != "sentinel":
        raise ValueError(f"{name}= is for redis+sentinel:// URLs only")
    parser = _COMMON.get(name) or _SENTINEL.get(name)
    if parser is None:
        known = ", ".join(sorted({*_COMMON, *_TLS, *_SENTINEL}))
        raise ValueError(f"unknown option {name}= (known: {known})")
    return parser


def _text(name: str, value: str) -> str:
    if not value:
        raise ValueError(f"{name}= must not be empty")
    return value


def _db(name: str, value: str) -> int:
    if not value.isdigit():
        raise ValueError(f"{name} must be a database number >= 0, not {value!r}")
    return int(value)


def _boolean(name: str, value: str) -> bool:
    try:
        return _BOOLEANS[value.lower()]
    except KeyError:
        raise ValueError(f"{name}= must be true or false, not {value!r}") from None


def _seconds(name: str, value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        raise ValueError(f"{name}= must be a number of seconds >= 0, not {value!r}")
    return seconds


def _cert_reqs(name: str, value: str) -> str:
    if value.lower() not in _CERT_REQS:
        raise ValueError(f"{name}= must be one of {', '.join(_CERT_REQS)}, not {value!r}")
    return value.lower()


def _file(name: str, value: str) -> str:
    path = Path(value).expanduser()
    if not path.is_file():
        raise ValueError(f"{name}=: no such file {str(path)!r}")
    return str(path)


_TARGET_FIELDS = frozenset(
    ("namespace", "username", "password", "db", "sentinel_username", "sentinel_password")
)
_COMMON: dict[str, Callable[[str, str], Any]] = {
    "namespace": _text,
    "db": _db,
    "username": _text,
    "password": _text,
    "socket_keepalive": _boolean,
    "health_check_interval": _seconds,
}
_TLS: dict[str, Callable[[str, str], Any]] = {
    "ssl_cert_reqs": _cert_reqs,
    "ssl_ca_certs": _file,
    "ssl_certfile": _file,
    "ssl_keyfile": _file,
    "ssl_check_hostname": _boolean,
}
_SENTINEL: dict[str, Callable[[str, str], Any]] = {
    "sentinel_username": _text,
    "sentinel_password": _text,
}
