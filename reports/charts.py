"""Geometry of the HTML report's inline SVG charts: plain numbers and labels, drawn by the
template (which escapes every label)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from markupsafe import Markup, escape

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")
MARGIN = {"left": 56, "right": 12, "top": 12, "bottom": 36}
# Each series has its own dash pattern and marker as well as its colour, so lines that lie on
# top of each other stay visible (and the legend names the ones that coincide).
DASHES = ("", "7 4", "2 3", "9 3 2 3", "4 2", "1 4")
MARKERS = ("circle", "square", "diamond", "triangle")


def _nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    # From the last tick at or below lo to the first at or above hi: the axis covers the data.
    start = math.floor(lo / step + 1e-9)
    end = math.ceil(hi / step - 1e-9)
    return [round(k * step, 12) for k in range(start, end + 1)]


def _short(v: float) -> str:
    a = abs(v)
    if a >= 1e9:
        return f"{v / 1e9:g}G"
    if a >= 1e6:
        return f"{v / 1e6:g}M"
    if a >= 1e3:
        return f"{v / 1e3:g}k"
    return f"{v:g}"


def line_chart(series: Sequence[tuple[str, Sequence[float | None]]], x_labels: Sequence[str],
               y_range: tuple[float, float] | None = None, width: int = 380, height: int = 230,
               y_title: str = "", fmt: str = "{:.3f}") -> dict[str, Any]:
    """Lines over a shared x axis; a None value breaks its line."""
    values = [v for _, ys in series for v in ys if v is not None]
    if y_range is None:
        lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
        if hi == lo:
            lo, hi = lo - max(abs(lo) * 0.05, 0.5), hi + max(abs(hi) * 0.05, 0.5)
        ticks = _nice_ticks(lo, hi)
        lo, hi = ticks[0], ticks[-1]
    else:
        lo, hi = y_range
        ticks = _nice_ticks(lo, hi)
    pw = width - MARGIN["left"] - MARGIN["right"]
    ph = height - MARGIN["top"] - MARGIN["bottom"]
    n = max(len(x_labels), 1)

    def x(i: int) -> float:
        return MARGIN["left"] + (pw * i / (n - 1) if n > 1 else pw / 2)

    def y(v: float) -> float:
        return MARGIN["top"] + ph * (1 - (v - lo) / (hi - lo))

    lines = []
    first_with: dict[tuple[Any, ...], str] = {}
    for k, (label, ys) in enumerate(series):
        key = tuple(ys)
        same_as = first_with.setdefault(key, label)
        segments, current, dots = [], [], []
        for i, v in enumerate(ys):
            if v is None:
                if current:
                    segments.append(" ".join(current))
                current = []
                continue
            current.append(f"{x(i):.1f},{y(v):.1f}")
            dots.append({"cx": round(x(i), 1), "cy": round(y(v), 1),
                         "title": f"{label}, {x_labels[i]}: {fmt.format(v)}"})
        if current:
            segments.append(" ".join(current))
        lines.append({"label": label, "color": PALETTE[k % len(PALETTE)],
                      "dash": DASHES[k % len(DASHES)], "marker": MARKERS[k % len(MARKERS)],
                      "same_as": None if same_as == label else same_as,
                      "segments": segments, "dots": dots})
    return {
        "width": width, "height": height, "y_title": y_title,
        "plot": {"x": MARGIN["left"], "y": MARGIN["top"], "w": pw, "h": ph},
        "yticks": [{"y": round(y(t), 1), "text": _short(t)} for t in ticks],
        "xticks": [{"x": round(x(i), 1), "text": lab} for i, lab in enumerate(x_labels)],
        "lines": lines,
    }


def _ramp(v: float) -> str:
    lo, hi = (247, 251, 255), (8, 48, 107)
    r, g, b = (round(a + (c - a) * v) for a, c in zip(lo, hi))
    return f"#{r:02x}{g:02x}{b:02x}"


_RAMP = [_ramp(i / 200) for i in range(201)]


def _heat_color(v: float) -> str:
    """White (0) to dark blue (1), in 200 steps."""
    return _RAMP[round(min(max(v, 0.0), 1.0) * 200)]


def heatmap(matrix: Sequence[Sequence[float | None]], cell: int = 44) -> dict[str, Any]:
    """The accuracy matrix: rows untrained, after task 1..T; columns tasks 1..T."""
    rows = len(matrix)
    cols = len(matrix[0]) if rows else 0
    left, top = 84, 22
    cells = []
    for i, row in enumerate(matrix):
        for j, v in enumerate(row):
            cells.append({
                "x": left + j * cell, "y": top + i * cell, "w": cell - 2, "h": cell - 2,
                "fill": "#dddddd" if v is None else _heat_color(v),
                "text": "–" if v is None else f"{v:.2f}",
                "ink": "#ffffff" if v is not None and v > 0.55 else "#222222",
                "title": f"after {'no training' if i == 0 else f'task {i}'}, task {j + 1}: "
                         + ("not measured" if v is None else f"{v:.4f}"),
            })
    return {
        "width": left + cols * cell + 4, "height": top + rows * cell + 4, "cell": cell,
        "cells": cells,
        "row_labels": [{"y": top + i * cell + cell / 2,
                        "text": "untrained" if i == 0 else f"after {i}"} for i in range(rows)],
        "col_labels": [{"x": left + j * cell + cell / 2, "text": f"task {j + 1}"}
                       for j in range(cols)],
        "left": left, "top": top,
    }


def bar_chart(items: Sequence[tuple[str, float | None, float | None]], width: int = 380,
              unit: str = "s") -> dict[str, Any]:
    """Horizontal bars with a confidence whisker: (label, mean, ci half-width)."""
    row_h, left, right, top = 22, 150, 70, 6
    vals = [m + (c or 0) for _, m, c in items if m is not None]
    hi = max(vals) if vals and max(vals) > 0 else 1.0
    pw = width - left - right
    bars = []
    for k, (label, mean, ci) in enumerate(items):
        y = top + k * row_h
        w = 0.0 if mean is None else pw * mean / hi
        bar = {"label": label, "y": y, "h": row_h - 6, "x": left, "w": round(max(w, 0.0), 1),
               "color": PALETTE[k % len(PALETTE)],
               "text": "—" if mean is None else f"{mean:.1f} {unit}", "whisker": None}
        if mean is not None and ci:
            bar["whisker"] = {"x1": round(left + pw * (mean - ci) / hi, 1),
                              "x2": round(left + pw * (mean + ci) / hi, 1),
                              "y": y + (row_h - 6) / 2}
        bars.append(bar)
    return {"width": width, "height": top + len(items) * row_h + 4, "bars": bars,
            "left": left, "text_x": left + pw + 6}


# ---------------------------------------------------------------------------------------------
# SVG text. Built here rather than in the template for speed (a 1,000-run report draws tens of
# thousands of shapes); every label is escaped with markupsafe, numbers are formatted here.


def _e(text: Any) -> str:
    return str(escape(text))


def svg_line_chart(c: dict[str, Any], title: str) -> Markup:
    p = c["plot"]
    out = [f'<svg class="chart" role="img" width="{c["width"]}" height="{c["height"]}" '
           f'viewBox="0 0 {c["width"]} {c["height"]}"><title>{_e(title)}</title>',
           f'<rect x="{p["x"]}" y="{p["y"]}" width="{p["w"]}" height="{p["h"]}" class="plot"/>']
    for t in c["yticks"]:
        out.append(f'<line x1="{p["x"]}" x2="{p["x"] + p["w"]}" y1="{t["y"]}" y2="{t["y"]}" '
                   f'class="grid"/><text x="{p["x"] - 4}" y="{t["y"] + 4}" text-anchor="end" '
                   f'class="tick">{_e(t["text"])}</text>')
    for t in c["xticks"]:
        out.append(f'<text x="{t["x"]}" y="{p["y"] + p["h"] + 14}" text-anchor="middle" '
                   f'class="tick">{_e(t["text"])}</text>')
    mid = p["y"] + p["h"] / 2
    out.append(f'<text x="{p["x"] + p["w"] / 2}" y="{c["height"] - 4}" text-anchor="middle" '
               f'class="axis">after task</text><text x="12" y="{mid}" text-anchor="middle" '
               f'class="axis" transform="rotate(-90 12 {mid})">{_e(c["y_title"])}</text>')
    for line in c["lines"]:
        out.append(f'<g class="series" data-label="{_e(line["label"])}">')
        dash = f' stroke-dasharray="{line["dash"]}"' if line["dash"] else ""
        for seg in line["segments"]:
            out.append(f'<polyline points="{seg}" fill="none" stroke="{line["color"]}" '
                       f'stroke-width="2"{dash}/>')
        for d in line["dots"]:
            out.append(_marker(line["marker"], d["cx"], d["cy"], line["color"],
                               _e(d["title"])))
        out.append("</g>")
    out.append('</svg><ul class="legend">')
    for line in c["lines"]:
        note = (f' <span class="same">(same values as {_e(line["same_as"])})</span>'
                if line["same_as"] else "")
        out.append(f'<li><svg width="22" height="10" aria-hidden="true"><line x1="0" x2="22" '
                   f'y1="5" y2="5" stroke="{line["color"]}" stroke-width="2"'
                   + (f' stroke-dasharray="{line["dash"]}"' if line["dash"] else "")
                   + f'/></svg> {_e(line["label"])}{note}</li>')
    out.append("</ul>")
    return Markup("".join(out))


def _marker(shape: str, x: float, y: float, color: str, title: str) -> str:
    tip = f"<title>{title}</title>"
    if shape == "square":
        return (f'<rect x="{x - 3:.1f}" y="{y - 3:.1f}" width="6" height="6" fill="{color}">'
                f'{tip}</rect>')
    if shape == "diamond":
        return (f'<polygon points="{x:.1f},{y - 4:.1f} {x + 4:.1f},{y:.1f} {x:.1f},'
                f'{y + 4:.1f} {x - 4:.1f},{y:.1f}" fill="{color}">{tip}</polygon>')
    if shape == "triangle":
        return (f'<polygon points="{x:.1f},{y - 4:.1f} {x + 4:.1f},{y + 3:.1f} {x - 4:.1f},'
                f'{y + 3:.1f}" fill="{color}">{tip}</polygon>')
    return f'<circle cx="{x}" cy="{y}" r="3" fill="{color}">{tip}</circle>'


def svg_heatmap(h: dict[str, Any], title: str) -> Markup:
    out = [f'<svg class="chart heatmap" role="img" width="{h["width"]}" height="{h["height"]}" '
           f'viewBox="0 0 {h["width"]} {h["height"]}"><title>{_e(title)}</title>']
    for lab in h["col_labels"]:
        out.append(f'<text x="{lab["x"]}" y="{h["top"] - 6}" text-anchor="middle" '
                   f'class="tick">{_e(lab["text"])}</text>')
    for lab in h["row_labels"]:
        out.append(f'<text x="{h["left"] - 6}" y="{lab["y"] + 4}" text-anchor="end" '
                   f'class="tick">{_e(lab["text"])}</text>')
    for c in h["cells"]:
        out.append(f'<g><rect x="{c["x"]}" y="{c["y"]}" width="{c["w"]}" height="{c["h"]}" '
                   f'fill="{c["fill"]}"><title>{_e(c["title"])}</title></rect>'
                   f'<text x="{c["x"] + c["w"] / 2}" y="{c["y"] + c["h"] / 2 + 4}" '
                   f'text-anchor="middle" class="cellv" fill="{c["ink"]}">{_e(c["text"])}'
                   f'</text></g>')
    out.append("</svg>")
    return Markup("".join(out))


def svg_bar_chart(b: dict[str, Any], title: str) -> Markup:
    out = [f'<svg class="chart" role="img" width="{b["width"]}" height="{b["height"]}" '
           f'viewBox="0 0 {b["width"]} {b["height"]}"><title>{_e(title)}</title>']
    for bar in b["bars"]:
        mid = bar["y"] + bar["h"] / 2 + 4
        label = bar["label"] if len(bar["label"]) <= 24 else bar["label"][:23] + "…"
        out.append(f'<text x="{b["left"] - 6}" y="{mid}" text-anchor="end" class="tick">'
                   f'{_e(label)}</text><rect x="{bar["x"]}" y="{bar["y"]}" width="{bar["w"]}" '
                   f'height="{bar["h"]}" fill="{bar["color"]}"><title>{_e(bar["label"])}: '
                   f'{_e(bar["text"])}</title></rect>')
        if bar["whisker"]:
            w = bar["whisker"]
            out.append(f'<line x1="{w["x1"]}" x2="{w["x2"]}" y1="{w["y"]}" y2="{w["y"]}" '
                       f'stroke="#222" stroke-width="1.5"/>')
        out.append(f'<text x="{b["text_x"]}" y="{mid}" class="tick">{_e(bar["text"])}</text>')
    out.append("</svg>")
    return Markup("".join(out))
