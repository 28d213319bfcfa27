"""A fake AWS Bedrock speaking the Converse wire format: Converse JSON answers, ConverseStream
answers in real `application/vnd.amazon.eventstream` framing, AWS error answers
(`x-amzn-ErrorType` + `{"message"}`), and the control-plane GETs a health probe makes.

Every request's SigV4 signature is checked the way AWS checks it: recomputed with botocore's
`SigV4Auth` from the fake's own credentials, the headers the request says it signed and its
own `x-amz-date`. A wrong key id, secret or session token gets Bedrock's real 403 answer.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import re
import struct
import uuid
import zlib
from datetime import UTC, datetime
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from .server import Behaviour, FakeServer, Received, Reply, Stream

__all__ = ["ACCESS_KEY", "SECRET_KEY", "FakeBedrock", "event_message", "exception_message"]

ACCESS_KEY = "AKIAFAKEBEDROCK7Q2Z"
SECRET_KEY = "fAkEsEcReT/bedrock+0123456789abcdefGHIJK"
DEFAULT_TEXT = "Hello from the fake Bedrock."
EVENTSTREAM = "application/vnd.amazon.eventstream"
USAGE = {"inputTokens": 12, "outputTokens": 7, "totalTokens": 19}
MAX_SKEW = 300.0  # seconds: AWS refuses a signature dated more than 5 minutes away
_AUTH = re.compile(r"AWS4-HMAC-SHA256 Credential=([^,]+), SignedHeaders=([^,]+), Signature=(\w+)")
_MODEL_PATH = re.compile(r"^/model/(?P<model>[^/]+)/(?P<action>converse|converse-stream)$")
_BAD_SIGNATURE = (
    "The request signature we calculated does not match the signature you provided. Check your "
    "AWS Secret Access Key and signing method. Consult the service documentation for details."
)
_BAD_TOKEN = "The security token included in the request is invalid."
ToolUse = tuple[str, str, list[str]]  # (toolUseId, name, pieces of the input JSON as streamed)
TRAILING_WHITESPACE = (
    "The model returned the following errors: "
    "messages: final assistant content cannot end with trailing whitespace"
)
PREFILL_REFUSED = (
    "The model returned the following errors: This model does not support assistant message "
    "prefill. The conversation must end with a user message."
)


def event_message(headers: dict[str, str], payload: bytes) -> bytes:
    """One event-stream message: prelude, its CRC32, string headers, payload, message CRC32."""
    encoded = b"".join(_header(name.encode(), value.encode()) for name, value in headers.items())
    prelude = struct.pack(">II", 12 + len(encoded) + len(payload) + 4, len(encoded))
    head = prelude + struct.pack(">I", zlib.crc32(prelude))
    body = head + encoded + payload
    return body + struct.pack(">I", zlib.crc32(body))


def _header(name: bytes, value: bytes) -> bytes:
    # name length (1 byte), name, type 7 (a string), value length (2 bytes), value
    return struct.pack(">B", len(name)) + name + b"\x07" + struct.pack(">H", len(value)) + value


def event(event_type: str, data: dict[str, Any]) -> bytes:
    """A Converse stream event, padded with a "p" field as Bedrock pads its events."""
    padded = {**data, "p": "abcdefghijklmnopqrstuvwxyz"[: 4 + len(event_type) % 20]}
    headers = {
        ":event-type": event_type,
        ":content-type": "application/json",
        ":message-type": "event",
    }
    return event_message(headers, json.dumps(padded, separators=(",", ":")).encode())


def exception_message(exception_type: str, message: str, **fields: Any) -> bytes:
    """An exception inside a stream: `:message-type: exception`, e.g. throttlingException."""
    headers = {
        ":exception-type": exception_type,
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    return event_message(headers, json.dumps({"message": message, **fields}).encode())


class FakeBedrock(FakeServer):
    """Bedrock runtime and control plane at `base_url`, checking each request's SigV4 signature.

    A trailing assistant message is continued, as Claude on Converse does (and refused when
    it ends in whitespace).
    """

    lead = 1  # messageStart
    malformed = event_message(
        {
            ":event-type": "contentBlockDelta",
            ":content-type": "application/json",
            ":message-type": "event",
        },
        b'{"contentBlockIndex":0,"delta":{"te',
    )

    def __init__(
        self,
        *,
        access_key: str = ACCESS_KEY,
        secret_key: str = SECRET_KEY,
        session_token: str | None = None,
        region: str = "us-east-1",
        api_key: str | None = None,
        text: str = DEFAULT_TEXT,
    ) -> None:
        super().__init__()
        self.credentials = Credentials(access_key, secret_key, session_token)
        self.region = region
        self.api_key = api_key
        self.text = text
        self.verified = 0  # requests whose signature was checked and found right

    def _next(self, received: Received) -> Behaviour:
        # AWS checks the signature before anything else: scripted answers only reach
        # requests that pass it
        denied = self.authenticate(received)
        return denied if denied is not None else super()._next(received)

    def answer(self, received: Received) -> Reply | Stream:
        found = _MODEL_PATH.match(received.raw_path.partition("?")[0])
        if received.method == "POST" and found:
            prefix = _assistant_prefix((received.json or {}).get("messages"))
            if prefix is not None and prefix != prefix.rstrip():
                return self.error(400, "ValidationException", TRAILING_WHITESPACE)
            if prefix is not None and self.prefill == "refuse":
                return self.error(400, "ValidationException", PREFILL_REFUSED)
            text = self.continued(prefix)
            if found["action"] == "converse-stream":
                return self.stream(self.split(text))
            return Reply(self.converse(text), headers=_request_id())
        if received.method == "GET":
            return self.control_plane(received)
        return self.error(404, "UnknownOperationException", "Unknown operation")

    # -- signatures --------------------------------------------------------------------------

    def authenticate(self, received: Received) -> Reply | None:
        """None when the request is signed right (or carries the API key), else AWS's 403."""
        authorization = received.headers.get("authorization", "")
        if self.api_key is not None and authorization == f"Bearer {self.api_key}":
            return None
        parsed = _AUTH.fullmatch(authorization)
        if parsed is None:
            return self.error(
                403, "MissingAuthenticationTokenException", "Missing Authentication Token"
            )
        scope, signed_headers, signature = parsed.groups()
        access_key, _, _ = scope.partition("/")
        token = self.credentials.token
        if access_key != self.credentials.access_key or (
            token is not None and received.headers.get("x-amz-security-token") != token
        ):
            return self.error(403, "UnrecognizedClientException", _BAD_TOKEN)
        stamp = received.headers.get("x-amz-date", "")
        if (skew := _skew(stamp)) is None or skew > MAX_SKEW:
            return self.error(403, "InvalidSignatureException", f"Signature expired: {stamp}")
        expected, canonical = self.signature(received, signed_headers.split(";"), stamp)
        if not hmac.compare_digest(expected, signature):
            # AWS names the canonical request it expected; it holds the session token
            expected_string = (
                f"The Canonical String for this request should have been\n'{canonical}'"
            )
            detail = f"{_BAD_SIGNATURE}\n\n{expected_string}\n"
            return self.error(403, "InvalidSignatureException", detail)
        self.verified += 1
        return None

    def signature(
        self, received: Received, signed_headers: list[str], stamp: str
    ) -> tuple[str, str]:
        """The signature AWS expects for `received`, and the canonical request behind it."""
        headers = {name: received.headers.get(name, "") for name in signed_headers}
        url = f"{self.url}{received.raw_path}"
        request = AWSRequest(method=received.method, url=url, headers=headers, data=received.body)
        request.context["timestamp"] = stamp
        signer = SigV4Auth(self.credentials, "bedrock", self.region)
        canonical = signer.canonical_request(request)
        return signer.signature(signer.string_to_sign(request, canonical), request), canonical

    # -- control plane -----------------------------------------------------------------------

    def control_plane(self, received: Received) -> Reply:
        path = received.path
        if path.startswith("/foundation-models/"):
            model_id = path.removeprefix("/foundation-models/")
            details = {
                "modelId": model_id,
                "providerName": "Anthropic",
                "modelLifecycle": {"status": "ACTIVE"},
            }
            return Reply({"modelDetails": details}, headers=_request_id())
        if path.startswith("/inference-profiles/"):
            profile = path.removeprefix("/inference-profiles/")
            return Reply(
                {"inferenceProfileId": profile, "status": "ACTIVE", "type": "SYSTEM_DEFINED"}
            )
        if path == "/inference-profiles":
            return Reply({"inferenceProfileSummaries": []})
        return self.error(404, "ResourceNotFoundException", f"Resource not found: {path}")

    # -- bodies ------------------------------------------------------------------------------

    @staticmethod
    def converse(
        text: str | None = DEFAULT_TEXT,
        *,
        tool_uses: list[tuple[str, str, dict[str, Any]]] | None = None,
        stop_reason: str = "end_turn",
        usage: dict[str, int] | None = None,
    ) -> dict[str, Any]:
        """A Converse response: text and/or toolUse blocks, stopReason, usage, metrics."""
        content: list[dict[str, Any]] = [{"text": text}] if text else []
        for id_, name, input_ in tool_uses or []:
            content.append({"toolUse": {"toolUseId": id_, "name": name, "input": input_}})
        return {
            "output": {"message": {"role": "assistant", "content": content}},
            "stopReason": stop_reason,
            "usage": usage or USAGE,
            "metrics": {"latencyMs": 412},
        }

    @staticmethod
    def events(
        pieces: list[str],
        *,
        tool: ToolUse | None = None,
        stop_reason: str | None = None,
        usage: dict[str, int] | None = None,
        metadata: bool = True,
    ) -> list[bytes]:
        """A ConverseStream: messageStart, text deltas, an optional toolUse block, messageStop,
        and (unless told not to) metadata."""
        frames = [event("messageStart", {"role": "assistant"})]
        frames += [
            event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": p}})
            for p in pieces
        ]
        frames.append(event("contentBlockStop", {"contentBlockIndex": 0}))
        if tool is not None:
            id_, name, inputs = tool
            start = {"toolUse": {"toolUseId": id_, "name": name}}
            frames.append(event("contentBlockStart", {"contentBlockIndex": 1, "start": start}))
            frames += [
                event(
                    "contentBlockDelta",
                    {"contentBlockIndex": 1, "delta": {"toolUse": {"input": i}}},
                )
                for i in inputs
            ]
            frames.append(event("contentBlockStop", {"contentBlockIndex": 1}))
        reason = stop_reason or ("tool_use" if tool else "end_turn")
        frames.append(event("messageStop", {"stopReason": reason}))
        if metadata:
            metrics = {"latencyMs": 321}
            frames.append(event("metadata", {"usage": usage or USAGE, "metrics": metrics}))
        return frames

    # -- behaviours --------------------------------------------------------------------------

    def stream(
        self,
        pieces: list[str],
        *,
        tool: ToolUse | None = None,
        stop_reason: str | None = None,
        gates: dict[int, asyncio.Event] | None = None,
        cut_after: int | None = None,
        exception_after: int | None = None,
        exception: bytes | None = None,
        metadata: bool = True,
        malformed_after: int | None = None,
        stall_after: int | None = None,
        stall_for: float = 30.0,
    ) -> Stream:
        """A ConverseStream answer; `exception` (an `exception_message`) replaces the frames
        from `exception_after` on, as Bedrock ends a failing stream; faults as in `shaped`."""
        frames = self.events(pieces, tool=tool, stop_reason=stop_reason, metadata=metadata)
        if exception_after is not None:
            frames = [*frames[:exception_after], exception or self.stream_throttled()]
        return self.shaped(
            frames,
            gates=gates,
            cut_after=cut_after,
            malformed_after=malformed_after,
            stall_after=stall_after,
            stall_for=stall_for,
            headers=_request_id(),
            content_type=EVENTSTREAM,
        )

    @staticmethod
    def error(status: int, error_type: str, message: str) -> Reply:
        """An AWS error answer: `x-amzn-ErrorType` names the type, the body has the message."""
        headers = {
            "x-amzn-ErrorType": f"{error_type}:http://internal.amazon.com/coral/com.amazon.bedrock/",
            **_request_id(),
        }
        return Reply({"message": message}, status=status, headers=headers)

    @classmethod
    def throttled(cls) -> Reply:
        return cls.error(
            429, "ThrottlingException", "Too many requests, please wait before trying again."
        )

    @classmethod
    def model_not_ready(cls) -> Reply:
        message = "Model is not ready for inference. Wait and try your request again."
        return cls.error(429, "ModelNotReadyException", message)

    @classmethod
    def input_too_long(cls) -> Reply:
        return cls.error(400, "ValidationException", "Input is too long for requested model.")

    @staticmethod
    def stream_throttled() -> bytes:
        return exception_message(
            "throttlingException", "Too many requests, please wait before trying again."
        )


def _assistant_prefix(messages: Any) -> str | None:
    """The text of a trailing assistant message in a Converse request, or None."""
    last = messages[-1] if isinstance(messages, list) and messages else None
    if not isinstance(last, dict) or last.get("role") != "assistant":
        return None
    blocks = last.get("content") if isinstance(last.get("content"), list) else []
    return "".join(str(b.get("text") or "") for b in blocks if isinstance(b, dict))


def _skew(stamp: str) -> float | None:
    try:
        signed = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None
    return abs(datetime.now(UTC).timestamp() - signed.timestamp())


def _request_id() -> dict[str, str]:
    return {"x-amzn-RequestId": str(uuid.uuid4())}
