"""Charts drawn as SVG on the server, so the page shows them without JavaScript.

Written here rather than taken from a library: a chart is one polyline (or stacked area) per
series, a few dashed level lines, report markers and a legend; matplotlib or pygal would add
tens of megabytes and a dependency tree to a daemon for that.

Each chart scales to its own data. A level (warning, critical) is drawn as a line when it is
within reach (at most ``REACH`` times the data's peak), else as an arrow at the top edge
saying how far above it is, so a 250 MiB agent is not a flat line under a 6.5 GiB level.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 640, 200
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 64, 10, 26, 34
REACH = 1.5
HEADROOM = 1.1


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


@dataclass(frozen=True, slots=True)
class Axes:
    """How a chart labels its axes: value and time formats and their captions."""

    y_label: Callable[[float], str]
    x_label: Callable[[float], str]
    y_caption: str
    x_caption: str


def _fmt(value: float) -> str:
    return f"{value:.1f}"


def chart_top(values: Sequence[float], levels: Sequence[Level]) -> tuple[float, list[Level],
                                                                        list[Level]]:
    """The y scale's top, the levels drawn as lines and those shown as arrows (out of reach).

    >>> top, near, far = chart_top([100.0], [Level("w", 120.0, "w"), Level("c", 900.0, "c")])
    >>> round(top, 1), [lv.name for lv in near], [lv.name for lv in far]
    (132.0, ['w'], ['c'])
    """
    peak = max(values, default=0.0)
    near = [lv for lv in levels if peak > 0 and lv.value <= peak * REACH]
    far = [lv for lv in levels if lv not in near]
    top = max([peak, *(lv.value for lv in near)]) * HEADROOM
    if top <= 0:
        top = max((lv.value for lv in levels), default=1.0) * HEADROOM or 1.0
        near, far = list(levels), []
    return top, near, far


class _Canvas:
    def __init__(self, x_range: tuple[float, float], top: float, title: str) -> None:
        x0, x1 = x_range
        self.x0, self.x1 = x0, x1 if x1 > x0 else x0 + 1.0
        self.top = top
        self.plot_w = WIDTH - PAD_LEFT - PAD_RIGHT
        self.plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM
        self.out = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
                    f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg" '
                    f'data-top="{top:.0f}">', f"<title>{escape(title)}</title>"]

    def sx(self, x: float) -> float:
        return PAD_LEFT + (x - self.x0) / (self.x1 - self.x0) * self.plot_w

    def sy(self, y: float) -> float:
        return PAD_TOP + self.plot_h - (min(y, self.top) / self.top) * self.plot_h

    def axes(self, axes: Axes) -> None:
        for i in range(5):
            value = self.top * i / 4
            y = _fmt(self.sy(value))
            self.out.append(f'<line class="grid" x1="{PAD_LEFT}" x2="{WIDTH - PAD_RIGHT}" '
                            f'y1="{y}" y2="{y}"/>')
            self.out.append(f'<text class="axis" x="{PAD_LEFT - 4}" y="{y}" text-anchor="end" '
                            f'dominant-baseline="middle">{escape(axes.y_label(value))}</text>')
        for frac, anchor in ((0.0, "start"), (0.25, "middle"), (0.5, "middle"),
                             (0.75, "middle"), (1.0, "end")):
            x = self.x0 + (self.x1 - self.x0) * frac
            self.out.append(f'<text class="axis" x="{_fmt(self.sx(x))}" y="{HEIGHT - 18}" '
                            f'text-anchor="{anchor}">{escape(axes.x_label(x))}</text>')
        self.out.append(f'<text class="caption" x="{PAD_LEFT + self.plot_w / 2:.0f}" '
                        f'y="{HEIGHT - 4}" text-anchor="middle">{escape(axes.x_caption)}</text>')
        self.out.append(f'<text class="caption" x="4" y="{PAD_TOP - 14}">'
                        f"{escape(axes.y_caption)}</text>")

    def legend(self, items: Sequence[tuple[str, str]]) -> None:
        """Swatches along the top edge: (label, css class of the swatch)."""
        x = PAD_LEFT + 70
        parts = ['<g class="legend">']
        for label, css in items:
            parts.append(f'<rect class="swatch {escape(css)}" x="{x}" y="{PAD_TOP - 20}" '
                         f'width="12" height="8"/><text x="{x + 16}" y="{PAD_TOP - 12}">'
                         f"{escape(label)}</text>")
            x += 24 + 6 * len(label)
        parts.append("</g>")
        self.out.append("".join(parts))

    def done(self) -> str:
        self.out.append("</svg>")
        return "".join(self.out)


def line_chart(series: Sequence[Series], x_range: tuple[float, float], axes: Axes, *,
               levels: Sequence[Level] = (), markers: Sequence[Marker] = (),
               title: str = "") -> str:
    """An ``<svg>`` with the series scaled to their own data, levels, markers and a legend.

    >>> ax = Axes(str, str, "RSS", "local time")
    >>> svg = line_chart([Series("a", [(0, 0), (10, 5)])], (0, 10), ax, title="t")
    >>> svg.count("<polyline"), 'data-series="a"' in svg, 'class="legend"' in svg
    (1, True, True)
    """
    values = [y for s in series for _, y in s.points]
    top, near, far = chart_top(values, levels)
    canvas = _Canvas(x_range, top, title)
    canvas.axes(axes)
    out = canvas.out
    for level in near:
        y = _fmt(canvas.sy(level.value))
        out.append(f'<line class="{level.css_class}" x1="{PAD_LEFT}" x2="{WIDTH - PAD_RIGHT}" '
                   f'y1="{y}" y2="{y}"><title>{escape(level.name)}</title></line>')
    for i, level in enumerate(far):
        ay = PAD_TOP - 12 - 10 * i  # above the plot, beside the legend: never on the line
        out.append(f'<text class="beyond {level.css_class}" x="{WIDTH - PAD_RIGHT}" y="{ay}" '
                   f'text-anchor="end">\u2191 {escape(level.name)} (off scale)</text>')
    for marker in markers:
        if canvas.x0 <= marker.x <= canvas.x1:
            mx = _fmt(canvas.sx(marker.x))
            out.append(f'<line class="{marker.css_class}" x1="{mx}" x2="{mx}" y1="{PAD_TOP}" '
                       f'y2="{PAD_TOP + canvas.plot_h}"><title>{escape(marker.label)}</title>'
                       "</line>")
    for s in series:
        coords = " ".join(f"{_fmt(canvas.sx(x))},{_fmt(canvas.sy(y))}" for x, y in s.points)
        out.append(f'<polyline class="{s.css_class}" data-series="{escape(s.name)}" '
                   f'points="{coords}"><title>{escape(s.name)}</title></polyline>')
    items = [(s.name, s.css_class) for s in series]
    items += [(lv.name, lv.css_class) for lv in near]
    if any(canvas.x0 <= m.x <= canvas.x1 for m in markers):
        items.append(("report", "marker"))
    canvas.legend(items)
    return canvas.done()


def stacked_chart(series: Sequence[Series], x_range: tuple[float, float], axes: Axes, *,
                  title: str = "") -> str:
    """Series stacked as areas (each on top of the ones before), with a legend.

    Every series must share the same x values, in the same order (``stack_on`` aligns them).

    >>> ax = Axes(str, str, "USD/h", "local time")
    >>> svg = stacked_chart([Series("a", [(0, 1), (1, 1)], "area s0"),
    ...                      Series("b", [(0, 2), (1, 2)], "area s1")], (0, 1), ax)
    >>> svg.count("<polygon"), 'data-top="3"' in svg
    (2, True)
    """
    base = [0.0] * max((len(s.points) for s in series), default=0)
    layers = []
    for s in series:
        lower = base[:len(s.points)]
        upper = [b + y for b, (_, y) in zip(lower, s.points, strict=False)]
        layers.append((s, lower, upper))
        base = upper + base[len(upper):]
    top = (max(base, default=0.0) * HEADROOM) or 1.0
    canvas = _Canvas(x_range, top, title)
    canvas.axes(axes)
    for s, lower, upper in layers:
        xs = [canvas.sx(x) for x, _ in s.points]
        edge = [f"{_fmt(x)},{_fmt(canvas.sy(y))}" for x, y in zip(xs, upper, strict=True)]
        back = [f"{_fmt(x)},{_fmt(canvas.sy(y))}" for x, y in zip(reversed(xs),
                                                                  reversed(lower), strict=True)]
        canvas.out.append(f'<polygon class="{s.css_class}" data-series="{escape(s.name)}" '
                          f'points="{" ".join(edge + back)}"><title>{escape(s.name)}</title>'
                          "</polygon>")
    canvas.legend([(s.name, s.css_class) for s in series])
    return canvas.done()


def stack_on(series: Sequence[Sequence[tuple[float, float]]]) -> list[list[tuple[float, float]]]:
    """The same series sampled on the union of their x values (a step holds its last value).

    >>> stack_on([[(0, 1), (2, 3)], [(1, 5)]])
    [[(0, 1), (1, 1), (2, 3)], [(0, 0.0), (1, 5), (2, 5)]]
    """
    xs = sorted({x for s in series for x, _ in s})
    out = []
    for s in series:
        values = dict(s)
        last = 0.0
        line = []
        for x in xs:
            last = values.get(x, last)
            line.append((x, last))
        out.append(line)
    return out
