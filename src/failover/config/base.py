"""What every config section shares: the strict base model, the units a YAML file writes
(durations, rates, sizes) and the messages that name a bad field by its path.

A leaf: it imports nothing of failover but the error tree.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from ..errors import ConfigError

__all__ = [
    "Duration",
    "Fraction",
    "Rate",
    "Size",
    "StrictModel",
    "format_loc",
    "format_validation_error",
    "parse_duration",
    "parse_rate",
    "parse_size",
    "policy_defaults",
    "validate_as",
    "validation_lines",
]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|kib|mb|mib|gb|gib)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    None: 1,
    "b": 1,
    "kb": 1000,
    "kib": 1024,
    "mb": 1000**2,
    "mib": 1024**2,
    "gb": 1000**3,
    "gib": 1024**3,
}


def parse_duration(value: Any) -> float:
    """Seconds from 250ms / 2s / 1.5m / 1h / a bare number of seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 250ms, 2s or 5m")
    if isinstance(value, int | float):
        return _finite_duration(float(value))
    if isinstance(value, str) and (m := _DURATION.match(value)):
        # divide for ms so that "9ms" is exactly 0.009 (9 * 0.001 is not)
        number = float(m[1])
        return _finite_duration(number / 1000 if m[2] == "ms" else number * _DURATION_UNITS[m[2]])
    raise ValueError(f"invalid duration {value!r} (use 250ms, 2s, 5m or 1h)")


def _finite_duration(seconds: float) -> float:
    if math.isnan(seconds) or seconds < 0:
        raise ValueError("a duration must be a number >= 0")
    if math.isinf(seconds):
        raise ValueError("a duration must be finite (leave the field out for no limit)")
    return seconds


def parse_rate(value: Any) -> float:
    """A fraction from "50%" or 0.5."""
    if isinstance(value, bool):
        raise ValueError("expected a rate such as 50% or 0.5")
    if isinstance(value, str):
        text = value.strip()
        try:
            return float(text[:-1]) / 100 if text.endswith("%") else float(text)
        except ValueError:
            raise ValueError(f"invalid rate {value!r} (use 50% or 0.5)") from None
    if isinstance(value, int | float):
        return float(value)
    raise ValueError(f"invalid rate {value!r} (use 50% or 0.5)")


def parse_size(value: Any) -> int:
    """Bytes from 10MB / 512KiB / a bare number."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and (m := _SIZE.match(value)):
        return int(float(m[1]) * _SIZE_UNITS[m[2].lower() if m[2] else None])
    raise ValueError(f"invalid size {value!r} (use 10MB or 512KiB)")


Duration = Annotated[float, BeforeValidator(parse_duration)]
Rate = Annotated[float, BeforeValidator(parse_rate)]
Size = Annotated[int, BeforeValidator(parse_size)]
Fraction = Annotated[Rate, Field(ge=0, le=1)]


class StrictModel(BaseModel):
    """The base of every config model: unknown keys are errors, and a loaded value is frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


M = TypeVar("M", bound=BaseModel)


def validate_as(
    model: type[M], value: object, *, what: str, prefix: str = "", unknown: str = "unknown field"
) -> M:
    """`value` (a mapping, or already a `model`) validated as `model`.

    For settings given in Python rather than in a config file; a `ConfigError` headed
    "invalid `what`" names each bad field (under `prefix`).
    """
    try:
        return model.model_validate({} if value is None else value)
    except ValidationError as exc:
        header = f"invalid {what}"
        message = format_validation_error(exc, header=header, prefix=prefix, unknown=unknown)
        raise ConfigError(message) from None


def policy_defaults(policy: type[Any]) -> dict[str, Any]:
    """The default of each field of a policy dataclass, so a config model need not copy them."""
    return {
        f.name: f.default
        for f in dataclasses.fields(policy)
        if f.default is not dataclasses.MISSING
    }


# -- messages ---------------------------------------------------------------------------------


def format_loc(loc: tuple[int | str, ...]) -> str:
    """('routes', 'smart', 'deployments', 1, 'timeout') -> routes.smart.deployments[1].timeout"""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.startswith(("function-", "function_")):
            continue
        else:
            out += f".{part}" if out else part
    return out


def validation_lines(
    exc: ValidationError, *, prefix: str = "", unknown: str = "unknown field"
) -> list[str]:
    """One `path: message` line per pydantic error, paths written the way users write YAML."""
    lines = []
    for err in exc.errors():
        where = format_loc(tuple(err["loc"]))
        if prefix:
            where = f"{prefix}.{where}" if where else prefix
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = unknown
        lines.append(f"{where}: {message}" if where else message)
    return lines


def format_validation_error(
    exc: ValidationError,
    *,
    header: str = "invalid config",
    prefix: str = "",
    unknown: str = "unknown field",
) -> str:
    """A readable multi-line message naming every bad field."""
    lines = validation_lines(exc, prefix=prefix, unknown=unknown)
    return f"{header}:\n  " + "\n  ".join(lines)
