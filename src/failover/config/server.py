"""The `server:` section: the gateway's listener, its clients' keys and its limits."""

from __future__ import annotations

from typing import Any

from pydantic import Field, SecretStr, field_validator

from .base import Duration, Size, StrictModel

__all__ = ["ServerConfig"]


class ServerConfig(StrictModel):
    """The gateway's listener and its clients' credentials."""

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    api_keys: list[SecretStr] = Field(default_factory=list)
    admin_key: SecretStr | None = None
    max_body: Size = 10 * 1024 * 1024
    grace: Duration = 30.0
    max_deadline: Duration = Field(600.0, gt=0)  # the most `x-failover-deadline` may ask for

    @field_validator("api_keys", mode="before")
    @classmethod
    def _drop_empty(cls, value: Any) -> Any:
        return [k for k in value if k] if isinstance(value, list) else value

    @field_validator("admin_key", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return value or None
