"""Line charts as inline SVG, drawn on the server (no script, no style attribute: the page's
CSP allows neither; colours are SVG presentation attributes)."""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime

from gateway.ui.html import Html, el, leaf

#: Colours of the series, in order (readable on white, told apart in greyscale by their lines).
PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777", "#4b5563")
_W, _H = 640, 190
_LEFT, _RIGHT, _TOP, _BOTTOM = 56, 12, 12, 24

#: One series: (x, y) points, y None where there is nothing to draw (a gap).
Points = Sequence[tuple[float, float | None]]


def colours(names: Sequence[str]) -> dict[str, str]:
    """A colour per series name, stable for one list of names."""
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}


def nice_max(value: float) -> float:
    """The top of the y axis: ``value`` rounded up to 1, 2 or 5 times a power of ten."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * power:
            return step * power
    return 10 * power


def _time_label(t: float, span: float) -> str:
    when = datetime.fromtimestamp(t, UTC)
    return when.strftime("%H:%M") if span <= 2 * 86400 else when.strftime("%m-%d %H:%M")


def line_chart(title: str, series: Mapping[str, Points], since: float, until: float,
               fmt: Callable[[float], str], palette: Mapping[str, str],
               dashed: Mapping[str, Points] | None = None, *, top: float | None = None,
               whole: bool = False) -> Html:
    """An SVG line chart of ``series`` (name -> points) over ``[since, until]``; ``dashed``
    series (same names, same colours) are drawn dashed.  Each point has a tooltip.  The y axis
    goes to ``top`` when given, else to the largest value rounded up (to whole labels for a
    ``whole`` count)."""
    ys = [y for pts in [*series.values(), *(dashed or {}).values()] for _, y in pts if y is not None]
    if top is None:
        most = max(ys, default=0.0)
        top = 4 * max(1.0, nice_max(most / 4)) if whole else nice_max(most)
    span = max(until - since, 1e-9)
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM

    def x(t: float) -> float:
        return round(_LEFT + (t - since) / span * plot_w, 1)

    def y(v: float) -> float:
        return round(_TOP + plot_h - v / top * plot_h, 1)

    parts: list[Html] = [el("title", {}, title)]
    for i in range(5):  # grid lines and y labels
        v = top * i / 4
        parts.append(leaf("line", {"x1": _LEFT, "x2": _W - _RIGHT, "y1": y(v), "y2": y(v), "stroke": "#e5e7eb"}))
        parts.append(el("text", {"x": _LEFT - 6, "y": y(v) + 4, "text-anchor": "end", "font-size": 11,
                                 "fill": "#6b7280"}, fmt(v)))
    for i in range(5):  # x labels
        t = since + span * i / 4
        anchor = "start" if i == 0 else "end" if i == 4 else "middle"
        parts.append(el("text", {"x": x(t), "y": _H - 6, "text-anchor": anchor, "font-size": 11, "fill": "#6b7280"},
                        _time_label(t, span)))
    for group, dash in ((series, None), (dashed or {}, "5 3")):
        for name, pts in group.items():
            parts.extend(_series(name, pts, palette.get(name, PALETTE[-1]), dash, x, y, fmt))
    return el("svg", {"class": "chart", "viewBox": f"0 0 {_W} {_H}", "role": "img", "aria-label": title}, *parts)


def _series(name: str, pts: Points, colour: str, dash: str | None, x: Callable[[float], float],
            y: Callable[[float], float], fmt: Callable[[float], str]) -> list[Html]:
    out: list[Html] = []
    run: list[str] = []
    for t, v in [*pts, (0.0, None)]:  # the sentinel ends the last run
        if v is None:
            if len(run) > 1:
                out.append(leaf("polyline", {"points": " ".join(run), "fill": "none", "stroke": colour,
                                             "stroke-width": 2, "stroke-dasharray": dash}))
            run = []
            continue
        run.append(f"{x(t)},{y(v)}")
    for i, (t, v) in enumerate(pts):
        isolated = all(j < 0 or j >= len(pts) or pts[j][1] is None for j in (i - 1, i + 1))
        if v is not None and (v != 0 or isolated):
            label = f"{name} {_time_label(t, 0)} UTC: {fmt(v)}"
            out.append(el("circle", {"cx": x(t), "cy": y(v), "r": 3, "fill": colour}, el("title", {}, label)))
    return out


def legend(palette: Mapping[str, str]) -> Html:
    """The series' names with their colours (each swatch a tiny SVG: no style attribute)."""
    items = [el("li", {}, el("svg", {"width": 12, "height": 12, "aria-hidden": "true"},
                             leaf("rect", {"width": 12, "height": 12, "fill": colour})), " ", name)
             for name, colour in palette.items()]
    return el("ul", {"class": "legend"}, *items)
