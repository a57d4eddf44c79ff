"""The LaTeX leaderboard: booktabs tables from the neutral leaderboard model, everything from
results escaped, bold beyond the CI only, footnotes on incomplete cells; compiled with a LaTeX
engine where one is installed (skipped otherwise: CI need not have TeX)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from clbench import cli
from clbench.reports.latex_report import render_latex, tex_escape
from clbench.reports.tables import aggregate
from clbench.results import ResultsStore

GOLDEN = Path(__file__).resolve().parent / "golden"
FROZEN = {"generated_at": "2026-01-02T03:04:05+00:00",
          "metadata": {"report_clbench_version": "0.1.0"}}
NASTY = r"<script>a&b</script> 50% $x_1$ #{~^}\ —α"


@pytest.fixture(scope="module")
def lb():
    loaded = ResultsStore(GOLDEN / "results").load()
    return aggregate(loaded.runs, (), **FROZEN)


def test_escaping_leaves_no_active_character():
    text = tex_escape(NASTY)
    for ch in "&%$#_{}~^\\":
        # every special character is part of a command or escaped by a backslash
        stripped = (text.replace("\\&", "").replace("\\%", "").replace("\\$", "")
                    .replace("\\#", "").replace("\\_", "").replace("\\{", "").replace("\\}", ""))
        for cmd in ("textless", "textgreater", "textasciitilde", "textasciicircum",
                    "textbackslash"):
            stripped = stripped.replace(f"\\{cmd}{{}}", "")
        assert ch not in stripped, (ch, stripped)
    assert "---" in text and "α" not in text and text.endswith("?")


def test_one_booktabs_table_per_scenario(lb):
    tex = render_latex(lb)
    assert tex.count(r"\begin{tabular}") == len(lb.scenarios) >= 3
    assert tex.count(r"\toprule") == tex.count(r"\midrule") == tex.count(r"\bottomrule") \
        == len(lb.scenarios)
    assert r"\usepackage{booktabs}" in tex and r"\begin{document}" in tex
    table = next(part for part in tex.split(r"\begin{table}")
                 if "split-digits [class] (n\\_tasks=3) v1, budget smoke" in part)
    body = table.split(r"\begin{tabular}")[1].split(r"\end{tabular}")[0]
    rows = [line for line in body.splitlines() if line.endswith(r"\\")]
    header, *cells = rows
    assert header.startswith("Rank & Strategy & $n$ & ACC")
    assert all(line.count("&") == header.count("&") for line in cells)
    # joint is best in ACC beyond the CIs; naive's LA (inside the CI of joint's) is not bold
    joint = next(line for line in cells if "& joint &" in line)
    naive = next(line for line in cells if "& naive &" in line)
    assert r"\textbf{0.812\,\ensuremath{\pm}\,0.027}" in joint
    assert r"\textbf{0.894" not in naive
    assert r"\textminus{}0.100" in joint  # a real minus sign


def test_incomplete_cells_get_a_footnote_and_no_bold(lb):
    tex = render_latex(lb)
    assert r"\textless{}script\textgreater{}alert(1)\textless{}/script\textgreater{}" \
           r"\textsuperscript{1}" in tex
    assert "incomplete, 2 of 3 seeds ok" in tex
    assert "<script>" not in tex


def test_cli_writes_the_latex_file(tmp_path, capsys):
    out = tmp_path / "tables" / "leaderboard.tex"
    assert cli.main(["report", "--results", str(GOLDEN / "results"), "--latex", str(out)]) == 0
    assert out.read_text().startswith("% clbench leaderboard")


ENGINES = [e for e in ("pdflatex", "lualatex", "xelatex") if shutil.which(e)]


@pytest.mark.skipif(not ENGINES, reason="no LaTeX engine installed (Debian: texlive-latex-base "
                                        "texlive-latex-recommended)")
def test_the_document_compiles(lb, tmp_path):
    from clbench.reports.table_model import Cell

    cell: Cell = lb.scenarios[0].cells[0]
    cell.label = NASTY  # a hostile strategy name must not break the document
    (tmp_path / "lb.tex").write_text(render_latex(lb))
    proc = subprocess.run([ENGINES[0], "-interaction=nonstopmode", "-halt-on-error", "lb.tex"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert (tmp_path / "lb.pdf").stat().st_size > 1000
