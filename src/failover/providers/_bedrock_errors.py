"""Bedrock error answers onto the error kinds: the AWS error type decides first (`x-amzn-ErrorType`,
the body's `__type`, or an exception message's `:exception-type` inside a stream), then the
message (context window, misconfigured model id), then the HTTP status."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..classify import classify_status
from ..errors import Kind

__all__ = ["error_kind", "error_type_of", "message_of"]

_MAX_MESSAGE = 500
_KIND_BY_TYPE = {
    "ThrottlingException": Kind.RATE_LIMITED,
    "ServiceQuotaExceededException": Kind.RATE_LIMITED,
    "TooManyRequestsException": Kind.RATE_LIMITED,
    # a model being loaded (cold start) answers 429 ModelNotReady: worth a retry, not a cool-down
    "ModelNotReadyException": Kind.OVERLOADED,
    "ServiceUnavailableException": Kind.OVERLOADED,
    "InternalServerException": Kind.SERVER_ERROR,
    "InternalFailure": Kind.SERVER_ERROR,
    "ModelErrorException": Kind.SERVER_ERROR,
    "ModelStreamErrorException": Kind.SERVER_ERROR,
    "ModelTimeoutException": Kind.TIMEOUT,
    "AccessDeniedException": Kind.AUTH,
    "UnrecognizedClientException": Kind.AUTH,
    "InvalidSignatureException": Kind.AUTH,
    "SignatureDoesNotMatch": Kind.AUTH,
    "IncompleteSignatureException": Kind.AUTH,
    "MissingAuthenticationTokenException": Kind.AUTH,
    "InvalidClientTokenId": Kind.AUTH,
    "ExpiredTokenException": Kind.AUTH,
    "ResourceNotFoundException": Kind.NOT_FOUND,
}
_CONTEXT_MARKERS = (
    "input is too long",
    "too many input tokens",
    "prompt is too long",
    "too many total tokens",
    "exceeds the context window",
    "maximum context length",
)
# a ValidationException that no request can avoid: the deployment's model id is wrong for
# this account or region (or needs an inference profile), so fail over and count it
_MODEL_MARKERS = ("model identifier is invalid", "on-demand throughput")


def error_type_of(headers: Mapping[str, str], parsed: Any) -> str | None:
    """The bare AWS error type, from `x-amzn-ErrorType` ("ThrottlingException:http://...")
    or the body's `__type` ("com.amazon.coral.service#ThrottlingException")."""
    value = next((v for k, v in headers.items() if k.lower() == "x-amzn-errortype"), None)
    if not value and isinstance(parsed, dict):
        value = parsed.get("__type") or parsed.get("code")
    if not isinstance(value, str) or not value:
        return None
    return value.split(":", 1)[0].rsplit("#", 1)[-1] or None


def message_of(parsed: Any, raw: bytes) -> str:
    """The error's message (`message`, or `Message` in some AWS front-end answers)."""
    if isinstance(parsed, dict):
        for key in ("message", "Message"):
            if isinstance(value := parsed.get(key), str) and value:
                return value[:_MAX_MESSAGE]
    text = raw.decode("utf-8", "replace").strip()[:_MAX_MESSAGE]
    return text or "empty error body"


def error_kind(error_type: str | None, message: str, status: int | None, parsed: Any) -> Kind:
    """The kind of a Bedrock error (`status` is None for an exception inside a stream)."""
    if error_type == "ValidationException":
        return _validation_kind(message)
    if error_type == "ModelStreamErrorException" and isinstance(parsed, dict):
        # the model behind Bedrock failed mid-stream; its own status says how
        original = parsed.get("originalStatusCode")
        if isinstance(original, int) and 400 <= original < 600:
            return classify_status(original, str(parsed.get("originalMessage") or message))
    if (found := _KIND_BY_TYPE.get(error_type or "")) is not None:
        return found
    return classify_status(status or 500, f"{error_type or ''} {message}")


def _validation_kind(message: str) -> Kind:
    lowered = message.lower()
    if any(m in lowered for m in _CONTEXT_MARKERS):
        return Kind.CONTEXT_WINDOW
    if any(m in lowered for m in _MODEL_MARKERS):
        return Kind.NOT_FOUND
    return classify_status(400, message)
