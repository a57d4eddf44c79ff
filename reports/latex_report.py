r"""LaTeX leaderboard: a standalone document with, by default, the table a paper prints
(:mod:`clbench.reports.paper_table`: strategies as rows, scenarios as columns, the chosen
metrics as mean ± sd, marks against a baseline), and with ``--table detail`` or ``--appendix``
one booktabs table per scenario (mean ± 95% CI, ``n`` ok / expected seeds, the best complete
cell beyond the CIs in bold, footnote marks on incomplete cells), rendered from the same
:class:`~clbench.reports.table_model.Leaderboard` as the other formats. It needs only
``booktabs`` (TeX Live's ``texlive-latex-recommended``) and ``graphicx``.

Every table fits the page: ``\clbenchfit`` scales a table down to the text width (and to 85%
of the text height), never up, so pdflatex reports no overfull box.

Every text from results or user code goes through :func:`tex_escape`: LaTeX's special
characters become commands, and characters outside Latin-1 that pdflatex's ``utf8`` input
cannot typeset become ``?``, so any store gives a document that compiles.
"""

from __future__ import annotations

import functools
from typing import Any

import jinja2

from clbench.metrics import METRIC_BY_KEY
from clbench.registry import REPORTERS
from clbench.reports.base import Reporter
from clbench.reports.formatting import EMPTY, environment, fmt_rank, fmt_stat
from clbench.reports.paper_table import PaperTable, TableOptions, cell_text, paper_table
from clbench.reports.table_model import Leaderboard, ScenarioTable
from clbench.results import LoadedResults

# What a paper's table shows: the accuracy-matrix metrics, the continual-evaluation metrics
# (where runs have a curve) and the model size.
COLUMNS = ("acc", "bwt", "fwt", "forgetting", "learning_accuracy", "aia", "min_acc", "wc_acc",
           "wf100", "params")

_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}", '"': r"\textquotedbl{}",
    "±": r"\ensuremath{\pm}", "—": "---", "–": "--", "…": r"\ldots{}", "×": r"\ensuremath{\times}",
    "−": r"\textminus{}", "·": r"\textperiodcentered{}", "√": r"\ensuremath{\surd}",
}


def tex_escape(value: Any) -> str:
    """Text made literal in LaTeX: special characters as commands, whitespace collapsed, and
    characters pdflatex cannot typeset (outside Latin-1) replaced by ``?``."""
    out = []
    for ch in " ".join(str(value).split()):
        if ch in _SPECIAL:
            out.append(_SPECIAL[ch])
        elif ord(ch) < 32 or ord(ch) == 127:
            continue
        elif ord(ch) < 128 or 0xA0 <= ord(ch) <= 0xFF:
            out.append(ch)
        else:
            out.append("?")
    return "".join(out)


def _number(text: str) -> str:
    """A formatted statistic (``-0.100 ± 0.014``) as LaTeX text: a real minus sign, ± in math
    with thin spaces, ``---`` for no value."""
    if text == EMPTY:
        return "---"
    parts = []
    for part in text.split(" ± "):
        minus = part.startswith("-")
        part = tex_escape(part[1:] if minus else part)
        parts.append(r"\textminus{}" + part if minus else part)
    return r"\,\ensuremath{\pm}\,".join(parts)


def table_view(index: int, t: ScenarioTable) -> dict[str, Any]:
    """The rows of one scenario's table, every cell already LaTeX."""
    keys = [k for k in COLUMNS if k in t.metrics]
    footnotes: list[str] = []
    rows = []
    for c in t.cells:
        label = tex_escape(c.label)
        if not c.complete:
            footnotes.append(f"{c.label}: incomplete, {c.n_ok} of {c.n_total} seeds ok "
                             f"({', '.join(f'{n} {s}' for s, n in c.statuses.items())}); "
                             "averaged over its ok seeds, not ranked, never bold")
            label += rf"\textsuperscript{{{len(footnotes)}}}"
        cols = []
        for key in keys:
            stat = c.metrics.get(key)
            text = _number(fmt_stat(stat, key))
            if stat is None:
                text = r"n/a\textsuperscript{*}"
            elif c.complete and c.label in t.best.get(key, ()):
                text = rf"\textbf{{{text}}}"
            cols.append(text)
        rows.append({"rank": tex_escape(fmt_rank(c.rank)), "label": label,
                     "seeds": f"{c.n_ok}/{c.n_total}", "cols": cols})
    header = [tex_escape(METRIC_BY_KEY[k].label) + (r" $\uparrow$"
                                                     if METRIC_BY_KEY[k].higher_is_better
                                                     else r" $\downarrow$") for k in keys]
    return {
        "index": index, "label": tex_escape(t.label), "n_tasks": t.n_tasks,
        "setting": tex_escape(t.setting or "n/a"),
        "primary": tex_escape(METRIC_BY_KEY[t.primary_metric].label),
        "colspec": "rlr" + "r" * len(keys), "header": header, "rows": rows,
        "footnotes": [tex_escape(f) for f in footnotes],
        "na_notes": [tex_escape(n) for n in t.na_notes],
    }


def _stacked(text: str) -> str:
    """A header cell broken into lines at its parts (name, [setting], (parameters))."""
    parts = [p for p in text.replace(" [", "\n[").replace(" (", "\n(").split("\n") if p]
    if len(parts) == 1:
        return tex_escape(parts[0])
    # "\\{}": a line that starts with "[" is not an optional argument of "\\"
    return (r"\begin{tabular}[b]{@{}c@{}}" + r"\\{}".join(tex_escape(p) for p in parts)
            + r"\end{tabular}")


def paper_view(pt: PaperTable) -> dict[str, Any]:
    """The paper table, every cell already LaTeX."""
    k = len(pt.metrics)
    rows = []
    for row in pt.rows:
        cols = []
        for (_, m), pc in zip(pt.columns, row.cells):
            text = _number(cell_text(pc, m))
            if pc is not None and pc.best:
                text = rf"\textbf{{{text}}}"
            if pc is not None and pc.mark:
                text += r"\rlap{$^{" + ("+" if pc.mark == "+" else "-") + "}$}"
            cols.append(text)
        label = tex_escape(row.label) + (r" \emph{(baseline)}" if row.baseline else "")
        rows.append({"label": label, "cols": cols})
    metric_header = [tex_escape(METRIC_BY_KEY[m].label) + (r" $\uparrow$"
                     if METRIC_BY_KEY[m].higher_is_better else r" $\downarrow$")
                     for m in pt.metrics]
    if k == 1:
        header = [r"Strategy & " + " & ".join(_stacked(s) for s in pt.scenarios) + r" \\"]
        caption = f"{metric_header[0]} per scenario. "
    else:
        first = " & ".join(rf"\multicolumn{{{k}}}{{c}}{{{_stacked(s)}}}" for s in pt.scenarios)
        rules = " ".join(rf"\cmidrule(lr){{{2 + i * k}-{1 + (i + 1) * k}}}"
                         for i in range(len(pt.scenarios)))
        header = [f"& {first} \\\\", rules,
                  "Strategy & " + " & ".join(metric_header * len(pt.scenarios)) + r" \\"]
        caption = ""
    legend = [f"{tex_escape(short)}: {tex_escape(full)}"
              for short, full in zip(pt.scenarios, pt.scenario_labels)]
    return {"colspec": "l" + "r" * len(pt.columns), "header": header, "rows": rows,
            "caption": caption + tex_escape(pt.note()), "legend": legend}


@functools.cache
def latex_environment() -> jinja2.Environment:
    """The report templates without HTML escaping (every text is escaped by :func:`tex_escape`
    before it reaches the template)."""
    return environment().overlay(autoescape=False)


def render_latex(lb: Leaderboard, options: TableOptions | None = None) -> str:
    """The document: the paper table (default; ``options.table == "detail"``: the
    per-scenario tables instead), with the per-scenario tables after it as an appendix when
    ``options.appendix``."""
    options = options or TableOptions()
    paper = options.table in (None, "paper")
    detail = not paper or options.appendix
    return latex_environment().get_template("leaderboard.tex").render(
        paper=paper_view(paper_table(lb, options)) if paper and lb.scenarios else None,
        appendix=paper and detail,
        tables=[table_view(i, t) for i, t in enumerate(lb.scenarios)] if detail else [],
        any_tables=bool(lb.scenarios),
        generated=tex_escape(lb.metadata.get("generated_at")),
        n_runs=lb.metadata.get("n_runs", 0),
        not_run=[{"scenario": tex_escape(r.scenario),
                  "strategies": tex_escape(", ".join(r.strategies))} for r in lb.not_run],
    )


@REPORTERS.register("latex")
class LatexReporter(Reporter):
    description = ("LaTeX document: the table a paper prints (strategies x scenarios, mean ± "
                   "sd; --table detail: one table per scenario)")
    prints_tables = True

    def render(self, loaded: LoadedResults) -> str:
        return render_latex(self.leaderboard(loaded), self.table)
