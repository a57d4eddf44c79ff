"""Number formatting, Markdown escaping and the jinja2 environment shared by the reporters."""

from __future__ import annotations

import functools
import json
import re
from typing import Any

import jinja2
from markupsafe import Markup

from clbench.metrics import METRIC_BY_KEY
from clbench.reports.aggregate import Stat

NA = "n/a"
EMPTY = "—"

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~#])")


def md_escape(value: Any) -> str:
    """Text from results made inert in GitHub-flavoured Markdown (tables included): HTML
    characters become entities, Markdown punctuation is backslash-escaped, newlines become
    spaces."""
    text = str(value)
    text = (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))
    text = _MD_SPECIAL.sub(r"\\\1", text)
    return " ".join(text.split())


def _bytes(v: float) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(v) >= scale:
            return f"{v / scale:.1f} {unit}"
    return f"{v:.0f} B"


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


def fmt_ci(v: float | None, kind: str) -> str:
    if v is None:
        return ""
    if kind == "seconds":
        return f"{v:.1f}"
    return fmt_value(v, kind)


def fmt_stat(stat: Stat | None, metric: str) -> str:
    """``mean ± ci95`` (``mean`` alone for n = 1), ``n/a`` for a metric that does not apply,
    an em dash when no seed has a value."""
    if stat is None:
        return NA
    if stat.mean is None:
        return EMPTY
    kind = METRIC_BY_KEY[metric].kind
    text = fmt_value(stat.mean, kind)
    if stat.ci is not None and (kind in ("fraction", "ratio", "seconds") or stat.ci > 0):
        text += f" ± {fmt_ci(stat.ci, kind)}"
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
