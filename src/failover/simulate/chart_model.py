"""What a chart of a run shows, as plain data: series per panel, breaker bands, shaded fault
windows and notes, with the colours every renderer draws them in.

`chart.chart_data` builds it from a recording; `_png` (matplotlib) and `_html` (inline SVG)
draw it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "ERROR_COLOR",
    "FAULT_COLOR",
    "LATENCY_COLORS",
    "PALETTE",
    "STATE_COLORS",
    "Band",
    "ChartData",
    "Mark",
    "Panel",
    "Series",
    "Window",
    "slug",
]

Panel = Literal["traffic", "errors", "latency"]
PALETTE = ("#3b6fb6", "#e08a2c", "#3f9b6b", "#8a5cb8", "#c4566b", "#4fa3b8", "#9a8a3c")
ERROR_COLOR = "#d1343a"
LATENCY_COLORS = {"p50": "#3b6fb6", "p99": "#7a3fb0", "p99 failed": "#d1343a"}
STATE_COLORS = {
    "closed": "#bfe3c6",
    "half_open": "#f3d37a",
    "open": "#e4605e",
    "forced_open": "#8f1d1d",
    "disabled": "#c9c9c9",
    "unhealthy": "#6b4a8f",
    "cooling_down": "#e8a15c",
}
FAULT_COLOR = "#d1343a"


@dataclass(frozen=True, slots=True)
class Series:
    """One line, area or bar series of a panel; `id` names it in the HTML chart."""

    name: str
    panel: Panel
    x: tuple[float, ...]
    y: tuple[float | None, ...]
    color: str
    style: Literal["area", "bar", "line"]

    @property
    def id(self) -> str:
        return f"series-{self.panel}-{slug(self.name)}"


@dataclass(frozen=True, slots=True)
class Band:
    """A span of time a deployment spent in one breaker state (or unhealthy / cooling down)."""

    deployment: str
    start: float
    end: float
    state: str

    @property
    def color(self) -> str:
        return STATE_COLORS.get(self.state, "#999999")


@dataclass(frozen=True, slots=True)
class Window:
    """A fault window to shade; `lane` stacks the labels of windows that overlap."""

    deployment: str
    start: float
    end: float
    label: str
    lane: int = 0

    @property
    def text(self) -> str:
        return f"{self.deployment}: {self.label}"


@dataclass(frozen=True, slots=True)
class Mark:
    """A moment worth a note on a deployment's breaker row: detected, back in rotation."""

    deployment: str
    at: float
    text: str


@dataclass
class ChartData:
    """Everything a chart of a run shows."""

    title: str
    subtitle: str
    duration: float
    resolution: float
    deployments: list[str]
    series: list[Series] = field(default_factory=list)
    bands: list[Band] = field(default_factory=list)
    windows: list[Window] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)

    def names(self) -> list[str]:
        """`panel:name` of every series, then `breakers:<deployment>` for every band row."""
        rows = [f"breakers:{d}" for d in self.deployments]
        return [f"{s.panel}:{s.name}" for s in self.series] + rows

    def panel(self, name: str) -> list[Series]:
        return [s for s in self.series if s.panel == name]


def slug(name: str) -> str:
    """`name` as an id fragment: lower case, anything but letters and digits a dash."""
    return "".join(ch if ch.isalnum() else "-" for ch in name.lower()).strip("-") or "x"
