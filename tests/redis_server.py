"""A real `redis-server` for tests: started on a free 127.0.0.1 port in a temporary directory.

    with RedisServer() as server:        # or the `redis_server` fixture of tests/state/conftest.py
        store = RedisStore(server.url)
        server.kill()                    # Redis dies mid-use (SIGKILL, nothing saved)
        server.start()                   # ...and comes back, empty, on the same port
        server.pause()                   # or hangs (SIGSTOP) until server.resume()

No persistence (`--save '' --appendonly no`): every start is an empty Redis. Plain helper,
no pytest import, so any test (or a benchmark) can use it. A missing binary is an error that
says how to install it, never a reason to skip: `.ci/run` installs Debian's `redis-server`.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

__all__ = ["INSTALL_HINT", "REDIS_SERVER", "RedisServer", "free_port", "redis_available"]

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
INSTALL_HINT = "apt-get install redis-server (.ci/run installs it)"


def redis_available(binary: str = REDIS_SERVER) -> bool:
    """Whether a `redis-server` binary is installed."""
    return Path(binary).exists()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """One redis-server process; `start`, `kill` and `start` again keep the same port."""

    def __init__(self, *, port: int | None = None, binary: str = REDIS_SERVER) -> None:
        self.port = port or free_port()
        self.binary = binary
        self.host = "127.0.0.1"
        self._tmp = tempfile.TemporaryDirectory(prefix="failover-redis-")
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, *, timeout: float = 5.0) -> RedisServer:
        """Start the server and wait until it answers PING."""
        if self.running:
            return self
        if not redis_available(self.binary):
            raise RuntimeError(f"redis-server not found at {self.binary}: {INSTALL_HINT}")
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
            "--logfile", str(Path(self._tmp.name) / "redis.log"),
        ]  # fmt: skip
        self._proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        until = time.monotonic() + timeout
        while time.monotonic() < until:
            assert self._proc is not None
            if self._proc.poll() is not None:
                stderr = self._proc.stderr.read().decode() if self._proc.stderr else ""
                raise RuntimeError(f"redis-server exited: {stderr or self.log()}")
            if self._ping():
                return
            time.sleep(0.01)
        self.kill()
        raise RuntimeError(f"redis-server did not answer on port {self.port}: {self.log()}")

    def _ping(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.2) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
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
        path = Path(self._tmp.name) / "redis.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def close(self) -> None:
        """Stop the server and remove its directory."""
        self.stop()
        with contextlib.suppress(OSError):
            self._tmp.cleanup()

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<RedisServer {self.url} {'running' if self.running else 'stopped'}>"
