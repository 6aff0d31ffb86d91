"""Line charts drawn as SVG on the server, so the page shows them without JavaScript.

Written here rather than taken from a library: a chart is one polyline per series, a few
dashed level lines and report markers; matplotlib or pygal would add tens of megabytes
and a dependency tree to a daemon for that. static/page.js draws the same chart in the
browser from /api/history when scripts run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 640, 180
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 64, 10, 10, 22


@dataclass(frozen=True, slots=True)
class Series:
    """One line: (x, y) points, oldest first."""

    name: str
    points: Sequence[tuple[float, float]]
    css_class: str = "line"


@dataclass(frozen=True, slots=True)
class Level:
    """A horizontal line at ``value`` (a warning or critical level)."""

    name: str
    value: float
    css_class: str


@dataclass(frozen=True, slots=True)
class Marker:
    """A vertical mark at ``x`` (a report written then)."""

    x: float
    label: str
    css_class: str = "marker"


def _fmt(value: float) -> str:
    return f"{value:.1f}"


def line_chart(series: Sequence[Series], x_range: tuple[float, float], *,
               levels: Sequence[Level] = (), markers: Sequence[Marker] = (),
               y_label: Callable[[float], str] = lambda v: f"{v:g}",
               x_label: Callable[[float], str] = lambda v: f"{v:g}",
               title: str = "") -> str:
    """An ``<svg>`` element with the series, levels and markers scaled to fit.

    >>> svg = line_chart([Series("a", [(0, 0), (10, 5)])], (0, 10), title="t")
    >>> svg.count("<polyline"), 'data-series="a"' in svg
    (1, True)
    """
    x0, x1 = x_range
    if x1 <= x0:
        x1 = x0 + 1.0
    values = [y for s in series for _, y in s.points] + [lv.value for lv in levels]
    top = max(values, default=1.0) * 1.08 or 1.0
    plot_w = WIDTH - PAD_LEFT - PAD_RIGHT
    plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM

    def sx(x: float) -> float:
        return PAD_LEFT + (x - x0) / (x1 - x0) * plot_w

    def sy(y: float) -> float:
        return PAD_TOP + plot_h - (y / top) * plot_h

    out = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
           f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
           f"<title>{escape(title)}</title>"]
    for i in range(5):
        value = top * i / 4
        y = _fmt(sy(value))
        out.append(f'<line class="grid" x1="{PAD_LEFT}" x2="{WIDTH - PAD_RIGHT}" '
                   f'y1="{y}" y2="{y}"/>')
        out.append(f'<text class="axis" x="{PAD_LEFT - 4}" y="{y}" text-anchor="end" '
                   f'dominant-baseline="middle">{escape(y_label(value))}</text>')
    for frac, anchor in ((0.0, "start"), (0.5, "middle"), (1.0, "end")):
        x = x0 + (x1 - x0) * frac
        out.append(f'<text class="axis" x="{_fmt(sx(x))}" y="{HEIGHT - 6}" '
                   f'text-anchor="{anchor}">{escape(x_label(x))}</text>')
    for level in levels:
        y = _fmt(sy(level.value))
        out.append(f'<line class="{level.css_class}" x1="{PAD_LEFT}" x2="{WIDTH - PAD_RIGHT}" '
                   f'y1="{y}" y2="{y}"><title>{escape(level.name)}</title></line>')
    for marker in markers:
        if x0 <= marker.x <= x1:
            mx = _fmt(sx(marker.x))
            out.append(f'<line class="{marker.css_class}" x1="{mx}" x2="{mx}" y1="{PAD_TOP}" '
                       f'y2="{PAD_TOP + plot_h}"><title>{escape(marker.label)}</title></line>')
    for s in series:
        coords = " ".join(f"{_fmt(sx(x))},{_fmt(sy(y))}" for x, y in s.points)
        out.append(f'<polyline class="{s.css_class}" data-series="{escape(s.name)}" '
                   f'points="{coords}"><title>{escape(s.name)}</title></polyline>')
    out.append("</svg>")
    return "".join(out)
