"""Real Redis for tests: one `redis-server`, a Sentinel-watched pair, or a small Cluster, all
on free 127.0.0.1 ports in temporary directories.

    with RedisServer() as server:        # or the `redis_server` fixture of tests/state/conftest.py
        store = RedisStore(server.url)
        server.kill()                    # Redis dies mid-use (SIGKILL, nothing saved)
        server.start()                   # ...and comes back, empty, on the same port
        server.pause()                   # or hangs (SIGSTOP) until server.resume()

    with SentinelRedis() as redis:       # a primary, its replica, three sentinels (quorum 2)
        store = RedisStore(redis.url(namespace="x"))   # redis+sentinel://...
        redis.primary.kill()             # the sentinels promote the replica in ~2-3 s

    with ClusterRedis() as cluster:      # three masters, slots spread by redis-cli
        store = RedisStore(cluster.url(namespace="x")) # redis+cluster://...

No persistence (`--save '' --appendonly no`): every start is an empty Redis. Plain helpers,
no pytest import, so any test (or a benchmark) can use them. A missing binary is an error
that says how to install it, never a reason to skip: `.ci/run` installs Debian's
`redis-server` (sentinels are `redis-server --sentinel`) and `redis-tools` (`redis-cli`,
which creates the cluster).
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import redis

__all__ = [
    "CLI_INSTALL_HINT",
    "INSTALL_HINT",
    "OPENSSL",
    "OPENSSL_INSTALL_HINT",
    "REDIS_CLI",
    "REDIS_SERVER",
    "Certificates",
    "ClusterRedis",
    "RedisServer",
    "SentinelRedis",
    "SentinelServer",
    "free_port",
    "redis_available",
]

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"
OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
INSTALL_HINT = "apt-get install redis-server (.ci/run installs it)"
CLI_INSTALL_HINT = "apt-get install redis-tools (.ci/run installs it)"
OPENSSL_INSTALL_HINT = "apt-get install openssl (.ci/run installs it)"


def redis_available(binary: str = REDIS_SERVER) -> bool:
    """Whether a `redis-server` (or `redis-cli`) binary is installed."""
    return Path(binary).exists()


def free_port(*, below: int = 65536) -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (and less than `below`)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        if port < below:
            return port


def wait_for(predicate: Any, *, within: float, what: str) -> None:
    """Poll `predicate()` every 20 ms until it is true; a RuntimeError naming `what` if not."""
    until = time.monotonic() + within
    while True:
        with contextlib.suppress(redis.RedisError, OSError):
            if predicate():
                return
        if time.monotonic() > until:
            raise RuntimeError(f"{what} within {within}s")
        time.sleep(0.02)


@dataclass(frozen=True)
class Certificates:
    """A throw-away CA and a server certificate for 127.0.0.1 it signed (PEM files)."""

    ca: Path
    cert: Path
    key: Path

    @classmethod
    def make(cls, directory: Path, *, openssl: str = OPENSSL) -> Certificates:
        """Create them in `directory` with the openssl command (EC keys: quick)."""
        if not redis_available(openssl):
            raise RuntimeError(f"openssl not found at {openssl}: {OPENSSL_INSTALL_HINT}")
        ca, cert, key = directory / "ca.crt", directory / "redis.crt", directory / "redis.key"
        ca_key, csr, ext = directory / "ca.key", directory / "redis.csr", directory / "san.cnf"
        ext.write_text("subjectAltName=IP:127.0.0.1\n")
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        for args in (
            ["req", "-x509", *ec, "-keyout", ca_key, "-out", ca, "-days", "1", "-subj", "/CN=CA"],
            ["req", *ec, "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1"],
            ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
             "-out", cert, "-days", "1", "-extfile", ext],
        ):  # fmt: skip
            subprocess.run([openssl, *map(str, args)], capture_output=True, check=True)
        return cls(ca, cert, key)

    def settings(self) -> list[tuple[str, str]]:
        """Config settings of a server or sentinel that speaks TLS, to clients that bring no
        certificate of their own, and to the servers it replicates from or watches."""
        return [
            ("tls-cert-file", str(self.cert)),
            ("tls-key-file", str(self.key)),
            ("tls-ca-cert-file", str(self.ca)),
            ("tls-auth-clients", "no"),
            ("tls-replication", "yes"),
        ]


class RedisServer:
    """One redis-server process; `start`, `kill` and `start` again keep the same port.

    `password` sets `requirepass` (and `masterauth`, for a replica of a server with the same
    password); `tls` makes it speak TLS only; `args` are more command-line options
    (`--replicaof`, `--cluster-enabled`...).
    """

    kind = "redis-server"

    def __init__(
        self,
        *,
        port: int | None = None,
        binary: str = REDIS_SERVER,
        password: str | None = None,
        tls: Certificates | None = None,
        args: Sequence[str] = (),
    ) -> None:
        self.port = port or free_port()
        self.binary = binary
        self.host = "127.0.0.1"
        self.password = password
        self.tls = tls
        self.args = list(args)
        self._tmp = tempfile.TemporaryDirectory(prefix="failover-redis-")
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def dir(self) -> Path:
        return Path(self._tmp.name)

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        if self.tls:
            return f"rediss://{auth}{self.host}:{self.port}/0?ssl_ca_certs={self.tls.ca}"
        return f"redis://{auth}{self.host}:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def client(self, **kwargs: Any) -> redis.Redis:
        """A synchronous redis-py client of this server (close it after use)."""
        if self.tls:
            kwargs.update(ssl=True, ssl_ca_certs=str(self.tls.ca))
        return redis.Redis(self.host, self.port, password=self.password, socket_timeout=2, **kwargs)

    def start(self, *, timeout: float = 5.0) -> Self:
        """Start the server and wait until it answers PING."""
        if self.running:
            return self
        if not redis_available(self.binary):
            raise RuntimeError(f"{self.kind} not found at {self.binary}: {INSTALL_HINT}")
        self._proc = subprocess.Popen(
            self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        self._wait_ready(timeout)
        return self

    def command(self) -> list[str]:
        """The command line that starts this server."""
        args = [
            self.binary,
            "--port", str(self.port),
            "--bind", self.host,
            "--dir", self._tmp.name,
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--protected-mode", "no",
            "--loglevel", "warning",
            "--logfile", str(self.dir / "redis.log"),
        ]  # fmt: skip
        if self.password:
            args += ["--requirepass", self.password, "--masterauth", self.password]
        if self.tls:
            args[1:3] = ["--port", "0", "--tls-port", str(self.port)]
            args += [part for name, value in self.tls.settings() for part in (f"--{name}", value)]
        return args + self.args

    def _wait_ready(self, timeout: float) -> None:
        until = time.monotonic() + timeout
        while time.monotonic() < until:
            assert self._proc is not None
            if self._proc.poll() is not None:
                stderr = self._proc.stderr.read().decode() if self._proc.stderr else ""
                raise RuntimeError(f"{self.kind} exited: {stderr or self.log()}")
            if self._ping():
                return
            time.sleep(0.01)
        self.kill()
        raise RuntimeError(f"{self.kind} did not answer on port {self.port}: {self.log()}")

    def _ping(self) -> bool:
        auth = f"AUTH {self.password}\r\n".encode() if self.password else b""
        try:
            with contextlib.ExitStack() as stack:
                sock = stack.enter_context(socket.create_connection((self.host, self.port), 0.2))
                if self.tls:
                    context = ssl.create_default_context(cafile=str(self.tls.ca))
                    sock = stack.enter_context(context.wrap_socket(sock, server_hostname=self.host))
                sock.sendall(auth + b"PING\r\n")
                return b"+PONG" in sock.recv(64)
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL: Redis disappears at once, as in a crash."""
        self._end(kill=True)

    def pause(self) -> None:
        """SIGSTOP: Redis hangs, connections stay open and nothing answers."""
        if self._proc is not None:
            self._proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after `pause`."""
        if self._proc is not None:
            self._proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        """SIGTERM and wait."""
        self._end(kill=False)

    def _end(self, *, kill: bool) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)  # a paused server cannot handle SIGTERM
            proc.kill() if kill else proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if proc.stderr is not None:
            proc.stderr.close()

    def log(self) -> str:
        path = self.dir / "redis.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def close(self) -> None:
        """Stop the server and remove its directory."""
        self.stop()
        with contextlib.suppress(OSError):
            self._tmp.cleanup()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<{type(self).__name__} {self.host}:{self.port} {state}>"


class SentinelServer(RedisServer):
    """`redis-server sentinel.conf --sentinel`: one sentinel watching `service` on `master`.

    The config names this sentinel's id and the other sentinels and replicas it should know,
    so that it need not wait for their hello messages (every 2 s) before it can vote.
    """

    kind = "redis-server --sentinel"

    def __init__(
        self, *, service: str, settings: Sequence[str], myid: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.myid = myid or secrets.token_hex(20)
        self.service = service
        self.settings = list(settings)  # `sentinel ...` lines, after the monitor line

    def command(self) -> list[str]:
        ports = [f"port {self.port}"]
        if self.tls:
            ports = ["port 0", f"tls-port {self.port}"]
            ports += [f"{name} {value}" for name, value in self.tls.settings()]
        lines = [
            *ports,
            f"bind {self.host}",
            f"dir {self.dir}",
            f"logfile {self.dir / 'redis.log'}",
            "loglevel notice",  # +sdown, +odown, +switch-master: what happened, and when
            f"sentinel myid {self.myid}",
            *self.settings,
        ]
        if self.password:
            lines.append(f"requirepass {self.password}")
            lines.append(f"sentinel sentinel-pass {self.password}")
        conf = self.dir / "sentinel.conf"  # sentinels rewrite their config: a file of its own
        conf.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return [self.binary, str(conf), "--sentinel"]

    def master(self) -> tuple[str, int] | None:
        """Where this sentinel says the master is now."""
        with self.client(decode_responses=True) as client:
            found = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service)
        return (found[0], int(found[1])) if found else None


class SentinelRedis:
    """A primary, its replica and three sentinels (quorum 2) that fail it over quickly.

    `password` protects both Redis servers, `sentinel_password` the sentinels; a master not
    answering for `down_after_ms` is down, and a failover that stalls is retried after twice
    `failover_timeout_ms`.
    """

    def __init__(
        self,
        *,
        service: str = "mymaster",
        password: str | None = None,
        sentinel_password: str | None = None,
        down_after_ms: int = 1000,
        failover_timeout_ms: int = 3000,
        tls: Certificates | None = None,
    ) -> None:
        self.service = service
        self.tls = tls
        quick_sync = ["--repl-diskless-sync-delay", "0"]  # not 5 s waiting for more replicas
        self.primary = RedisServer(password=password, tls=tls, args=quick_sync)
        self.replica = RedisServer(
            password=password,
            tls=tls,
            args=[*quick_sync, "--replicaof", "127.0.0.1", str(self.primary.port)],
        )
        ports = [free_port() for _ in range(3)]
        ids = [secrets.token_hex(20) for _ in ports]
        common = [
            f"sentinel monitor {service} 127.0.0.1 {self.primary.port} 2",
            f"sentinel down-after-milliseconds {service} {down_after_ms}",
            f"sentinel failover-timeout {service} {failover_timeout_ms}",
            f"sentinel parallel-syncs {service} 1",
            f"sentinel known-replica {service} 127.0.0.1 {self.replica.port}",
        ]
        if password:
            common.append(f"sentinel auth-pass {service} {password}")
        self.sentinels = [
            SentinelServer(
                service=service,
                settings=common
                + [
                    f"sentinel known-sentinel {service} 127.0.0.1 {port} {other_id}"
                    for port, other_id in zip(ports, ids, strict=True)
                    if other_id != myid
                ],
                myid=myid,
                port=own_port,
                password=sentinel_password,
                tls=tls,
            )
            for own_port, myid in zip(ports, ids, strict=True)
        ]

    def url(self, *, namespace: str) -> str:
        """The `state` URL that finds this master through the three sentinels."""
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        auth = f":{self.primary.password}@" if self.primary.password else ""
        query = f"namespace={namespace}"
        if self.sentinels[0].password:
            query += f"&sentinel_password={self.sentinels[0].password}"
        scheme = "redis+sentinel"
        if self.tls:
            scheme, query = "rediss+sentinel", f"{query}&ssl_ca_certs={self.tls.ca}"
        return f"{scheme}://{auth}{hosts}/{self.service}/0?{query}"

    def master(self) -> tuple[str, int] | None:
        """Where the first sentinel that answers says the master is."""
        for sentinel in self.sentinels:
            with contextlib.suppress(redis.RedisError, OSError):
                return sentinel.master()
        return None

    def start(self, *, timeout: float = 10.0) -> Self:
        """Start both servers and the sentinels; wait until the replica is in sync and every
        sentinel sees the master healthy, its replica and both other sentinels."""
        self.primary.start()
        self.replica.start()
        for sentinel in self.sentinels:
            sentinel.start()
        wait_for(self._ready, within=timeout, what="the sentinels were not ready")
        return self

    def _ready(self) -> bool:
        with self.replica.client(decode_responses=True) as client:
            if client.info("replication").get("master_link_status") != "up":
                return False
        for sentinel in self.sentinels:
            with sentinel.client(decode_responses=True) as client:
                state = client.sentinel_master(self.service)
            if not state["is_master"] or state["is_sdown"] or state["is_odown"]:
                return False
            if state["num-other-sentinels"] != 2 or state["num-slaves"] < 1:
                return False
        return True

    def logs(self) -> str:
        """Every sentinel's log, for a failure message."""
        return "\n".join(f"--- sentinel {s.port}\n{s.log()}" for s in self.sentinels)

    def close(self) -> None:
        for server in (*self.sentinels, self.replica, self.primary):
            server.close()

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc: object) -> None:
        self.close()


class ClusterRedis:
    """A Redis Cluster of `masters` nodes (no replicas), its slots spread by `redis-cli`."""

    def __init__(self, *, masters: int = 3, cli: str = REDIS_CLI) -> None:
        self.cli = cli
        cluster_args = ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
        cluster_args += ["--cluster-node-timeout", "2000"]
        # a node's cluster bus listens on its port + 10000
        self.nodes = [
            RedisServer(port=free_port(below=55536), args=cluster_args) for _ in range(masters)
        ]

    def url(self, *, namespace: str) -> str:
        """The `state` URL that starts from the first two nodes."""
        hosts = ",".join(f"127.0.0.1:{node.port}" for node in self.nodes[:2])
        return f"redis+cluster://{hosts}?namespace={namespace}"

    def start(self, *, timeout: float = 15.0) -> Self:
        """Start the nodes, create the cluster and wait until every node says it is ok."""
        if not redis_available(self.cli):
            raise RuntimeError(f"redis-cli not found at {self.cli}: {CLI_INSTALL_HINT}")
        for node in self.nodes:
            self._start_node(node)
        hosts = [f"127.0.0.1:{node.port}" for node in self.nodes]
        create = [self.cli, "--cluster", "create", *hosts, "--cluster-replicas", "0"]
        done = subprocess.run(
            [*create, "--cluster-yes"], capture_output=True, timeout=timeout, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"redis-cli --cluster create failed: {done.stdout!r} {done.stderr!r}"
            )
        wait_for(self._ok, within=timeout, what="the cluster was not ok")
        return self

    @staticmethod
    def _start_node(node: RedisServer, *, tries: int = 3) -> None:
        # the bus port (port + 10000) was never checked free: another process may hold it
        for attempt in range(tries):
            try:
                node.start()
                return
            except RuntimeError as exc:
                if "in use" not in str(exc) or attempt == tries - 1:
                    raise
                node.port = free_port(below=55536)

    def _ok(self) -> bool:
        for node in self.nodes:
            with node.client(decode_responses=True) as client:
                if "cluster_state:ok" not in client.execute_command("CLUSTER", "INFO"):
                    return False
        return True

    def close(self) -> None:
        for node in self.nodes:
            node.close()

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc: object) -> None:
        self.close()
