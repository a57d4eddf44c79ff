"""``clbench report --figures DIR``: heatmaps of R, per-task accuracy curves and parameter growth
as SVG and PDF files named by scenario and strategy, with axes that cover the data, parseable
SVG, reproducible bytes, and no torch; and the same figures as inline SVG for the HTML report
(``drawing.figure_svg``): text escaped, ids unique in the page."""

from __future__ import annotations

import math
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from clbench import cli
from clbench.reports import drawing
from clbench.reports.figures import figures, safe_name, write_figures
from clbench.reports.tables import aggregate
from clbench.results import ResultsStore

GOLDEN = Path(__file__).resolve().parent / "golden"


@pytest.fixture(scope="module")
def lb():
    return aggregate(ResultsStore(GOLDEN / "results").load().runs, ())


def test_one_file_per_figure_and_format_named_by_scenario_and_strategy(lb, tmp_path):
    written = write_figures(lb, tmp_path)
    with_matrix = [(t, c) for t in lb.scenarios for c in t.cells if c.mean_matrix]
    n_figures = 2 * len(with_matrix) + sum(any(c.mean_param_counts for c in t.cells)
                                           for t in lb.scenarios)
    assert len(written) == 2 * n_figures == len(list(tmp_path.iterdir()))
    for t, c in with_matrix:
        stem = f"{safe_name(t.label)}__{safe_name(c.label)}"
        for kind in ("heatmap", "curves"):
            assert (tmp_path / f"{stem}__{kind}.svg").is_file()
            assert (tmp_path / f"{stem}__{kind}.pdf").read_bytes().startswith(b"%PDF-")
    for path in written:
        assert all(ch.isalnum() or ch in "._-" for ch in path.name), path.name
        if path.suffix == ".svg":
            root = ET.parse(path).getroot()
            assert root.tag.endswith("svg")
            assert len(list(root.iter())) > 50  # drawn content, not an empty canvas


def test_hostile_labels_make_safe_distinct_names():
    a, b = safe_name("<script>/../x"), safe_name("<script>/../y")
    assert a != b and "/" not in a and ".." not in a.replace("-", "")[:2]
    assert safe_name("$x_1$ ^") != safe_name("x 1")


def test_axes_cover_the_data(lb):
    for stem, fig in figures(lb):
        ax = fig.axes[0]
        lo, hi = ax.get_ylim()
        for line in ax.get_lines():
            ys = [y for y in line.get_ydata() if not math.isnan(y)]
            assert all(lo <= y <= hi for y in ys), (stem, lo, hi, ys)
        if stem.endswith("__curves"):
            assert (lo, hi) == (0.0, 1.0)
            assert len(ax.get_lines()) == next(t.n_tasks for t in lb.scenarios
                                               if stem.startswith(safe_name(t.label)))
        if stem.endswith("__heatmap"):
            (mesh,) = ax.collections
            assert mesh.get_clim() == (0.0, 1.0)


def test_growth_lines_that_coincide_differ_in_style(lb):
    fig = dict(figures(lb))[next(s for s, _ in figures(lb) if s.endswith("param-growth"))]
    lines = fig.axes[0].get_lines()
    styles = {(line.get_linestyle(), line.get_marker()) for line in lines}
    assert len(styles) == len(lines) >= 2


def test_output_is_reproducible(lb, tmp_path):
    first = write_figures(lb, tmp_path / "a")
    second = write_figures(lb, tmp_path / "b")
    for x, y in zip(first, second):
        assert x.read_bytes() == y.read_bytes(), x.name


def test_cli_writes_figures_without_importing_torch(tmp_path):
    code = (f"import sys; from clbench import cli; "
            f"rc = cli.main(['report', '--results', {str(GOLDEN / 'results')!r}, "
            f"'--figures', {str(tmp_path / 'figs')!r}]); "
            "assert 'torch' not in sys.modules, 'torch imported'; sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "figure files to" in proc.stderr
    assert len(list((tmp_path / "figs").glob("*.svg"))) == \
        len(list((tmp_path / "figs").glob("*.pdf"))) > 0


def test_figures_alone_is_a_valid_request(tmp_path, capsys):
    assert cli.main(["report", "--results", str(GOLDEN / "results"),
                     "--figures", str(tmp_path)]) == 0


XSS = "<script>alert(1)</script>"


def test_inline_svg_escapes_labels_and_keeps_its_ids_apart():
    fig = drawing.line_figure([(XSS, [1.0, 2.0]), ("a & b", [1.0, 2.0])], ["init", XSS],
                              title=XSS, x_label="x", y_label="y")
    first = str(drawing.figure_svg(fig, "s0-growth", f"Parameter growth: {XSS}"))
    second = str(drawing.figure_svg(fig, "s1-growth", "again"))
    for svg in (first, second):
        assert "<script" not in svg and "<?xml" not in svg and "<!DOCTYPE" not in svg
        assert "http://" not in svg  # no namespace declarations: HTML places <svg> itself
    root = ET.fromstring(first)  # well-formed, and its text is the labels as written
    texts = ["".join(el.itertext()) for el in root.iter() if el.tag in ("text", "title")]
    assert f"Parameter growth: {XSS}" in texts and XSS in texts
    assert f"{XSS} (same values as a & b)" not in texts  # the first label is the reference
    assert "a & b (same values as <script>alert(1)</script>)" in texts
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in first
    ids = [set(re.findall(r' id="([^"]+)"', svg)) for svg in (first, second)]
    assert ids[0] and not ids[0] & ids[1]
    assert all(i.startswith("s0-growth-") for i in ids[0])
    refs = set(re.findall(r'url\(#([^)]+)\)|href="#([^"]+)"', first))
    assert {a or b for a, b in refs} <= ids[0]  # every reference resolves inside the figure


def test_inline_svg_key_must_be_an_id():
    fig = drawing.bar_figure([("a", 1.0, None)], title="t", unit="s", x_label="s")
    with pytest.raises(ValueError, match="key"):
        drawing.figure_svg(fig, '"><script>', "t")
