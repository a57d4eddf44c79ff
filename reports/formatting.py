"""Number formatting, Markdown escaping and the jinja2 environment shared by the reporters."""

from __future__ import annotations

import functools
import json
import math
import re
from typing import Any

import jinja2
from markupsafe import Markup

from clbench.metrics import METRIC_BY_KEY
from clbench.reports.statistics import Stat

NA = "n/a"
EMPTY = "—"

# CommonMark's backslash escapes: ``\<`` is a literal ``<`` (never the start of raw HTML) and
# ``\&`` a literal ``&`` (never an entity), so the text reads the same in a terminal and on GitHub.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~#<>&])")


def md_escape(value: Any) -> str:
    r"""Text from results made inert in GitHub-flavoured Markdown (tables included): Markdown
    punctuation and the HTML characters ``< > &`` are backslash-escaped (escaped for Markdown,
    not HTML: a terminal shows ``\<b\>``, not ``&lt;b&gt;``), newlines become spaces."""
    text = _MD_SPECIAL.sub(r"\\\1", str(value))
    return " ".join(text.split())


_BYTE_UNITS = (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10))


def _byte_unit(v: float) -> tuple[str, int]:
    return next(((u, sc) for u, sc in _BYTE_UNITS if abs(v) >= sc), ("B", 1))


def _bytes(v: float, unit: tuple[str, int] | None = None, digits: int = 1) -> str:
    name, scale = unit or _byte_unit(v)
    return f"{v / scale:.{digits}f} {name}" if scale > 1 else f"{v:.0f} B"


def _digits_for(ci_scaled: float) -> int:
    """Decimals that show a small CI half-width with two significant digits (at most 4)."""
    if ci_scaled <= 0 or ci_scaled >= 0.1:
        return 1
    return min(4, 1 - math.floor(math.log10(ci_scaled)))


def fmt_value(v: float | None, kind: str) -> str:
    if v is None:
        return EMPTY
    if kind == "fraction":
        return f"{v:.3f}"
    if kind == "count":
        return f"{v:,.0f}"
    if kind == "ratio":
        return f"{v:.2f}"
    if kind == "seconds":
        return f"{v:.1f} s"
    if kind == "bytes":
        return _bytes(v)
    return f"{v:g}"


def fmt_ci(v: float | None, kind: str, mean: float | None = None) -> str:
    """The CI half-width in the mean's unit (``765.0 MiB ± 0.0 MiB``, never ``± 25.4 KiB``)."""
    if v is None:
        return ""
    if kind == "seconds":
        return f"{v:.1f}"
    if kind == "bytes":
        return _bytes(v, _byte_unit(mean if mean is not None else v))
    return fmt_value(v, kind)


def fmt_stat(stat: Stat | None, metric: str) -> str:
    """``mean ± ci95`` (``mean`` alone for n = 1), ``n/a`` for a metric that does not apply,
    an em dash when no seed has a value. A group-wide measurement (its seeds trained together,
    so they share it) says ``per group``: its interval, if any, is over groups, never a fake
    ``± 0.0`` over the group's members."""
    if stat is None:
        return NA
    if stat.mean is None:
        return EMPTY
    kind = METRIC_BY_KEY[metric].kind
    text = fmt_value(stat.mean, kind)
    if kind == "bytes" and stat.ci is not None and stat.ci > 0:
        unit = _byte_unit(stat.mean)  # one unit, with the decimals the CI needs
        digits = _digits_for(stat.ci / unit[1])
        text = f"{_bytes(stat.mean, unit, digits)} ± {_bytes(stat.ci, unit, digits)}"
    elif stat.ci is not None and (kind in ("fraction", "ratio", "seconds") or stat.ci > 0):
        text += f" ± {fmt_ci(stat.ci, kind, stat.mean)}"
    if stat.per_group:
        text += " per group"
    return text


def fmt_rank(rank: float | None) -> str:
    if rank is None:
        return EMPTY
    return f"{rank:g}"


def fmt_params(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v if isinstance(v, str) else json.dumps(v, default=str)}"
                     for k, v in sorted(params.items()))


def json_for_script(data: Any) -> Markup:
    """JSON safe to put inside a ``<script type="application/json">`` element: ``<``, ``>``
    and ``&`` are written as \\u escapes so no ``</script>`` or comment can close it."""
    text = json.dumps(data, allow_nan=False, default=str, separators=(",", ":"))
    text = (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))
    return Markup(text)


@functools.cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("clbench.reports", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "j2.html"),
                                            default_for_string=True, default=True),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(md=md_escape, stat=fmt_stat, rank=fmt_rank, params=fmt_params,
                       value=fmt_value, script_json=json_for_script)
    return env


def markdown_environment() -> jinja2.Environment:
    """The same templates, with HTML autoescaping off (Markdown is escaped with ``md``)."""
    env = environment().overlay(autoescape=False)
    return env
