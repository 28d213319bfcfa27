"""The failover plan of a configuration, in plain words (`failover explain`).

This is the documented failover logic: for each route, the order deployments are tried in,
what is retried and how long it waits, when a breaker takes a deployment out, the time limits,
hedging, fallbacks and panic mode — all with the numbers of *this* config.
"""

from __future__ import annotations

from .config import BreakerConfig, Config, ProviderConfig, RouteConfig
from .resilience.panic import Panic
from .resilience.strategies import StrategyName

__all__ = ["STRATEGY_TEXT", "WIRE", "explain_config", "explain_route"]

# how each strategy orders a route's deployments, in words (one entry per STRATEGY_NAMES)
STRATEGY_TEXT: dict[StrategyName, str] = {
    "priority": "in the order written (the first healthy one answers; the others are backups)",
    "round_robin": "in turn: each request starts at the next deployment, the rest are backups",
    "weighted": "at random in proportion to their weights, the rest as backups",
    "least_latency": "fastest first, by the recent average latency and time to first token",
    "least_busy": "fewest requests in flight first",
}


def explain_config(config: Config, route: str | None = None) -> list[str]:
    """Paragraphs explaining every route (or one), then what holds for every request."""
    names = [route] if route is not None else list(config.routes)
    for name in names:
        if name not in config.routes:
            known = ", ".join(config.routes) or "none"
            raise KeyError(f"unknown route {name!r}; known: {known}")
    out: list[str] = []
    for name in names:
        out.extend(explain_route(config, name))
        out.append("")
    out.extend(_always(config))
    return out


def explain_route(config: Config, name: str) -> list[str]:
    """The plan of one route, one line per rule."""
    route = config.routes[name]
    retry, breaker, timeouts = (
        config.retry_for(name),
        config.breaker_for(name),
        config.timeouts_for(name),
    )
    lines = [f"Route {name!r}"]
    deployments = ", ".join(
        _deployment(config, d.key, d.provider, d.timeout) for d in route.deployments
    )
    lines.append(f"  1. Tries {deployments} {STRATEGY_TEXT[route.strategy]}.")
    lines.append(
        "  2. Skips a deployment whose circuit breaker is open, that health checks marked "
        "unhealthy, or that is cooling down after a 429."
    )
    lines.append(
        f"  3. Each attempt may take {_limit(timeouts.attempt)}"
        + (
            f" ({_limit(timeouts.first_token)} to a stream's first token)"
            if timeouts.first_token
            else ""
        )
        + f"; the whole request {_limit(timeouts.total)}."
    )
    lines.append(
        f"  4. Server errors, overload and connection failures are retried on the same deployment "
        f"up to {retry.attempts} attempt(s) in all (connection failures at most twice), waiting a "
        f"random 0..min({_secs(retry.max_backoff)}, {_secs(retry.base)} x 2^n) between tries "
        f"(full jitter); retries may add at most {retry.budget:.0%} to the traffic (retry budget). "
        "Timeouts, auth and not-found errors fail over at once."
    )
    lines.append(
        "  5. A 429 cools the deployment down for its Retry-After "
        f"(default {_secs(retry.cooldown)}) and fails over at once; if nothing else answers, "
        f"a Retry-After up to {_secs(retry.retry_after_max)} is waited out."
    )
    lines.append(f"  6. {_breaker_text(breaker)}")
    lines.append(f"  7. {_hedge_text(route)}")
    lines.append(f"  8. {_fallback_text(route)}")
    lines.append("  9. " + _PANIC_TEXT[route.panic])
    return lines


# what each kind of provider speaks on the wire
WIRE: dict[str, str] = {
    "openai": "OpenAI chat completions, passed through",
    "azure": "OpenAI chat completions at Azure deployment URLs",
    "anthropic": "Anthropic Messages (native for Anthropic clients, else translated)",
    "gemini": "Gemini generateContent, translated",
    "bedrock": "Bedrock Converse, translated, SigV4-signed",
    "vertex": "Vertex AI: Gemini generateContent or Claude rawPredict (Messages)",
    "simulated": "simulated in the process, no network",
}


def _deployment(config: Config, key: str, provider: str, timeout: float | None) -> str:
    settings = config.providers[provider]
    parts = [WIRE.get(settings.kind, settings.kind), _credentials(settings)]
    if timeout is not None:
        parts.append(f"attempt timeout {_secs(timeout)}")
    return f"{key} ({settings.kind}: {'; '.join(p for p in parts if p)})"


def _credentials(settings: ProviderConfig) -> str:
    """Where a provider's credentials come from, never the secret itself."""
    options = settings.options
    if settings.kind == "bedrock":
        if settings.api_key is not None:
            return "credentials: a Bedrock API key from the config"
        profile = getattr(options, "profile", None)
        chain = f"profile {profile!r}" if profile else "the AWS default chain (env, profile, role)"
        return f"credentials: {chain}"
    if settings.kind == "vertex":
        path = getattr(options, "credentials_file", None)
        return f"credentials: {path}" if path else "credentials: application default credentials"
    if settings.kind == "simulated":
        return ""
    return "credentials: api_key from the config" if settings.api_key else "no credentials"


def _breaker_text(b: BreakerConfig) -> str:
    window = (
        f"the last {_secs(b.window_seconds)}" if b.window_seconds else f"the last {b.window} calls"
    )
    triggers = [f"at least {b.min_calls} calls in {window} fail {b.failure_rate:.0%} or more"]
    if b.consecutive_failures:
        triggers.append(f"{b.consecutive_failures} calls in a row fail")
    if b.slow_call_rate:
        triggers.append(
            f"{b.slow_call_rate:.0%} of calls take longer than {_secs(b.slow_call_duration)}"
        )
    return (
        "A deployment's circuit breaker opens when " + " or ".join(triggers) + f"; it stays open "
        f"{_secs(b.open_for)} (x2 for each re-open in a row, up to {_secs(b.max_open_for)}, "
        f"+-{b.jitter:.0%} jitter), then lets {b.half_open_calls} trial call(s) through: "
        "success closes it, failure opens it again. Rate limits, bad requests and cancelled "
        "calls never count."
    )


def _hedge_text(route: RouteConfig) -> str:
    hedge = route.hedge
    if hedge is None:
        return "No hedging: one attempt at a time."
    delay = "its observed p95 latency" if hedge.delay == "p95" else _secs(float(hedge.delay))
    return (
        f"Hedging: if a deployment has not answered after {delay}, the same request also starts "
        f"on the next candidate (up to {hedge.max_hedges} extra, at most {hedge.budget:.0%} extra "
        "traffic); the first answer wins and the others are cancelled."
    )


def _fallback_text(route: RouteConfig) -> str:
    parts = []
    if route.fallbacks:
        parts.append(
            f"When every deployment failed, continues with route(s) {_names(route.fallbacks)}."
        )
    else:
        parts.append("No fallback routes: when every deployment failed, the request fails.")
    if route.context_window_fallbacks:
        parts.append(
            f"A prompt too long for the model goes to {_names(route.context_window_fallbacks)}."
        )
    if route.content_filter_fallbacks:
        parts.append(f"A content-filter refusal goes to {_names(route.content_filter_fallbacks)}.")
    return " ".join(parts)


def _always(config: Config) -> list[str]:
    return [
        "For every request",
        "  - Bad requests (400/422), context-window and content-filter errors are returned to the "
        "caller at once (unless a matching fallback route is configured): another deployment "
        "would not do better.",
        "  - Streams fail over invisibly until their first content reaches the caller; after "
        "that, a break (a cut, a silence, an error event) is finished on another deployment "
        "(assistant prefill where it can, else regenerated and matched), and only when none "
        "can does the stream end with an error event in its own format.",
        f"  - Each deployment has an adaptive concurrency limit starting at "
        f"{config.defaults.concurrency.initial} calls in flight: a busy one is passed over for "
        "the next candidate, and a recovered one is eased back in.",
        f"  - State (breakers, budgets, cool-downs) lives in: {config.state}.",
    ]


def _names(names: list[str]) -> str:
    return ", ".join(repr(n) for n in names)


def _limit(seconds: float | None) -> str:
    return "no time limit" if seconds is None else f"up to {_secs(seconds)}"


def _secs(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g}m"
    return f"{seconds:g}s"


_PANIC_TEXT = {
    Panic.HEALTH: "If health checks ruled out every candidate, they are tried anyway (panic "
    "mode): a bad health signal must not turn into an outage. Open breakers still fail fast.",
    Panic.ALL: "If every candidate is ruled out, open breakers included, they are all tried "
    "anyway (panic: all).",
    Panic.OFF: "Panic mode is off: when every candidate is ruled out, the request fails.",
}
