"""The HTTP target: load sent to a running gateway, faults switched through its admin API.

    POST {url}/v1/chat/completions                    the load (model = the route)
    POST {url}/admin/chaos/{deployment}               {"enabled": true, "faults": [...]} sets
                                                      the deployment's faults (a `chaos:` block);
                                                      {"enabled": true, "faults": []} clears them
    GET  {url}/admin/status                           polled for breaker / health state (a
                                                      failover gateway's `routes`, or a flat
                                                      `deployments` map)

Deployment names contain '/', sent as is (`/admin/chaos/openai/gpt-4o`). A gateway without the
chaos endpoint (404) still gets the load: the run says faults were not injected. Which
deployment answered and how many calls it took come from the `x-failover-deployment` and
`x-failover-attempts` headers; calls to deployments are not visible from outside.

A stream is read to its end. One that broke after content and was recovered ends with the
gateway's comment `: failover recovered this stream N time(s); began on A, finished on B`
before `[DONE]`; one that could not be recovered ends with an error event instead (and a
connection that closes without either broke too).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson

from ..chaos import BaseFault
from ..classify import classify_status
from ..errors import Kind
from ..types import Request
from .record import Mode, Outcome, Recorder

__all__ = ["HttpTarget", "fault_json"]

POLL_EVERY = 0.25  # seconds between status polls: the resolution of detection over HTTP


def fault_json(faults: list[BaseFault]) -> dict[str, Any]:
    """The admin API body that puts exactly `faults` on a deployment."""
    dumped = [{"type": f.type, **f.model_dump(mode="json", exclude_defaults=True)} for f in faults]
    return {"enabled": True, "faults": dumped}


class HttpTarget:
    """Drives a gateway over HTTP."""

    mode: Mode = "http"

    def __init__(
        self,
        url: str,
        route: str,
        *,
        api_key: str | None = None,
        admin_key: str | None = None,
        timeout: float = 300.0,
    ) -> None:
        self.url = url.rstrip("/")
        self.route = route
        self.deployments: list[str] = []
        self.notes: list[str] = []
        self._api_key = api_key
        self._admin_key = admin_key
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._recorder: Recorder | None = None
        self._chaos = True  # False once the gateway answered 404
        self._refused: set[str] = set()
        self._states: dict[str, str] = {}
        self._poller: asyncio.Task[None] | None = None
        self._status = True

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            limits = aiohttp.TCPConnector(limit=0, force_close=False)
            self._session = aiohttp.ClientSession(connector=limits, timeout=self._timeout)
        return self._session

    def attach(self, recorder: Recorder) -> None:
        self._recorder = recorder

    async def start(self) -> None:
        self._poller = asyncio.ensure_future(self._poll())

    def _headers(self, key: str | None) -> dict[str, str]:
        return {"authorization": f"Bearer {key}"} if key else {}

    async def send(self, request: Request, stream: bool) -> Outcome:
        body = {**request, "model": self.route}
        start = time.perf_counter()
        try:
            async with self.session.post(
                f"{self.url}/v1/chat/completions",
                data=orjson.dumps(body),
                headers={"content-type": "application/json", **self._headers(self._api_key)},
            ) as resp:
                deployment = resp.headers.get("x-failover-deployment")
                calls = int(resp.headers.get("x-failover-attempts", "0") or 0)
                self._saw(deployment)
                if resp.status != 200:
                    text = await resp.text()
                    return Outcome(False, classify_status(resp.status, text).value, calls)
                if not stream:
                    await resp.read()
                    return Outcome(True, "ok", calls, deployment)
                return await self._read_stream(resp, start, calls, deployment)
        except (aiohttp.ClientError, OSError):
            return Outcome(False, Kind.CONNECTION.value, 0)
        except TimeoutError:
            return Outcome(False, Kind.TIMEOUT.value, 0)

    async def _read_stream(
        self, resp: aiohttp.ClientResponse, start: float, calls: int, deployment: str | None
    ) -> Outcome:
        seen = _StreamEnd()
        async for line in resp.content:
            if seen.ttft is None and line.startswith(b"data:"):
                seen.ttft = time.perf_counter() - start
            seen.feed(line)
        if seen.done and seen.error is None:
            recovered = seen.recovered
            finished = seen.finished or deployment
            self._saw(finished)
            return Outcome(True, "ok", calls + recovered, finished, seen.ttft, recovered, recovered)
        # an error event, or a connection closed without [DONE]: broken after content
        kind = seen.error or Kind.CONNECTION.value
        return Outcome(False, kind, calls, None, seen.ttft, seen.recovered + 1, seen.recovered)

    def _saw(self, deployment: str | None) -> None:
        if deployment and deployment not in self.deployments:
            self.deployments.append(deployment)

    async def switch(self, deployment: str, faults: list[BaseFault]) -> bool:
        if not self._chaos or deployment in self._refused:
            return False
        url = f"{self.url}/admin/chaos/{quote(deployment, safe='/')}"
        try:
            async with self.session.post(
                url, json=fault_json(faults), headers=self._headers(self._admin_key)
            ) as resp:
                if resp.status < 300:
                    self._saw(deployment)
                    return True
                text = (await resp.text())[:200]
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            self._refused.add(deployment)
            self.notes.append(f"POST {url} failed ({exc!r}): faults on {deployment} not injected")
            return False
        self._refuse(url, deployment, resp.status, text)
        return False

    def _refuse(self, url: str, deployment: str, status: int, text: str) -> None:
        if status == 404 and "deployment" not in text.lower():
            self._chaos = False
            self.notes.append(
                f"the gateway has no chaos admin API (POST {url} answered 404): faults were "
                "not injected, this run measured the load only"
            )
        else:
            self._refused.add(deployment)
            self.notes.append(
                f"POST {url} answered {status}: faults on {deployment} not injected ({text})"
            )

    def breakers(self) -> dict[str, str]:
        return dict(self._states)

    def sample(self) -> None:
        return None  # the poller samples on its own, more often than ticks

    async def _poll(self) -> None:
        while self._status:
            await self._poll_once()
            await asyncio.sleep(POLL_EVERY)

    async def _poll_once(self) -> None:
        try:
            async with self.session.get(
                f"{self.url}/admin/status", headers=self._headers(self._admin_key)
            ) as resp:
                if resp.status != 200:
                    self._status = False
                    self.notes.append(
                        f"GET /admin/status answered {resp.status}: breaker states and "
                        "detection times are not available"
                    )
                    return
                status = await resp.json(loads=orjson.loads)
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError):
            return
        self._observe(_deployment_states(status))

    def _observe(self, deployments: dict[str, Any]) -> None:
        recorder = self._recorder
        if recorder is None:
            return
        for name, info in deployments.items():
            self._saw(name)
            breaker = info.get("breaker", "closed")
            if isinstance(breaker, dict):
                breaker = breaker.get("state", "closed")
            state = str(breaker)
            if self._states.get(name, "closed") != state:
                recorder.breaker(name, state)
            self._states[name] = state
            if "healthy" in info:
                recorder.health(name, bool(info["healthy"]))

    async def aclose(self) -> None:
        self._status = False
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        if self._session is not None:
            await self._session.close()


_RECOVERED = re.compile(
    rb"^: failover recovered this stream (\d+) time\(s\); began on (.*), finished on (.*?)\s*$"
)


class _StreamEnd:
    """What the lines of one OpenAI event stream said about how it ended."""

    __slots__ = ("done", "error", "finished", "recovered", "ttft")

    def __init__(self) -> None:
        self.ttft: float | None = None
        self.done = False  # `data: [DONE]` arrived
        self.error: str | None = None  # the kind of the error event it carried, if any
        self.recovered = 0  # breaks the gateway recovered (from its closing comment)
        self.finished: str | None = None  # the deployment that finished a recovered stream

    def feed(self, line: bytes) -> None:
        if line.startswith(b":"):
            found = _RECOVERED.match(line)
            if found is not None:
                self.recovered = int(found[1])
                self.finished = found[3].decode(errors="replace")
            return
        if not line.startswith(b"data:"):
            return
        data = line[5:].strip()
        if data == b"[DONE]":
            self.done = True
        elif self.error is None and data.startswith(b'{"error"'):
            self.error = _error_kind(data)


def _error_kind(data: bytes) -> str:
    """The kind of failure an error event names: of the attempt whose stream broke, in the
    trace the gateway attaches (`failover.attempts`), else a connection failure."""
    try:
        trace = orjson.loads(data).get("failover")
    except (orjson.JSONDecodeError, AttributeError):
        return Kind.CONNECTION.value
    attempts = trace.get("attempts") if isinstance(trace, dict) else None
    if not isinstance(attempts, list):
        return Kind.CONNECTION.value
    fine = (Kind.OK.value, Kind.CANCELLED.value)
    failed = [a for a in attempts if isinstance(a, dict) and a.get("outcome") not in fine]
    broke = [a for a in failed if "delivered_chars" in a and "recovery" not in a]
    for attempt in broke or failed:
        return str(attempt.get("outcome") or Kind.CONNECTION.value)
    return Kind.CONNECTION.value


def _deployment_states(status: dict[str, Any]) -> dict[str, Any]:
    """name -> {breaker, healthy, ...}: from a failover gateway's routes (each deployment with a
    breaker object), or from a flat top-level `deployments` map (breaker as a string)."""
    found: dict[str, Any] = {}
    routes = status.get("routes")
    for route in routes.values() if isinstance(routes, dict) else ():
        listed = route.get("deployments") if isinstance(route, dict) else None
        for dep in listed if isinstance(listed, list) else ():
            if isinstance(dep, dict) and isinstance(dep.get("name"), str):
                found.setdefault(dep["name"], dep)
    flat = status.get("deployments")
    if isinstance(flat, dict):
        found.update({str(k): v for k, v in flat.items() if isinstance(v, dict)})
    return found
