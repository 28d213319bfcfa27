"""A fake Gemini API server speaking the generativelanguage wire format: GenerateContentResponse
bodies, `streamGenerateContent?alt=sse` chunks framed with CRLF, google.rpc error bodies."""

from __future__ import annotations

import asyncio
from typing import Any

from .server import FakeServer, Received, Reply, Stream, sse

__all__ = ["FakeGemini"]

DEFAULT_TEXT = "Hello from the fake Gemini."
MODEL = "gemini-2.0-flash"
USAGE = {"promptTokenCount": 8, "candidatesTokenCount": 6, "totalTokenCount": 14}


class FakeGemini(FakeServer):
    """Gemini at `base_url` (`.../v1beta`): generateContent, streamGenerateContent, embeddings.

    A trailing `model` turn starts a new answer: Gemini does not continue it.
    """

    malformed = sse(b'{"candidates": [{"content": {"parts": [{"te', crlf=True)

    def __init__(self, *, api_key: str | None = None, text: str = DEFAULT_TEXT) -> None:
        super().__init__()
        self.api_key = api_key
        self.text = text

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1beta"

    def answer(self, received: Received) -> Reply | Stream:
        if self.api_key is not None and received.headers.get("x-goog-api-key") != self.api_key:
            return self.bad_key()
        path = received.path
        if path.endswith(":generateContent"):
            return Reply(self.response(self.text))
        if path.endswith(":streamGenerateContent"):
            if received.query.get("alt") != "sse":
                return self.error(400, "INVALID_ARGUMENT", "this fake only streams with alt=sse")
            return self.stream(self.split(self.text))
        if path.endswith(":batchEmbedContents"):
            count = len((received.json or {}).get("requests") or [])
            return Reply({"embeddings": [{"values": [0.25, -0.5, 1.0]}] * count})
        if received.method == "GET" and path.startswith("/v1beta/models/"):
            name = path.removeprefix("/v1beta/")
            return Reply({"name": name, "displayName": "Gemini", "inputTokenLimit": 1048576})
        return self.error(404, "NOT_FOUND", f"Method not found: {path}")

    # -- bodies ------------------------------------------------------------------------------

    @staticmethod
    def candidate(
        parts: list[dict[str, Any]], *, finish: str | None = "STOP", index: int = 0
    ) -> dict[str, Any]:
        out: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": index}
        if finish:
            out["finishReason"] = finish
        return out

    @classmethod
    def response(
        cls,
        text: str | None = DEFAULT_TEXT,
        *,
        calls: list[dict[str, Any]] | None = None,
        finish: str | None = "STOP",
        usage: dict[str, int] | None = USAGE,
    ) -> dict[str, Any]:
        """A GenerateContentResponse: text and/or `functionCall` parts in one candidate."""
        parts: list[dict[str, Any]] = [{"text": text}] if text else []
        parts += [{"functionCall": call} for call in calls or []]
        body: dict[str, Any] = {
            "candidates": [cls.candidate(parts, finish=finish)],
            "modelVersion": MODEL,
            "responseId": "resp_fake01",
        }
        if usage:
            body["usageMetadata"] = usage
        return body

    @classmethod
    def chunks(
        cls, pieces: list[str], *, calls: list[dict[str, Any]] | None = None
    ) -> list[dict[str, Any]]:
        """Stream chunks: one per piece; the last carries finishReason and usage."""
        out = [cls.response(p, finish=None, usage=None) for p in pieces]
        out.append(cls.response(None, calls=calls, finish="STOP"))
        return out

    # -- behaviours --------------------------------------------------------------------------

    def stream(
        self,
        pieces: list[str],
        *,
        calls: list[dict[str, Any]] | None = None,
        gates: dict[int, asyncio.Event] | None = None,
        cut_after: int | None = None,
        malformed_after: int | None = None,
        stall_after: int | None = None,
        stall_for: float = 30.0,
    ) -> Stream:
        """A streamed answer (see `chunks`), which ends with its body; faults as in `shaped`."""
        frames = [sse(c, crlf=True) for c in self.chunks(pieces, calls=calls)]
        return self.shaped(
            frames,
            gates=gates,
            cut_after=cut_after,
            malformed_after=malformed_after,
            stall_after=stall_after,
            stall_for=stall_for,
        )

    @staticmethod
    def error_event(code: int, status: str, message: str) -> bytes:
        """An error inside a 200 stream: a google.rpc error as one more SSE chunk."""
        error = {"error": {"code": code, "message": message, "status": status}}
        return sse(error, crlf=True)

    @staticmethod
    def error(
        code: int,
        status: str,
        message: str,
        *,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        """A google.rpc error: `{"error": {"code", "message", "status", "details"}}`."""
        body: dict[str, Any] = {"code": code, "message": message, "status": status}
        if details:
            body["details"] = details
        return Reply({"error": body}, status=code, headers=headers or {}, indent=2)

    @classmethod
    def bad_key(cls) -> Reply:
        info = {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "API_KEY_INVALID",
            "domain": "googleapis.com",
        }
        message = "API key not valid. Please pass a valid API key."
        return cls.error(400, "INVALID_ARGUMENT", message, details=[info])

    @classmethod
    def rate_limited(cls, retry_delay: str = "27s") -> Reply:
        retry = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay}
        message = "You exceeded your current quota, please check your plan and billing details."
        return cls.error(429, "RESOURCE_EXHAUSTED", message, details=[retry])

    @classmethod
    def blocked(cls, reason: str = "SAFETY") -> Reply:
        return Reply({"promptFeedback": {"blockReason": reason}, "modelVersion": MODEL})
