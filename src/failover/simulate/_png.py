"""The chart drawn with matplotlib's object API on the Agg canvas (no pyplot, no global state:
nothing to close, safe in tests and threads)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from .chart_model import FAULT_COLOR, STATE_COLORS, ChartData, Series

__all__ = ["draw_png", "figure"]

_STATE_NAMES = {
    "closed": "closed",
    "half_open": "half-open",
    "open": "open",
    "forced_open": "forced open",
    "disabled": "disabled",
    "unhealthy": "unhealthy",
    "cooling_down": "cooling down (429)",
}


def draw_png(data: ChartData, path: Path) -> list[str]:
    """Save the chart as a PNG; returns the series names drawn."""
    fig, drawn = figure(data)
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=110)
    return drawn


def figure(data: ChartData) -> tuple[Figure, list[str]]:
    """Build the figure and say what is on it (`panel:name` per series and band row)."""
    rows = max(1, len(data.deployments))
    fig = Figure(figsize=(12, 8.2 + 0.25 * rows), layout="constrained")
    grid = fig.add_gridspec(4, 1, height_ratios=[3.0, 1.1, 0.5 + 0.38 * rows, 2.0])
    traffic = fig.add_subplot(grid[0])
    axes = [traffic] + [fig.add_subplot(grid[i], sharex=traffic) for i in (1, 2, 3)]
    drawn: list[str] = []
    drawn += _traffic(axes[0], data)
    drawn += _errors(axes[1], data)
    drawn += _breakers(axes[2], data)
    drawn += _latency(axes[3], data)
    for ax in axes:
        _shade_faults(ax, data, label=ax is traffic)
        ax.set_axisbelow(True)
        ax.set_xlim(0, data.duration)
        ax.grid(axis="x", color="#e6e6e6", linewidth=0.6)
        ax.spines[["top", "right"]].set_visible(False)
        if ax is not axes[-1]:
            ax.tick_params(labelbottom=False)
    axes[-1].set_xlabel("seconds since the start of the run")
    fig.suptitle(data.title, x=0.01, ha="left", fontsize=13, fontweight="bold")
    lanes = max((w.lane for w in data.windows), default=0)
    traffic.set_title(data.subtitle, loc="left", fontsize=9, color="#555555", pad=16 + 13 * lanes)
    return fig, drawn


def _steps(series: Series, duration: float) -> tuple[list[float], list[float]]:
    xs = [*series.x, duration]
    ys = [0.0 if v is None else v for v in series.y]
    return xs, [*ys, ys[-1] if ys else 0.0]


def _traffic(ax: Any, data: ChartData) -> list[str]:
    base: list[float] | None = None
    drawn = []
    for s in data.panel("traffic"):
        xs, ys = _steps(s, data.duration)
        low = base or [0.0] * len(ys)
        high = [a + b for a, b in zip(low, ys, strict=True)]
        ax.fill_between(
            xs, low, high, step="post", color=s.color, alpha=0.85, label=s.name, linewidth=0
        )
        base = high
        drawn.append(f"traffic:{s.name}")
    ax.set_ylabel("req/s")
    ax.set_ylim(bottom=0)
    ax.legend(
        loc="upper left",
        bbox_to_anchor=(1.0, 1.0),
        fontsize=8,
        title="answered by",
        title_fontsize=8,
        frameon=False,
        alignment="left",
    )
    _panel_title(ax, "traffic by deployment")
    return drawn


def _errors(ax: Any, data: ChartData) -> list[str]:
    drawn = []
    for s in data.panel("errors"):
        ys = [0.0 if v is None else v for v in s.y]
        ax.bar(
            s.x, ys, width=data.resolution, align="edge", color=s.color, label=s.name, linewidth=0
        )
        drawn.append(f"errors:{s.name}")
        if not any(ys):
            ax.text(
                0.5,
                0.5,
                "no errors seen by clients",
                transform=ax.transAxes,
                ha="center",
                va="center",
                color="#2e7d4f",
                fontsize=10,
            )
            ax.set_ylim(0, 1)
    ax.set_ylabel("failed/s")
    _panel_title(ax, "errors seen by clients")
    return drawn


def _breakers(ax: Any, data: ChartData) -> list[str]:
    names = data.deployments
    seen: set[str] = set()
    for row, name in enumerate(names):
        y = len(names) - 1 - row
        for band in (b for b in data.bands if b.deployment == name):
            thin = band.state in ("cooling_down", "unhealthy")
            bottom, height = (y - 0.37, 0.1) if thin else (y - 0.25, 0.5)  # stripes below
            ax.broken_barh(
                [(band.start, band.end - band.start)],
                (bottom, height),
                facecolors=band.color,
                edgecolor="none",
                zorder=2,
            )
            if band.state == "half_open":  # probes are instants: mark them so they show
                ax.plot(
                    [band.start],
                    [y + 0.36],
                    marker="v",
                    markersize=5,
                    zorder=3,
                    color="#8a6d00",
                    linestyle="none",
                )
            seen.add(band.state)
        for mark in (m for m in data.marks if m.deployment == name):
            ax.annotate(
                mark.text,
                (mark.at, y - 0.38),
                xytext=(3, -1),
                textcoords="offset points",
                ha="left",
                va="top",
                fontsize=7.5,
                color="#333333",
                zorder=4,
            )
    ax.set_yticks(range(len(names)), list(reversed(names)), fontsize=9)
    ax.set_ylim(-0.8, len(names) - 0.15)  # headroom for the panel title and probe marks
    ax.tick_params(axis="y", length=0)
    handles: list[Any] = [
        Patch(color=STATE_COLORS[s], label=_STATE_NAMES.get(s, s))
        for s in STATE_COLORS
        if s in seen
    ]
    if "half_open" in seen:
        handles.append(
            Line2D(
                [], [], marker="v", color="#8a6d00", linestyle="none", markersize=5, label="probe"
            )
        )
    if handles:
        ax.legend(
            handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False
        )
    _panel_title(ax, "breaker state")
    return [f"breakers:{n}" for n in names]


def _latency(ax: Any, data: ChartData) -> list[str]:
    drawn = []
    top = 0.0
    low = float("inf")
    for s in data.panel("latency"):
        xs, ys = _steps(s, data.duration)
        ax.step(
            xs,
            [float("nan") if v is None else v for v in [*s.y, s.y[-1]]],
            where="post",
            color=s.color,
            label=s.name,
            linewidth=1.4,
            linestyle=(0, (2, 1.5)) if "failed" in s.name else "-",
        )
        values = [v for v in ys if v > 0]
        top = max([top, *values])
        low = min([low, *values])
        drawn.append(f"latency:{s.name}")
    if top > 0 and low < float("inf") and top / low > 30:
        ax.set_yscale("log")
    ax.set_ylabel("ms")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    _panel_title(
        ax,
        "latency of answered requests"
        + (
            " (dotted: failed ones)"
            if any("failed" in s.name for s in data.panel("latency"))
            else ""
        ),
    )
    return drawn


def _shade_faults(ax: Any, data: ChartData, *, label: bool) -> None:
    for w in data.windows:
        ax.axvspan(w.start, w.end, color=FAULT_COLOR, alpha=0.08, linewidth=0, zorder=0)
        for t in (w.start, w.end):
            ax.axvline(
                t, color=FAULT_COLOR, linewidth=0.8, linestyle=(0, (4, 3)), alpha=0.6, zorder=1
            )
        if label:
            ax.text(
                (w.start + w.end) / 2,
                1.01 + 0.075 * w.lane,
                w.text,
                transform=ax.get_xaxis_transform(),
                ha="center",
                va="bottom",
                fontsize=8,
                color=FAULT_COLOR,
                clip_on=False,
            )


def _panel_title(ax: Any, text: str) -> None:
    ax.text(
        0.005,
        0.97,
        text,
        transform=ax.transAxes,
        ha="left",
        va="top",
        fontsize=9,
        color="#333333",
        fontweight="bold",
        bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.75, "pad": 1.5},
    )
