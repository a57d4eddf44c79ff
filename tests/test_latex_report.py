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
from clbench.reports.paper_table import TableOptions, paper_table, short_labels
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


DETAIL = TableOptions(table="detail")


def test_one_booktabs_table_per_scenario(lb):
    tex = render_latex(lb, DETAIL)
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
    tex = render_latex(lb, DETAIL)
    assert r"\textless{}script\textgreater{}alert(1)\textless{}/script\textgreater{}" \
           r"\textsuperscript{1}" in tex
    assert "incomplete, 2 of 3 seeds ok" in tex
    assert "<script>" not in tex


def test_cli_writes_the_latex_file(tmp_path, capsys):
    out = tmp_path / "tables" / "leaderboard.tex"
    assert cli.main(["report", "--results", str(GOLDEN / "results"), "--latex", str(out)]) == 0
    assert out.read_text().startswith("% clbench leaderboard")


ENGINES = [e for e in ("pdflatex", "lualatex", "xelatex") if shutil.which(e)]


def _compile(tex: str, tmp_path) -> str:
    """Compile ``tex``; the log, which must show no overfull box and no float too large."""
    (tmp_path / "lb.tex").write_text(tex)
    proc = subprocess.run([ENGINES[0], "-interaction=nonstopmode", "-halt-on-error", "lb.tex"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert (tmp_path / "lb.pdf").stat().st_size > 1000
    log = (tmp_path / "lb.log").read_text(errors="replace")
    assert "Overfull \\hbox" not in log and "Overfull \\vbox" not in log, \
        [ln for ln in log.splitlines() if "Overfull" in ln]
    assert "Float too large" not in log
    return log


@pytest.mark.skipif(not ENGINES, reason="no LaTeX engine installed (Debian: texlive-latex-base "
                                        "texlive-latex-recommended)")
def test_the_document_compiles_and_every_table_fits_the_page(lb, tmp_path):
    from clbench.reports.table_model import Cell

    cell: Cell = lb.scenarios[0].cells[0]
    cell.label = NASTY  # a hostile strategy name must not break the document
    # the paper table with two metrics and marks, then the 11-column detail tables (the
    # latter ran 110-133 pt past the margin before they were scaled to fit)
    _compile(render_latex(lb, TableOptions(metrics=("acc", "forgetting"), baseline="naive",
                                           appendix=True)), tmp_path)


def wide_leaderboard():
    """Eight scenarios of eight strategies with long labels: a table far wider and taller
    than a page."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("golden_make_results",
                                                  GOLDEN / "make_results.py")
    make = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make)
    docs = [make.run_result(f"scenario-with-a-long-name-{k}", "task", {"setting": "task"},
                            f"strategy-{j}", {"a_long_parameter": 1000 + j}, seed, "smoke",
                            [[0.5, 0.5], [0.6, 0.5], [0.6 + 0.01 * j, 0.7]],
                            group_seeds=range(2))
            for k in range(8) for j in range(8) for seed in range(2)]
    return aggregate(docs, (), **FROZEN)


@pytest.mark.skipif(not ENGINES, reason="no LaTeX engine installed")
def test_a_wide_paper_table_is_scaled_to_fit(tmp_path):
    _compile(render_latex(wide_leaderboard(), TableOptions(
        metrics=("acc", "forgetting", "bwt"), baseline="strategy-0", appendix=True)), tmp_path)


def test_the_paper_table_is_the_default_latex_output(lb):
    tex = render_latex(lb)
    assert tex.count(r"\begin{tabular}{l") == 1 and "tab:clbench-paper" in tex
    assert "Appendix" not in tex
    # strategies as rows, scenarios as columns: the header names each scenario briefly
    header = next(ln for ln in tex.splitlines() if ln.startswith("Strategy & "))
    assert header.count("&") == len(lb.scenarios)
    assert "split-digits" in header and "v1" not in header and "n\\_tasks" not in header
    assert "(budget default)" in header  # two split-digits [class] tables: their budgets differ
    with_appendix = render_latex(lb, TableOptions(appendix=True))
    assert "Appendix: per-scenario tables" in with_appendix
    assert with_appendix.count(r"\begin{table}") == 1 + len(lb.scenarios)


def test_paper_table_marks_against_the_baseline_after_adjustment(lb):
    pt = paper_table(lb, TableOptions(metrics=("acc",), baseline="naive"))
    assert pt.baseline == "naive" and pt.family_size > 0
    joint = next(r for r in pt.rows if r.label == "joint")
    i = [j for j, (k, _) in enumerate(pt.columns)
         if pt.scenarios[k] == "split-digits [class] (budget smoke)"][0]
    assert joint.cells[i].mark == "+"  # 0.812 vs 0.472, paired, Holm-adjusted
    assert "Holm" in pt.note() and f"{pt.family_size} tests" in pt.note()
    tex = render_latex(lb, TableOptions(baseline="naive"))
    assert r"\rlap{$^{+}$}" in tex and r"naive \emph{(baseline)}" in tex
    unmarked = paper_table(lb, TableOptions(metrics=("acc",), baseline="naive", adjust="none"))
    assert unmarked.family_size == pt.family_size


def test_short_labels_keep_only_what_tells_scenarios_apart():
    lb = wide_leaderboard()
    assert short_labels(lb.scenarios) == [f"scenario-with-a-long-name-{k} [task]"
                                          for k in range(8)]
