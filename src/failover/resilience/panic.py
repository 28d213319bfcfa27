"""Panic mode: what a route does when every candidate has been ruled out before any call."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Panic"]


class Panic(StrEnum):
    """Whether candidates ruled out without a call are tried anyway.

    A bad health signal must not turn into a total outage: with `HEALTH` the candidates that
    health marks or cool-downs ruled out are tried anyway (open breakers still hold: they come
    from real calls failing); with `ALL` open breakers are called too; `OFF` never panics.
    """

    HEALTH = "health"
    ALL = "all"
    OFF = "off"

    @classmethod
    def parse(cls, value: bool | str) -> Panic:
        """`True` -> HEALTH, `False` -> OFF, and the names as they are."""
        if value is True:
            return cls.HEALTH
        if value is False:
            return cls.OFF
        try:
            return cls(value)
        except ValueError:
            raise ValueError(
                f"panic must be true, false, 'health', 'all' or 'off', not {value!r}"
            ) from None
