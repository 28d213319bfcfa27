"""A tiny OTLP/HTTP trace receiver: a real aiohttp server on 127.0.0.1 (random port) that takes
`POST /v1/traces` with a protobuf `ExportTraceServiceRequest`, as a collector would, decodes it
with `opentelemetry-proto`'s generated classes and keeps the spans.

    async with OTLPReceiver() as receiver:
        ... point an OTLP/HTTP exporter at receiver.endpoint ...
        receiver.spans                   # every span received, decoded
        receiver.resources               # the resource attributes of each export
        receiver.headers                 # the HTTP headers of each export
"""

from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass, field
from typing import Any, Self

from aiohttp import web
from multidict import CIMultiDict
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

__all__ = ["OTLPReceiver", "ReceivedEvent", "ReceivedSpan"]

PROTOBUF = "application/x-protobuf"
KINDS = {
    Span.SPAN_KIND_INTERNAL: "internal",
    Span.SPAN_KIND_SERVER: "server",
    Span.SPAN_KIND_CLIENT: "client",
    Span.SPAN_KIND_PRODUCER: "producer",
    Span.SPAN_KIND_CONSUMER: "consumer",
}
STATUSES = {
    Status.STATUS_CODE_UNSET: "unset",
    Status.STATUS_CODE_OK: "ok",
    Status.STATUS_CODE_ERROR: "error",
}


@dataclass
class ReceivedEvent:
    """One span event as received."""

    name: str
    attributes: dict[str, Any]


@dataclass
class ReceivedSpan:
    """One span as received: ids in hex, kind and status by name, attributes as Python values."""

    trace_id: str
    span_id: str
    parent_span_id: str  # "" for a root span
    name: str
    kind: str
    status: str
    status_message: str
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    events: list[ReceivedEvent] = field(default_factory=list)
    service: str = ""


def value(any_value: AnyValue) -> Any:
    """The Python value of an OTLP `AnyValue`."""
    kind = any_value.WhichOneof("value")
    if kind == "array_value":
        return [value(v) for v in any_value.array_value.values]
    if kind == "kvlist_value":
        return attributes(any_value.kvlist_value.values)
    return getattr(any_value, kind) if kind else None


def attributes(pairs: Any) -> dict[str, Any]:
    """OTLP `KeyValue`s as a dict."""
    out: dict[str, Any] = {}
    pair: KeyValue
    for pair in pairs:
        out[pair.key] = value(pair.value)
    return out


class OTLPReceiver:
    """Receives OTLP/HTTP trace exports on 127.0.0.1 and keeps what they held."""

    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self.resources: list[dict[str, Any]] = []
        self.headers: list[CIMultiDict[str]] = []
        self.exports = 0
        self.port = 0
        self._runner: web.AppRunner | None = None

    @property
    def endpoint(self) -> str:
        """The URL to give an exporter (the full traces path)."""
        return f"http://127.0.0.1:{self.port}/v1/traces"

    async def start(self) -> Self:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/traces", self._export)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _export(self, request: web.Request) -> web.Response:
        if request.content_type != PROTOBUF:
            return web.Response(status=415, text=f"expected {PROTOBUF}")
        body = _decompress(await request.read(), request.headers.get("content-encoding", ""))
        self.headers.append(CIMultiDict(request.headers))
        self.take(ExportTraceServiceRequest.FromString(body))
        reply = ExportTraceServiceResponse().SerializeToString()
        return web.Response(body=reply, content_type=PROTOBUF)

    def take(self, export: ExportTraceServiceRequest) -> None:
        """Keep the spans of one export request."""
        self.exports += 1
        for resource_spans in export.resource_spans:
            resource = attributes(resource_spans.resource.attributes)
            self.resources.append(resource)
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.spans.append(_received(span, str(resource.get("service.name", ""))))


def _received(span: Span, service: str) -> ReceivedSpan:
    return ReceivedSpan(
        trace_id=span.trace_id.hex(),
        span_id=span.span_id.hex(),
        parent_span_id=span.parent_span_id.hex(),
        name=span.name,
        kind=KINDS[span.kind],
        status=STATUSES[span.status.code],
        status_message=span.status.message,
        start_ns=span.start_time_unix_nano,
        end_ns=span.end_time_unix_nano,
        attributes=attributes(span.attributes),
        events=[ReceivedEvent(e.name, attributes(e.attributes)) for e in span.events],
        service=service,
    )


def _decompress(body: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    return body
