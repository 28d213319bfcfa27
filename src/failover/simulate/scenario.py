"""A scenario file: a load profile, a timeline of faults per deployment, an SLO, and (optionally)
its own gateway config, so one YAML file describes a whole outage drill.

    name: primary-down
    seed: 7
    load: {rate: 200, duration: 90s, stream: 20%}
    timeline:
      - {deployment: primary, start: 20s, end: 60s, fault: {type: error, status: 503}}
    slo: ["availability >= 99.9%", "p99 <= 500ms", "detect <= 1s"]
    config: {providers: ..., routes: ...}       # or a path to a gateway config file

Faults are written exactly as under a deployment's `chaos:` (see `failover.chaos`); the
timeline entry says when each is switched on and off.
"""

from __future__ import annotations

import itertools
import math
import os
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from ..chaos import BaseFault, Fault
from ..config import Config, format_validation_error, interpolate, load_config, parse_duration
from ..config import parse_rate as _parse_rate
from ..errors import ConfigError
from .slo import Assertion, parse_assertion

__all__ = [
    "FaultWindow",
    "LoadPhase",
    "LoadProfile",
    "Scenario",
    "Segment",
    "TimelineEntry",
    "load_scenario",
]

Seconds = Annotated[float, BeforeValidator(parse_duration)]
Fraction = Annotated[float, BeforeValidator(_parse_rate), Field(ge=0, le=1)]
DEFAULT_REQUEST: dict[str, Any] = {
    "messages": [{"role": "user", "content": "Say hello in five words."}],
    "max_tokens": 16,
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class LoadPhase(_Strict):
    """A stretch of the load with its own rate (and stream share)."""

    duration: Seconds = Field(gt=0)
    rate: float | None = Field(None, ge=0)
    stream: Fraction | None = None


class LoadProfile(_Strict):
    """Open-loop load: `rate` requests per second for `duration`, a share of them streamed."""

    rate: float = Field(10.0, ge=0)
    duration: Seconds | None = Field(None, gt=0)
    stream: Fraction = 0.0
    route: str | None = None  # default: the config's first route
    arrivals: Literal["poisson", "uniform"] = "poisson"
    phases: list[LoadPhase] = Field(default_factory=list)
    request: dict[str, Any] = Field(default_factory=lambda: dict(DEFAULT_REQUEST))
    drain: Seconds | None = None  # wait for requests in flight after the last one; default 120s

    @model_validator(mode="after")
    def _has_length(self) -> LoadProfile:
        if not self.phases and self.duration is None:
            raise ValueError("give a duration (or phases)")
        if self.phases and self.duration is not None:
            total = sum(p.duration for p in self.phases)
            if not math.isclose(total, self.duration):
                raise ValueError(f"duration {self.duration:g}s != the phases' total {total:g}s")
        return self

    @property
    def total(self) -> float:
        """Seconds of load."""
        return sum(p.duration for p in self.phases) if self.phases else float(self.duration or 0)

    def stretches(self) -> list[tuple[float, float, float, float]]:
        """(start, end, rate, stream share) of each load phase."""
        if not self.phases:
            return [(0.0, self.total, self.rate, self.stream)]
        out, t = [], 0.0
        for p in self.phases:
            rate = self.rate if p.rate is None else p.rate
            stream = self.stream if p.stream is None else p.stream
            out.append((t, t + p.duration, rate, stream))
            t += p.duration
        return out

    def arrivals_from(self, rng: random.Random) -> Iterator[tuple[float, bool]]:
        """(seconds after the start, streamed?) of every request, in order."""
        for start, end, rate, stream in self.stretches():
            if rate <= 0:
                continue
            t, k = start, 0
            while True:
                if self.arrivals == "poisson":
                    t += rng.expovariate(rate)
                else:  # evenly spaced from the phase's start: exactly rate x duration requests
                    t, k = start + k / rate, k + 1
                if t >= end - 1e-9:
                    break
                yield t, stream > 0 and rng.random() < stream


def _as_fault_list(value: Any) -> Any:
    return [value] if isinstance(value, Mapping | BaseFault) else value


class TimelineEntry(_Strict):
    """Faults on one deployment between `start` and `end`; `every`/`for` repeat it (flapping)."""

    deployment: str
    start: Seconds = 0.0
    end: Seconds | None = None  # default: to the end of the run
    fault: Annotated[list[Fault], BeforeValidator(_as_fault_list), Field(min_length=1)]
    every: Seconds | None = Field(None, gt=0)
    for_: Seconds | None = Field(None, alias="for", gt=0)
    label: str | None = None

    @field_validator("fault")
    @classmethod
    def _no_own_window(cls, faults: list[BaseFault]) -> list[BaseFault]:
        for fault in faults:
            if {"start", "end"} & fault.model_fields_set:
                raise ValueError("the timeline entry's start/end set the window, not the fault's")
        return faults

    @model_validator(mode="after")
    def _window(self) -> TimelineEntry:
        if self.end is not None and self.end <= self.start:
            raise ValueError("end must be after start")
        if (self.every is None) != (self.for_ is None):
            raise ValueError("every and for go together: `for` seconds down out of each `every`")
        if self.every is not None and self.for_ is not None and self.for_ >= self.every:
            raise ValueError("for must be shorter than every")
        return self

    def windows(self, horizon: float) -> list[FaultWindow]:
        """The windows this entry is active in, cut at `horizon` (the end of the load)."""
        end = horizon if self.end is None else min(self.end, horizon)
        label = self.label or "; ".join(f.label() for f in self.fault)
        if self.every is None or self.for_ is None:
            spans = [(self.start, end)]
        else:
            starts = _frange(self.start, end, self.every)
            spans = [(s, min(s + self.for_, end)) for s in starts]
        faults = tuple(self.fault)
        return [FaultWindow(self.deployment, s, e, faults, label) for s, e in spans if e > s]


def _frange(start: float, stop: float, step: float) -> list[float]:
    count = max(0, math.ceil((stop - start) / step - 1e-9))
    return [start + i * step for i in range(count)]


@dataclass(frozen=True, slots=True)
class FaultWindow:
    """One span of time during which `faults` are switched on at `deployment`."""

    deployment: str
    start: float
    end: float
    faults: tuple[BaseFault, ...]
    label: str

    def covers(self, t: float) -> bool:
        return self.start <= t < self.end


@dataclass(frozen=True, slots=True)
class Segment:
    """A piece of the run between two fault switches: the report's phases."""

    start: float
    end: float
    active: tuple[FaultWindow, ...]

    @property
    def label(self) -> str:
        if not self.active:
            return "no faults"
        return "; ".join(f"{w.deployment}: {w.label}" for w in self.active)


class Scenario(_Strict):
    """An outage drill: load, a fault timeline, an SLO and the gateway config to run it on."""

    name: str = "scenario"
    description: str = ""
    seed: int = 0
    load: LoadProfile
    timeline: list[TimelineEntry] = Field(default_factory=list)
    slo: list[str] = Field(default_factory=list)
    config: dict[str, Any] | str | None = None
    resolution: Seconds | None = Field(None, gt=0)  # chart bins; default about duration/120
    source: Path | None = Field(None, exclude=True)

    @field_validator("slo")
    @classmethod
    def _assertions_parse(cls, value: list[str]) -> list[str]:
        for text in value:
            parse_assertion(text)
        return value

    @property
    def duration(self) -> float:
        return self.load.total

    def assertions(self) -> list[Assertion]:
        return [parse_assertion(text) for text in self.slo]

    def windows(self) -> list[FaultWindow]:
        """Every fault window of the timeline, in order of start."""
        found = [w for entry in self.timeline for w in entry.windows(self.duration)]
        return sorted(found, key=lambda w: (w.start, w.deployment))

    def segments(self) -> list[Segment]:
        """The run cut at every fault switch; each piece knows which faults are on."""
        windows = self.windows()
        cuts = {0.0, self.duration}
        cuts.update(t for w in windows for t in (w.start, w.end) if 0 < t < self.duration)
        points = sorted(cuts)
        return [
            Segment(a, b, tuple(w for w in windows if w.start <= a and b <= w.end))
            for a, b in itertools.pairwise(points)
        ]

    def gateway_config(self, override: str | Path | None = None) -> Config:
        """The gateway config: `override`, else the scenario's own (inline or a path)."""
        if override is not None:
            return load_config(override)
        if self.config is None:
            raise ConfigError(f"scenario {self.name!r} has no config: embed one or pass --config")
        if isinstance(self.config, str):
            base = self.source.parent if self.source is not None else Path.cwd()
            return load_config(base / self.config)
        return Config.from_dict(interpolate(self.config, os.environ))

    def check_against(self, config: Config) -> str:
        """The route to load, after checking the timeline's deployments exist in `config`."""
        route = self.load.route or next(iter(config.routes), None)
        if route is None or route not in config.routes:
            known = ", ".join(config.routes) or "none"
            raise ConfigError(f"load.route: unknown route {route!r} (known: {known})")
        names = {d.key for r in config.routes.values() for d in r.deployments}
        for i, entry in enumerate(self.timeline):
            if entry.deployment not in names:
                known = ", ".join(sorted(names))
                raise ConfigError(
                    f"timeline[{i}].deployment: unknown deployment {entry.deployment!r} "
                    f"(known: {known})"
                )
        return route

    @classmethod
    def from_yaml(cls, text: str, *, source: Path | None = None) -> Scenario:
        """Parse and validate a scenario; errors name the field (`timeline[0].fault`)."""
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"invalid YAML: {exc}") from None
        if not isinstance(raw, dict):
            raise ConfigError("a scenario must be a mapping with load, timeline, slo, config")
        if source is not None:
            raw.setdefault("name", source.stem)
        try:
            return cls.model_validate({**raw, "source": source})
        except ValidationError as exc:
            raise ConfigError(format_validation_error(exc, header="invalid scenario")) from None


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read scenario {str(path)!r}: {exc.strerror}") from None
    return Scenario.from_yaml(text, source=path)
