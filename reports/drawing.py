"""The one drawing code of clbench's reports: matplotlib (Agg, no pyplot state) draws every chart
once, as a ``Figure``; the HTML report embeds it as inline SVG (:func:`figure_svg`) and
``clbench report --figures`` writes it as SVG and PDF files (:func:`save_figure`).

A function that builds a figure is decorated with :func:`drawn`, so that its artists take the
report style (matplotlib reads most settings when an artist is made, not when it is saved).
Labels from results are text, never mathtext (``text.parse_math`` off), and the SVG writer
escapes them; :func:`figure_svg` re-serialises the SVG from its element tree, so what it
returns holds only the elements matplotlib drew.
"""

from __future__ import annotations

import contextlib
import functools
import io
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from markupsafe import Markup

LINESTYLES = ("-", "--", ":", "-.", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)))
MARKERS = ("o", "s", "D", "^", "v", "P", "X", "*")
MISSING = "#dddddd"  # a heatmap cell that was not measured
STYLE = {"text.parse_math": False, "svg.hashsalt": "clbench", "svg.fonttype": "path",
         "pdf.compression": 6, "font.size": 9, "axes.grid": True, "grid.alpha": 0.3}
# No dates: the same figure gives the same bytes.
METADATA = {"svg": {"Date": None, "Creator": "clbench"},
            "pdf": {"CreationDate": None, "ModDate": None, "Creator": "clbench",
                    "Producer": "clbench"}}
FORMATS = tuple(METADATA)
_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
_XLINK = "{http://www.w3.org/1999/xlink}"
_URL = re.compile(r"url\(#([^)]+)\)")  # a reference to an id in an attribute or a style

F = TypeVar("F", bound=Callable[..., Any])


@contextlib.contextmanager
def style(overrides: dict[str, Any] | None = None) -> Iterator[None]:
    """matplotlib's settings for clbench's figures, with ``overrides`` (by rc name)."""
    import matplotlib

    with matplotlib.rc_context({**STYLE, **(overrides or {})}):
        yield


def drawn(build: F) -> F:
    """Run a figure-building function in :func:`style`."""
    @functools.wraps(build)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with style():
            return build(*args, **kwargs)
    return wrapper  # type: ignore[return-value]


def new_figure(width: float, height: float):
    """An empty Figure of ``width`` x ``height`` inches with one Axes: (figure, axes)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.subplots()


def _nan(v: float | None) -> float:
    return math.nan if v is None else float(v)


@drawn
def heatmap_figure(matrix: Sequence[Sequence[float | None]], *, title: str,
                   row_labels: Sequence[str], col_labels: Sequence[str], x_label: str,
                   y_label: str, colorbar_label: str = "accuracy"):
    """Values in [0, 1] as cells from white to dark blue, each with its value written in it (a
    None cell is grey, with a dash)."""
    import matplotlib

    rows, cols = len(matrix), len(col_labels)
    fig, ax = new_figure(1.2 + 0.55 * cols, 1.0 + 0.5 * rows)
    cmap = matplotlib.colormaps["Blues"].with_extremes(bad=MISSING)
    data = [[_nan(v) for v in row] for row in matrix]
    mesh = ax.pcolormesh(data, vmin=0.0, vmax=1.0, cmap=cmap, edgecolors="white",
                         linewidth=1.0)
    ax.invert_yaxis()  # row 0 at the top, as the matrix is written
    ax.grid(False)
    for i, row in enumerate(matrix):
        for j, v in enumerate(row):
            ax.text(j + 0.5, i + 0.5, "–" if v is None else f"{v:.2f}", ha="center",
                    va="center", fontsize=7,
                    color="white" if v is not None and v > 0.55 else "black")
    ax.set_xticks([j + 0.5 for j in range(cols)], list(col_labels))
    ax.set_yticks([i + 0.5 for i in range(rows)], list(row_labels))
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.set_title(title, fontsize=9)
    fig.colorbar(mesh, ax=ax, label=colorbar_label)
    return fig


@drawn
def line_figure(series: Sequence[tuple[str, Sequence[float | None]]], x_labels: Sequence[str],
                *, title: str, x_label: str, y_label: str,
                y_range: tuple[float, float] | None = None, thousands: bool = False,
                width: float = 4.5, height: float = 3.0):
    """One line per (label, values) over shared x labels; a None value breaks its line. Each
    line has its own style and marker, a line with the same values as an earlier one says so in
    the legend, and without ``y_range`` the axis covers every value."""
    from matplotlib.ticker import FuncFormatter

    fig, ax = new_figure(width, height)
    xs = list(range(len(x_labels)))
    first_with: dict[tuple[float | None, ...], str] = {}
    values = []
    for k, (label, ys) in enumerate(series):
        same_as = first_with.setdefault(tuple(ys), label)
        note = f" (same values as {same_as})" if same_as != label else ""
        points = [_nan(v) for v in ys]
        values += [v for v in points if not math.isnan(v)]
        ax.plot(xs[:len(points)], points, linestyle=LINESTYLES[k % len(LINESTYLES)],
                marker=MARKERS[k % len(MARKERS)], markersize=4, label=label + note)
    if y_range is not None:
        ax.set_ylim(*y_range)
    elif values:
        lo, hi = min(values), max(values)
        pad = (hi - lo) * 0.08 or max(abs(hi) * 0.05, 1.0)
        ax.set_ylim(lo - pad, hi + pad)
    if thousands:
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.set_xticks(xs, list(x_labels))
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.set_title(title, fontsize=9, wrap=True)
    if series:
        ax.legend(fontsize=7, ncols=2 if len(series) > 5 else 1)
    return fig


@drawn
def bar_figure(items: Sequence[tuple[str, float | None, float | None]], *, title: str,
               unit: str, x_label: str, width: float = 4.5):
    """Horizontal bars with a confidence whisker, one per (label, mean, CI half-width), the
    value written beside each bar (a dash where there is none)."""
    fig, ax = new_figure(width, 0.9 + 0.3 * max(len(items), 1))
    ys = list(range(len(items)))
    means = [0.0 if m is None else m for _, m, _ in items]
    errors = [0.0 if c is None else c for _, _, c in items]
    ax.barh(ys, means, xerr=errors, color=[f"C{k % 10}" for k in ys], capsize=2,
            error_kw={"elinewidth": 1.2})
    for y, (_, mean, _) in zip(ys, items):
        ax.annotate("—" if mean is None else f"{mean:.1f} {unit}", (0.0 if mean is None
                    else mean, y), xytext=(4, 0), textcoords="offset points", va="center",
                    fontsize=7)
    ax.set_yticks(ys, [label if len(label) <= 24 else label[:23] + "…" for label, _, _ in items])
    ax.invert_yaxis()  # the first item at the top
    ax.margins(x=0.25)
    ax.set_xlim(left=0.0)
    ax.set_xlabel(x_label)
    ax.set_title(title, fontsize=9, wrap=True)
    ax.grid(axis="y", visible=False)
    return fig


def save_figure(fig, path: str | Path, fmt: str) -> None:
    """Write ``fig`` to ``path`` as ``fmt`` (one of :data:`FORMATS`), reproducibly."""
    with style():
        fig.savefig(path, format=fmt, metadata=METADATA[fmt])


def figure_svg(fig, key: str, title: str, css_class: str = "chart") -> Markup:
    """``fig`` as an ``<svg>`` element to write into an HTML page.

    ``key`` (a letter, then letters, digits, ``-`` or ``_``) must be unique in the page: it
    prefixes the SVG's ids, which are global to the page. Text stays text (selectable, in the
    page's fonts); ``title`` is the chart's accessible name. The result is re-serialised from
    the parsed SVG: no XML declaration, doctype, comments, metadata or style sheet (its one
    rule becomes inherited attributes on the root), and every label and title escaped."""
    if not _KEY.fullmatch(key):
        raise ValueError(f"figure_svg: key {key!r} is not a letter followed by letters, digits, "
                         "'-' or '_'")
    buf = io.BytesIO()
    # The font matplotlib measured the text in, then the page's sans-serif.
    with style({"svg.fonttype": "none", "svg.hashsalt": key,
                "font.sans-serif": ["DejaVu Sans"]}):
        fig.savefig(buf, format="svg", metadata=METADATA["svg"])
    root = ET.fromstring(buf.getvalue())
    for unwanted in (("metadata", "style"), ("defs",)):  # a defs left empty goes too
        for parent in list(root.iter()):
            for child in list(parent):
                if _local(child.tag) in unwanted and not (child.tag.endswith("defs")
                                                          and len(child)):
                    parent.remove(child)
    used = set()
    for el in root.iter():
        for name, value in el.attrib.items():
            if _local(name) == "href" and value.startswith("#"):
                used.add(value[1:])
            used.update(_URL.findall(value))
    for el in root.iter():
        el.tag = _local(el.tag)
        el.tail = None  # the writer's indentation
        if el.tag != "text" and el.text is not None and not el.text.strip():
            el.text = None
        for name in list(el.attrib):
            value = el.attrib.pop(name)
            local = _local(name)
            if local == "id":
                if value not in used:
                    continue  # matplotlib names every group; only referenced ids stay
                value = f"{key}-{value}"
            elif local == "href" and value.startswith("#"):
                value = f"#{key}-{value[1:]}"
            else:
                value = _URL.sub(lambda m: f"url(#{key}-{m.group(1)})", value)
            el.attrib[local if name.startswith(_XLINK) else name] = value
    root.attrib.update({"class": css_class, "role": "img", "stroke-linejoin": "round",
                        "stroke-linecap": "butt"})
    name = ET.Element("title")
    name.text = title
    root.insert(0, name)
    return Markup(ET.tostring(root, encoding="unicode"))


def _local(name: str) -> str:
    return name.rsplit("}", 1)[-1]
