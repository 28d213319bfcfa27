"""A fake Vertex AI server on 127.0.0.1: Gemini and Claude publisher models of one project and
location, behind OAuth bearer tokens issued by a `FakeTokenServer`.

    POST /v1/projects/P/locations/L/publishers/google/models/M:generateContent
    POST ...:streamGenerateContent?alt=sse                 Gemini JSON / SSE (as AI Studio)
    POST /v1/projects/P/locations/L/publishers/anthropic/models/M:rawPredict
    POST ...:streamRawPredict                              Anthropic Messages JSON / SSE
    GET  /v1/publishers/{google|anthropic}/models/M        a Model Garden entry

Requests without a bearer token, or with one the token server did not issue or that expired,
get Google's real 401 body. Claude bodies must carry `anthropic_version` and no `model`.
Faults are scripted with `push(...)`: `rate_limited()`, `unavailable()`, `context_too_long()`,
cut streams (`cut_after=`), slow first bytes (`Delay`).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from .anthropic_server import FakeAnthropic
from .gemini_server import FakeGemini
from .google_token_server import FakeTokenServer
from .server import Behaviour, FakeServer, Received, Reply, Stream, sse

__all__ = ["FakeVertex"]

ANTHROPIC_VERSION = "vertex-2023-10-16"
GEMINI_TEXT = "Hello from Gemini on Vertex."
CLAUDE_TEXT = "Hello from Claude on Vertex."
MODELS = {"google": {"gemini-2.0-flash", "gemini-2.5-pro"}, "anthropic": {"claude-sonnet-4-5"}}
_GENERATE = re.compile(
    r"^/v1/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"
    r"/publishers/(?P<publisher>[^/]+)/models/(?P<model>[^/:]+):(?P<method>\w+)$"
)
_GARDEN = re.compile(r"^/v1/publishers/(?P<publisher>[^/]+)/models/(?P<model>[^/:@]+)$")
_UNAUTHENTICATED = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login "
    "cookie or other valid authentication credential. See "
    "https://developers.google.com/identity/sign-in/web/devconsole-project."
)
_MISSING = _UNAUTHENTICATED.replace("had invalid", "is missing required").replace(
    "credentials.", "credential.", 1
)


class FakeVertex(FakeServer):
    """Vertex AI for `project` in `location`; `base_url` is what the adapter is pointed at."""

    def __init__(
        self,
        tokens: FakeTokenServer,
        *,
        project: str = "fake-project",
        location: str = "us-central1",
    ) -> None:
        super().__init__()
        self.tokens = tokens
        self.project = project
        self.location = location

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def bearer(self, index: int) -> str:
        """The bearer token request `index` carried."""
        return self.requests[index].headers.get("authorization", "").removeprefix("Bearer ")

    def answer(self, received: Received) -> Behaviour:
        if (refused := self._refused(received)) is not None:
            return refused
        if received.method == "GET" and (garden := _GARDEN.match(received.path)):
            return self._garden(garden["publisher"], garden["model"])
        call = _GENERATE.match(received.path)
        if call is None or received.method != "POST":
            return self.error(404, "NOT_FOUND", f"The requested URL {received.path} was not found")
        if (call["project"], call["location"]) != (self.project, self.location):
            return self.permission_denied(received.path.removeprefix("/v1/").partition(":")[0])
        model = call["model"].partition("@")[0]
        if model not in MODELS.get(call["publisher"], set()):
            name = received.path.removeprefix("/v1/").partition(":")[0]
            return self.error(404, "NOT_FOUND", f"Publisher Model `{name}` was not found")
        if call["publisher"] == "google":
            return self._gemini(call["method"], received)
        return self._claude(call["method"], received, model)

    # -- the two formats ---------------------------------------------------------------------

    def _gemini(self, method: str, received: Received) -> Behaviour:
        if method == "generateContent":
            return Reply(FakeGemini.response(GEMINI_TEXT))
        if method == "streamGenerateContent" and received.query.get("alt") == "sse":
            return self.gemini_stream([GEMINI_TEXT[:5], GEMINI_TEXT[5:]])
        return self.error(400, "INVALID_ARGUMENT", f"unsupported method {method}")

    def _claude(self, method: str, received: Received, model: str) -> Behaviour:
        body = received.json or {}
        if "model" in body:
            return FakeAnthropic.error(
                400, "invalid_request_error", "model: Extra inputs are not permitted"
            )
        if body.get("anthropic_version") != ANTHROPIC_VERSION:
            message = f"anthropic_version: Input should be '{ANTHROPIC_VERSION}'"
            return FakeAnthropic.error(400, "invalid_request_error", message)
        if method == "rawPredict" and not body.get("stream"):
            return Reply(FakeAnthropic.message(CLAUDE_TEXT, model=model))
        if method == "streamRawPredict" and body.get("stream"):
            return self.claude_stream([CLAUDE_TEXT[:5], CLAUDE_TEXT[5:]], model=model)
        return self.error(
            400, "INVALID_ARGUMENT", f"{method} does not match stream={body.get('stream')}"
        )

    def _garden(self, publisher: str, model: str) -> Reply:
        if model not in MODELS.get(publisher, set()):
            name = f"publishers/{publisher}/models/{model}"
            return self.error(404, "NOT_FOUND", f"Publisher Model `{name}` not found.")
        return Reply(
            {
                "name": f"publishers/{publisher}/models/{model}",
                "versionId": "001",
                "openSourceCategory": "PROPRIETARY",
                "launchStage": "GA",
            }
        )

    def _refused(self, received: Received) -> Reply | None:
        header = received.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            return self.unauthenticated("CREDENTIALS_MISSING", _MISSING)
        token = header.removeprefix("Bearer ")
        if token in self.tokens.issued and not self.tokens.valid(token):
            return self.unauthenticated("ACCESS_TOKEN_EXPIRED")
        if not self.tokens.valid(token):
            return self.unauthenticated("ACCESS_TOKEN_TYPE_UNSUPPORTED")
        return None

    # -- behaviours --------------------------------------------------------------------------

    @staticmethod
    def gemini_stream(
        pieces: list[str],
        *,
        gates: dict[int, asyncio.Event] | None = None,
        cut_after: int | None = None,
    ) -> Stream:
        """Gemini SSE chunks (CRLF framed, as Google sends them): one per piece, then the finish."""
        frames = [sse(chunk, crlf=True) for chunk in FakeGemini.chunks(pieces)]
        return Stream(frames, gates=gates or {}, cut_after=cut_after)

    @staticmethod
    def claude_stream(
        pieces: list[str],
        *,
        model: str = "claude-sonnet-4-5",
        gates: dict[int, asyncio.Event] | None = None,
        cut_after: int | None = None,
    ) -> Stream:
        """Anthropic's Messages event stream, as streamRawPredict relays it."""
        frames = FakeAnthropic.events(pieces, model=model)
        return Stream(frames, gates=gates or {}, cut_after=cut_after)

    @staticmethod
    def error(code: int, status: str, message: str, **kwargs: Any) -> Reply:
        """A google.rpc error body: `{"error": {"code", "message", "status"}}`."""
        return FakeGemini.error(code, status, message, **kwargs)

    @classmethod
    def unauthenticated(cls, reason: str, message: str = _UNAUTHENTICATED) -> Reply:
        info = {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": reason,
            "metadata": {"service": "aiplatform.googleapis.com"},
        }
        return cls.error(401, "UNAUTHENTICATED", message, details=[info])

    @classmethod
    def permission_denied(cls, resource: str) -> Reply:
        message = (
            "Permission 'aiplatform.endpoints.predict' denied on resource "
            f"'//aiplatform.googleapis.com/{resource}' (or it may not exist)."
        )
        info = {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "IAM_PERMISSION_DENIED",
            "domain": "aiplatform.googleapis.com",
        }
        return cls.error(403, "PERMISSION_DENIED", message, details=[info])

    @classmethod
    def rate_limited(cls) -> Reply:
        message = (
            "Resource exhausted. Please try again later. Please refer to "
            "https://cloud.google.com/vertex-ai/generative-ai/docs/error-code-429 for more details."
        )
        return cls.error(429, "RESOURCE_EXHAUSTED", message)

    @classmethod
    def unavailable(cls) -> Reply:
        return cls.error(503, "UNAVAILABLE", "The service is currently unavailable.")

    @classmethod
    def context_too_long(cls) -> Reply:
        message = (
            "The input token count (1200000) exceeds the maximum number of tokens allowed "
            "(1048576)."
        )
        return cls.error(400, "INVALID_ARGUMENT", message)
