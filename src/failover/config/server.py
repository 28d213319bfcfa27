"""The `server:` section: the gateway's listener, its clients' keys and its limits."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from ..resilience.admission import AdmissionPolicy, Limits
from .base import Duration, Fraction, Size, StrictModel, policy_defaults

__all__ = ["AdmissionConfig", "ApiKeyConfig", "LimitsConfig", "ServerConfig", "ShedConfig"]

_ADMISSION = policy_defaults(AdmissionPolicy)
_SHED = AdmissionPolicy().shed

PriorityName = Literal["high", "normal", "low"]


class ApiKeyConfig(StrictModel):
    """One client key, with the priority its requests get and optional quotas of its own."""

    key: SecretStr
    name: str = ""  # for logs and quotas; default `key-N`, N its place in the list
    priority: PriorityName = "normal"  # its requests' priority, and the most they may ask for
    max_requests: int | None = Field(None, ge=1)  # whole requests in flight at once
    max_streams: int | None = Field(None, ge=1)  # streams in flight at once

    @property
    def limited(self) -> bool:
        """The key has a quota of its own."""
        return self.max_requests is not None or self.max_streams is not None

    def get_secret_value(self) -> str:
        """The key itself (as when `api_keys` held plain strings)."""
        return self.key.get_secret_value()


class LimitsConfig(StrictModel):
    """Requests and streams one route may have in flight."""

    max_requests: int | None = Field(None, ge=1)
    max_streams: int | None = Field(None, ge=1)


class ShedConfig(StrictModel):
    """From what share of a limit (and of `max_lag`) each priority is shed."""

    high: Fraction = Field(_SHED["high"], gt=0)
    normal: Fraction = Field(_SHED["normal"], gt=0)
    low: Fraction = Field(_SHED["low"], gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> ShedConfig:
        if not self.low <= self.normal <= self.high:
            raise ValueError("shed shares need low <= normal <= high")
        return self


class AdmissionConfig(StrictModel):
    """How much the process takes on at once; past it, requests are shed at once (503)."""

    enabled: bool = _ADMISSION["enabled"]
    max_requests: int = Field(_ADMISSION["max_requests"], ge=1)
    max_streams: int = Field(_ADMISSION["max_streams"], ge=1)
    max_lag: Duration | None = Field(_ADMISSION["max_lag"], gt=0)
    target_lag: Duration | None = Field(_ADMISSION["target_lag"], gt=0)
    lag_min_in_flight: int = Field(_ADMISSION["lag_min_in_flight"], ge=0)
    shed: ShedConfig = Field(default_factory=ShedConfig)
    retry_after: Duration = Field(_ADMISSION["retry_after"], gt=0)
    max_retry_after: Duration = Field(_ADMISSION["max_retry_after"], gt=0)
    routes: dict[str, LimitsConfig] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _waits(self) -> AdmissionConfig:
        if self.retry_after > self.max_retry_after:
            raise ValueError("retry_after must not be more than max_retry_after")
        return self


class ServerConfig(StrictModel):
    """The gateway's listener and its clients' credentials."""

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    api_keys: list[ApiKeyConfig] = Field(default_factory=list)
    admin_key: SecretStr | None = None
    max_body: Size = 10 * 1024 * 1024
    grace: Duration = 30.0
    max_deadline: Duration = Field(600.0, gt=0)  # the most `x-failover-deadline` may ask for
    admission: AdmissionConfig = Field(default_factory=AdmissionConfig)

    @field_validator("api_keys", mode="before")
    @classmethod
    def _keys(cls, value: Any) -> Any:
        """Plain strings are keys of normal priority; an empty key (an unset ${VAR}) is left
        out; each unnamed key is named after its place in the list."""
        if not isinstance(value, list):
            return value
        out = []
        for i, entry in enumerate(value, 1):
            item = {"key": entry} if isinstance(entry, str) else entry
            if isinstance(item, dict) and "key" in item and not item["key"]:
                continue
            if isinstance(item, dict) and not item.get("name"):
                item = {**item, "name": f"key-{i}"}
            out.append(item)
        return out

    @field_validator("admin_key", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return value or None

    @field_validator("api_keys", mode="after")
    @classmethod
    def _unique_names(cls, keys: list[ApiKeyConfig]) -> list[ApiKeyConfig]:
        seen: set[str] = set()
        for key in keys:
            if key.name in seen:
                raise ValueError(f"two keys are named {key.name!r}: give each key its own name")
            seen.add(key.name)
        return keys

    def admission_policy(self) -> AdmissionPolicy:
        """The `AdmissionPolicy` of this section, with the quotas of the keys that have one."""
        admission = self.admission
        return AdmissionPolicy(
            enabled=admission.enabled,
            max_requests=admission.max_requests,
            max_streams=admission.max_streams,
            max_lag=admission.max_lag,
            target_lag=admission.target_lag,
            lag_min_in_flight=admission.lag_min_in_flight,
            shed=admission.shed.model_dump(),
            retry_after=admission.retry_after,
            max_retry_after=admission.max_retry_after,
            routes={
                name: Limits(limits.max_requests, limits.max_streams)
                for name, limits in admission.routes.items()
            },
            keys={
                key.name: Limits(key.max_requests, key.max_streams)
                for key in self.api_keys
                if key.limited
            },
        )
