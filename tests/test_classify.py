"""Tests for failover.classify and failover.errors: statuses, kinds, rate-limit headers."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest

from failover.classify import (
    Classifier,
    classify_status,
    parse_duration_header,
    parse_retry_after,
)
from failover.errors import (
    ERROR_CLASSES,
    AttemptTimeout,
    AuthFailed,
    BadRequest,
    Cancelled,
    ConfigError,
    ConnectionFailed,
    ContentFiltered,
    ContextWindowExceeded,
    FailoverError,
    Kind,
    ModelNotFound,
    Overloaded,
    ProviderError,
    RateLimited,
    ServerError,
    UnknownRoute,
    error_for,
)

NOW = 1_700_000_000.0  # a fixed wall-clock "now" for header arithmetic


# --- fake SDK-like exceptions ----------------------------------------------------------------


class FakeResponse:
    """Just enough of an httpx.Response: a status and headers."""

    def __init__(self, status_code: int, headers: dict[str, str] | None = None) -> None:
        self.status_code = status_code
        self.headers = headers or {}


class APIStatusError(Exception):
    """Shaped like openai/anthropic APIStatusError: status_code, response.headers, body."""

    def __init__(self, message: str, *, status: int, headers: dict[str, str], body: Any) -> None:
        super().__init__(message)
        self.status_code = status
        self.response = FakeResponse(status, headers)
        self.body = body


class ResponseOnlyError(Exception):
    """An error that only carries its status on `.response` (like httpx.HTTPStatusError)."""

    def __init__(self, status: int, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"HTTP {status}")
        self.response = FakeResponse(status, headers)


class APIConnectionError(Exception):
    """Named like the SDKs' connection error; no status."""


class APITimeoutError(APIConnectionError):
    """Named like the SDKs' timeout error, a subclass of the connection error as in openai."""


class MyRateLimitError(Exception):
    """A user's own exception type."""


def status_error(status: int, body: Any = None, **headers: str) -> APIStatusError:
    return APIStatusError(
        f"Error code: {status}",
        status=status,
        headers={k.replace("_", "-"): v for k, v in headers.items()},
        body=body,
    )


# --- statuses --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "text", "kind"),
    [
        (429, "", Kind.RATE_LIMITED),
        (401, "invalid api key", Kind.AUTH),
        (403, "forbidden", Kind.AUTH),
        (404, "model not found", Kind.NOT_FOUND),
        (400, "This model's maximum context length is 8192 tokens", Kind.CONTEXT_WINDOW),
        (400, '{"error": {"code": "context_length_exceeded"}}', Kind.CONTEXT_WINDOW),
        (400, "prompt is too long: 250000 tokens > 200000 maximum", Kind.CONTEXT_WINDOW),
        (400, '{"error": {"code": "content_policy_violation"}}', Kind.CONTENT_FILTER),
        (400, "rejected by our safety system", Kind.CONTENT_FILTER),
        (400, "messages: field required", Kind.BAD_REQUEST),
        (422, "unprocessable entity", Kind.BAD_REQUEST),
        (500, "", Kind.SERVER_ERROR),
        (502, "bad gateway", Kind.SERVER_ERROR),
        (503, "", Kind.OVERLOADED),
        (529, "overloaded_error", Kind.OVERLOADED),
        (504, "", Kind.SERVER_ERROR),
    ],
)
def test_classify_status_follows_the_design_table(status: int, text: str, kind: Kind) -> None:
    """Each HTTP status (and error text) maps to the kind in DESIGN.md's taxonomy."""
    assert classify_status(status, text) is kind


def test_classify_status_text_is_case_insensitive() -> None:
    """Error-text markers match regardless of case."""
    assert classify_status(400, "CONTEXT_LENGTH_EXCEEDED") is Kind.CONTEXT_WINDOW


def test_classify_status_429_beats_context_text() -> None:
    """A 429 is a rate limit even when its text mentions tokens."""
    assert classify_status(429, "too many tokens per minute") is Kind.RATE_LIMITED


def test_classify_status_413_is_context_window() -> None:
    """413 Payload Too Large is treated as a context-window overflow."""
    assert classify_status(413) is Kind.CONTEXT_WINDOW


def test_classify_status_400_unknown_model_is_not_found() -> None:
    """A 400 that says the model does not exist is not_found, not the caller's fault."""
    assert classify_status(400, "The model `gpt-9` does not exist") is Kind.NOT_FOUND


def test_classify_status_504_with_timeout_text_is_server_error() -> None:
    """A 504 is the upstream's gateway timing out: server_error (retryable), as DESIGN says."""
    assert classify_status(504, "upstream request timeout") is Kind.SERVER_ERROR


def test_classify_status_unlisted_5xx_is_server_error() -> None:
    """Unlisted 5xx statuses are server errors."""
    assert classify_status(599) is Kind.SERVER_ERROR


# --- parse_duration_header -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("1s", 1.0),
        ("6m0s", 360.0),
        ("20ms", 0.02),
        ("1h2m3.5s", 3723.5),
        ("1m30s", 90.0),
        ("0s", 0.0),
        ("2.5", 2.5),
        (" 7 ", 7.0),
        ("-3", 0.0),
    ],
)
def test_parse_duration_header_valid(value: str, seconds: float) -> None:
    """Go-style durations and bare seconds become seconds."""
    assert parse_duration_header(value) == pytest.approx(seconds)


@pytest.mark.parametrize("value", ["", "   ", "soon", "1x", "s", "1s garbage", "1 s", "m5"])
def test_parse_duration_header_garbage_is_none(value: str) -> None:
    """Anything else is None."""
    assert parse_duration_header(value) is None


# --- parse_retry_after -----------------------------------------------------------------------


def http_date(seconds_from_now: float) -> str:
    return format_datetime(datetime.fromtimestamp(NOW + seconds_from_now, UTC), usegmt=True)


def rfc3339(seconds_from_now: float) -> str:
    return (datetime.fromtimestamp(NOW, UTC) + timedelta(seconds=seconds_from_now)).isoformat()


def test_retry_after_seconds() -> None:
    """retry-after: 7 is seven seconds."""
    assert parse_retry_after({"retry-after": "7"}, NOW) == 7.0


def test_retry_after_header_name_is_case_insensitive() -> None:
    """Header names match in any case."""
    assert parse_retry_after({"Retry-After": "3"}, NOW) == 3.0


def test_retry_after_http_date_is_relative_to_now_wall() -> None:
    """An HTTP-date Retry-After is the time from now_wall until that date."""
    assert parse_retry_after({"retry-after": http_date(30)}, NOW) == pytest.approx(30.0)


def test_retry_after_http_date_in_the_past_is_zero() -> None:
    """A date already passed means no wait."""
    assert parse_retry_after({"retry-after": http_date(-60)}, NOW) == 0.0


def test_retry_after_http_date_minus_zero_is_utc(monkeypatch: pytest.MonkeyPatch) -> None:
    """An HTTP date with "-0000" is read as UTC, not local time."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        value = http_date(30).replace("GMT", "-0000")
        assert parse_retry_after({"retry-after": value}, NOW) == pytest.approx(30.0)
    finally:
        monkeypatch.undo()
        time.tzset()


def test_retry_after_ms_takes_precedence() -> None:
    """retry-after-ms wins over retry-after when both are present."""
    headers = {"retry-after": "10", "retry-after-ms": "1500"}
    assert parse_retry_after(headers, NOW) == 1.5


def test_retry_after_ms_garbage_falls_back_to_retry_after() -> None:
    """An unparseable retry-after-ms is ignored in favour of retry-after."""
    headers = {"retry-after": "4", "retry-after-ms": "soon"}
    assert parse_retry_after(headers, NOW) == 4.0


def test_retry_after_beats_openai_reset_headers() -> None:
    """retry-after is preferred over x-ratelimit-reset-*."""
    headers = {"retry-after": "2", "x-ratelimit-reset-requests": "6m0s"}
    assert parse_retry_after(headers, NOW) == 2.0


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("1s", 1.0), ("6m0s", 360.0), ("20ms", 0.02)],
)
def test_openai_reset_requests(value: str, seconds: float) -> None:
    """x-ratelimit-reset-requests Go durations are honoured."""
    assert parse_retry_after({"x-ratelimit-reset-requests": value}, NOW) == pytest.approx(seconds)


def test_openai_reset_takes_the_later_of_the_two() -> None:
    """With both OpenAI reset headers, the later reset wins."""
    headers = {"x-ratelimit-reset-requests": "1s", "x-ratelimit-reset-tokens": "6m0s"}
    assert parse_retry_after(headers, NOW) == 360.0


def test_openai_reset_ignores_an_unparseable_one() -> None:
    """A garbage reset header does not hide the valid one."""
    headers = {"x-ratelimit-reset-requests": "??", "x-ratelimit-reset-tokens": "20ms"}
    assert parse_retry_after(headers, NOW) == pytest.approx(0.02)


def test_anthropic_reset_timestamp() -> None:
    """anthropic-ratelimit-requests-reset (RFC 3339) is the time until that instant."""
    headers = {"anthropic-ratelimit-requests-reset": rfc3339(12)}
    assert parse_retry_after(headers, NOW) == pytest.approx(12.0)


def test_anthropic_reset_with_z_suffix() -> None:
    """A trailing Z means UTC."""
    stamp = datetime.fromtimestamp(NOW + 5, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    headers = {"anthropic-ratelimit-tokens-reset": stamp}
    assert parse_retry_after(headers, NOW) == pytest.approx(5.0)


def test_anthropic_reset_takes_the_latest() -> None:
    """With several anthropic reset headers, the latest instant wins."""
    headers = {
        "anthropic-ratelimit-requests-reset": rfc3339(3),
        "anthropic-ratelimit-input-tokens-reset": rfc3339(40),
        "anthropic-ratelimit-output-tokens-reset": rfc3339(9),
    }
    assert parse_retry_after(headers, NOW) == pytest.approx(40.0)


def test_anthropic_reset_without_timezone_is_ignored() -> None:
    """A timestamp with no offset cannot be placed in time and is ignored."""
    headers = {"anthropic-ratelimit-requests-reset": "2023-11-14T22:13:25"}
    assert parse_retry_after(headers, NOW) is None


def test_openai_reset_beats_anthropic_reset() -> None:
    """OpenAI's reset headers are consulted before Anthropic's."""
    headers = {
        "x-ratelimit-reset-requests": "2s",
        "anthropic-ratelimit-requests-reset": rfc3339(50),
    }
    assert parse_retry_after(headers, NOW) == 2.0


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"retry-after": "tomorrow-ish"},
        {"retry-after-ms": "x"},
        {"x-ratelimit-reset-requests": "later"},
        {"anthropic-ratelimit-requests-reset": "not a time"},
        {"content-type": "application/json"},
    ],
)
def test_retry_after_garbage_is_none(headers: dict[str, str]) -> None:
    """No parseable rate-limit header gives None."""
    assert parse_retry_after(headers, NOW) is None


def test_negative_retry_after_is_zero() -> None:
    """A negative Retry-After is clamped to zero."""
    assert parse_retry_after({"retry-after": "-5"}, NOW) == 0.0


# --- Classifier: builtins --------------------------------------------------------------------


def test_timeout_error_is_timeout() -> None:
    """TimeoutError (also an OSError) classifies as timeout, not connection."""
    assert isinstance(Classifier().classify(TimeoutError()), AttemptTimeout)


def test_connection_reset_is_connection() -> None:
    """ConnectionResetError classifies as connection."""
    err = Classifier().classify(ConnectionResetError("reset by peer"))
    assert isinstance(err, ConnectionFailed)
    assert err.message == "reset by peer"


def test_os_error_is_connection() -> None:
    """A plain OSError (DNS, TLS, refused) classifies as connection."""
    assert Classifier().classify(OSError("Name or service not known")).kind is Kind.CONNECTION


def test_cancelled_error_is_cancelled() -> None:
    """asyncio.CancelledError classifies as cancelled."""
    assert isinstance(Classifier().classify(asyncio.CancelledError()), Cancelled)


def test_unknown_exception_is_server_error() -> None:
    """An exception nobody recognises is a server_error carrying its message."""
    err = Classifier().classify(ValueError("weird"))
    assert type(err) is ServerError
    assert err.message == "weird"


def test_empty_message_uses_class_name() -> None:
    """An exception with no message is described by its class name."""
    assert Classifier().classify(KeyError()).message == "KeyError"


def test_provider_error_is_returned_as_is() -> None:
    """A ProviderError is passed through untouched."""
    original = RateLimited("slow down", retry_after=2.0)
    assert Classifier().classify(original) is original


def test_sdk_status_error_429_carries_retry_after() -> None:
    """An SDK-like 429 becomes RateLimited with status and Retry-After from its response."""
    err = Classifier().classify(status_error(429, retry_after="12"), now_wall=NOW)
    assert isinstance(err, RateLimited)
    assert err.status == 429
    assert err.retry_after == 12.0


def test_sdk_status_error_uses_now_wall_for_dates() -> None:
    """An HTTP-date Retry-After on an SDK error is measured from now_wall."""
    err = Classifier().classify(status_error(503, retry_after=http_date(8)), now_wall=NOW)
    assert isinstance(err, Overloaded)
    assert err.retry_after == pytest.approx(8.0)


def test_classify_defaults_now_wall_to_the_real_time() -> None:
    """Without now_wall, an HTTP-date Retry-After is measured from the current time."""
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=60), usegmt=True)
    err = Classifier().classify(status_error(429, retry_after=when))
    assert err.retry_after is not None
    assert 50 <= err.retry_after <= 61


def test_sdk_status_error_body_refines_kind() -> None:
    """The SDK error's body is read: a 400 with context_length_exceeded is context_window."""
    body = {"error": {"code": "context_length_exceeded", "message": "too long"}}
    assert isinstance(Classifier().classify(status_error(400, body)), ContextWindowExceeded)


def test_sdk_status_error_content_policy_body() -> None:
    """A 400 whose body names the content policy is content_filter."""
    body = {"error": {"code": "content_policy_violation"}}
    assert isinstance(Classifier().classify(status_error(400, body)), ContentFiltered)


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (401, AuthFailed),
        (403, AuthFailed),
        (404, ModelNotFound),
        (422, BadRequest),
        (500, ServerError),
        (529, Overloaded),
    ],
)
def test_sdk_status_error_classes(status: int, cls: type[ProviderError]) -> None:
    """SDK-like status errors become the matching ProviderError subclass with their status."""
    err = Classifier().classify(status_error(status))
    assert type(err) is cls
    assert err.status == status


def test_status_only_on_response_is_found() -> None:
    """A status carried only by `.response.status_code` is used, with its headers."""
    err = Classifier().classify(ResponseOnlyError(429, {"retry-after-ms": "250"}), now_wall=NOW)
    assert err.kind is Kind.RATE_LIMITED
    assert err.retry_after == 0.25


def test_status_error_without_rate_headers_has_no_retry_after() -> None:
    """No rate-limit header leaves retry_after None."""
    assert Classifier().classify(status_error(429)).retry_after is None


def test_api_connection_error_by_name() -> None:
    """A status-less APIConnectionError is classified by its name as connection."""
    assert Classifier().classify(APIConnectionError("boom")).kind is Kind.CONNECTION


def test_api_timeout_error_by_name() -> None:
    """APITimeoutError is a timeout even though it subclasses the connection error."""
    assert Classifier().classify(APITimeoutError("slow")).kind is Kind.TIMEOUT


def test_rate_limit_name_without_status() -> None:
    """A status-less exception named like a rate limit is rate_limited."""
    assert Classifier().classify(MyRateLimitError()).kind is Kind.RATE_LIMITED


# --- Classifier: user rules ------------------------------------------------------------------


class QuotaExceeded(Exception):
    """A user's exception."""


class DailyQuotaExceeded(QuotaExceeded):
    """A subclass of it."""


def test_on_maps_an_exception_type() -> None:
    """on(Type, kind) classifies that type as kind."""
    classifier = Classifier().on(QuotaExceeded, Kind.RATE_LIMITED)
    err = classifier.classify(QuotaExceeded("daily quota"))
    assert isinstance(err, RateLimited)
    assert err.message == "daily quota"


def test_on_covers_subclasses() -> None:
    """on(Type, kind) also matches subclasses of Type."""
    classifier = Classifier().on(QuotaExceeded, Kind.AUTH)
    assert classifier.classify(DailyQuotaExceeded()).kind is Kind.AUTH


def test_on_overrides_builtin_mapping() -> None:
    """A registered rule wins over the built-in classification."""
    classifier = Classifier().on(ConnectionResetError, Kind.OVERLOADED)
    assert classifier.classify(ConnectionResetError()).kind is Kind.OVERLOADED


def test_on_leaves_other_types_alone() -> None:
    """Exceptions that no rule matches still get the built-in classification."""
    classifier = Classifier().on(QuotaExceeded, Kind.RATE_LIMITED)
    assert classifier.classify(TimeoutError()).kind is Kind.TIMEOUT


def test_rules_are_consulted_in_order_added() -> None:
    """The first rule that returns an error wins."""
    classifier = Classifier().on(DailyQuotaExceeded, Kind.AUTH).on(QuotaExceeded, Kind.RATE_LIMITED)
    assert classifier.classify(DailyQuotaExceeded()).kind is Kind.AUTH
    assert classifier.classify(QuotaExceeded()).kind is Kind.RATE_LIMITED


def test_add_rule_returning_none_passes() -> None:
    """A rule returning None falls through to the next rule and then the builtins."""
    seen: list[BaseException] = []

    def spy(exc: BaseException) -> ProviderError | None:
        seen.append(exc)
        return None

    exc = OSError("refused")
    assert Classifier().add(spy).classify(exc).kind is Kind.CONNECTION
    assert seen == [exc]


def test_add_rule_result_is_used() -> None:
    """A rule's ProviderError is returned as the classification."""

    def rule(exc: BaseException) -> ProviderError | None:
        return BadRequest("nope", status=418) if "teapot" in str(exc) else None

    err = Classifier().add(rule).classify(RuntimeError("teapot"))
    assert isinstance(err, BadRequest)
    assert err.status == 418


def test_constructor_rules_come_before_added_ones() -> None:
    """Rules given to the constructor are consulted before rules added later."""
    first = Classifier([lambda exc: ServerError("first")]).add(lambda exc: BadRequest("second"))
    assert first.classify(RuntimeError()).message == "first"


def test_rules_do_not_touch_provider_errors() -> None:
    """A ProviderError skips the rules entirely."""
    classifier = Classifier().on(ProviderError, Kind.BAD_REQUEST)
    original = Overloaded("busy")
    assert classifier.classify(original) is original


# --- errors ----------------------------------------------------------------------------------


def test_provider_error_repr_shows_state() -> None:
    """The repr names the class, kind, status, deployment, retry_after and message."""
    err = RateLimited("slow down", status=429, deployment="openai/gpt-4o", retry_after=1.5)
    assert repr(err) == (
        "<RateLimited kind=rate_limited status=429 deployment='openai/gpt-4o' "
        "retry_after=1.5: 'slow down'>"
    )


def test_provider_error_repr_omits_missing_fields() -> None:
    """Fields that are not set are left out of the repr."""
    assert repr(ServerError("boom")) == "<ServerError kind=server_error: 'boom'>"


def test_provider_error_keeps_its_fields() -> None:
    """A ProviderError keeps message, code and body as given."""
    err = BadRequest("bad", code="invalid_value", body={"error": "x"})
    assert (str(err), err.code, err.body) == ("bad", "invalid_value", {"error": "x"})


def test_unknown_route_lists_known_names() -> None:
    """UnknownRoute's message names the route asked for and the known ones."""
    err = UnknownRoute("gpt-5", ["fast", "smart"])
    assert str(err) == "unknown model or route 'gpt-5'; known: fast, smart"


def test_unknown_route_with_nothing_known() -> None:
    """With no routes at all, the message says none."""
    assert str(UnknownRoute("x", [])).endswith("known: none")


def test_unknown_route_is_a_key_error() -> None:
    """UnknownRoute can be caught as KeyError and as FailoverError."""
    err = UnknownRoute("x", [])
    assert isinstance(err, KeyError)
    assert isinstance(err, FailoverError)


def test_config_error_is_value_error_and_failover_error() -> None:
    """ConfigError is both a ValueError and a FailoverError."""
    assert issubclass(ConfigError, ValueError)
    assert issubclass(ConfigError, FailoverError)


@pytest.mark.parametrize("kind", [k for k in Kind if k is not Kind.OK])
def test_error_for_builds_the_subclass_of_each_kind(kind: Kind) -> None:
    """error_for(kind) builds the ProviderError subclass whose kind is `kind`."""
    err = error_for(kind, "msg", status=500, deployment="d")
    assert type(err) is ERROR_CLASSES[kind]
    assert err.kind is kind
    assert (err.message, err.status, err.deployment) == ("msg", 500, "d")


def test_every_error_class_is_a_distinct_kind() -> None:
    """Each failure kind has its own class and no two share one."""
    assert set(ERROR_CLASSES) == set(Kind) - {Kind.OK}
    assert len(set(ERROR_CLASSES.values())) == len(ERROR_CLASSES)
