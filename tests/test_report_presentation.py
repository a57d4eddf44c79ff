"""How the leaderboards present numbers: bold only beyond the CI, group-wide measurements "per
group", one unit per value, the metadata's devices, chart axes that cover the data and lines
that stay visible when they coincide. Hand-made documents; no training."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from clbench.reports import drawing
from clbench.reports.formatting import fmt_stat
from clbench.reports.html_report import render_html
from clbench.reports.markdown_report import meta_rows, render_markdown
from clbench.reports.statistics import Stat
from clbench.reports.tables import aggregate

GOLDEN = Path(__file__).resolve().parent / "golden"
_spec = importlib.util.spec_from_file_location("golden_make_results",
                                               GOLDEN / "make_results.py")
make_results = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_results)
FROZEN = {"generated_at": "2026-01-02T03:04:05+00:00",
          "metadata": {"report_clbench_version": "0.1.0"}}


def runs(strategy, finals, mem=100 * 2**20, counts=None, alone=True):
    """One run per final ACC (seed i), each trained alone unless ``alone`` is False."""
    return [make_results.run_result(
        "split-digits", "task", {"setting": "task"}, strategy, {}, seed, "smoke",
        [[0.5, 0.5], [0.9, 0.5], [0.9 - 0 * f, f]], counts=counts,
        group_seeds=(seed,) if alone else tuple(range(len(finals))), mem=mem,
        wall=10.0 + seed) for seed, f in enumerate(finals)]


def only_table(docs):
    (t,) = aggregate(docs, (), **FROZEN).scenarios
    return t


def test_a_difference_inside_the_ci_is_not_bold():
    t = only_table(runs("a", [0.80, 0.90, 0.70]) + runs("b", [0.81, 0.91, 0.71]))
    assert "acc" not in t.best  # 0.81 vs 0.80 with a CI of ~0.25: no winner


def test_a_tie_is_not_bold():
    t = only_table(runs("a", [0.8, 0.8, 0.8]) + runs("b", [0.8, 0.8, 0.8]))
    assert t.best == {}


def test_a_difference_beyond_the_ci_is_bold_in_every_format():
    t = only_table(runs("a", [0.50, 0.51, 0.52]) + runs("b", [0.90, 0.91, 0.92]))
    assert t.best["acc"] == ["b"]
    lb = aggregate(runs("a", [0.50, 0.51, 0.52]) + runs("b", [0.90, 0.91, 0.92]), (), **FROZEN)
    b, a = lb.scenarios[0].cells
    best, other = fmt_stat(b.metrics["acc"], "acc"), fmt_stat(a.metrics["acc"], "acc")
    md = render_markdown(lb)
    assert f"**{best}**" in md and f"**{other}**" not in md
    html = render_html(lb)
    assert f'<td class="best">{best}</td>' in html and f'<td class="best">{other}' not in html


def test_seeds_of_one_group_show_their_time_per_group_not_a_fake_ci():
    docs = runs("a", [0.8, 0.8, 0.8], alone=False)
    for d in docs:  # a batched group: every member records the group's time
        object.__setattr__(d.times, "wall_s", 12.0)
    (c,) = only_table(docs).cells
    text = fmt_stat(c.metrics["wall_time_s"], "wall_time_s")
    assert text == "12.0 s per group"
    md = render_markdown(aggregate(docs, (), **FROZEN))
    assert "| 12.0 s per group |" in md and "12.0 s ±" not in md


def test_runs_trained_alone_keep_their_ci_over_seeds():
    (c,) = only_table(runs("a", [0.8, 0.8, 0.8])).cells
    wall = c.metrics["wall_time_s"]
    assert not wall.per_group and wall.n == 3 and wall.ci > 0


def test_memory_and_its_ci_share_one_unit():
    text = fmt_stat(Stat(765 * 2**20, 1.0, 3, 25.4 * 2**10), "peak_host_memory_bytes")
    units = re.findall(r"[KMG]iB", text)
    assert units == ["MiB", "MiB"], text
    assert text == "765.000 MiB ± 0.025 MiB"


def test_metadata_names_devices_once_and_cuda_plainly():
    lb = aggregate(runs("a", [0.8, 0.9]), (), **FROZEN)
    rows = dict(meta_rows(lb.metadata))
    assert rows["CUDA"] == "not used (CPU runs only)"
    assert rows["Devices"] == "cpu"
    assert rows["CPU"].startswith("Test CPU") and "Test CPU" not in rows["Devices"]
    gpu = {**lb.metadata, "hardware": ["cuda:0: NVIDIA H200"], "cuda": ["12.4"]}
    rows = dict(meta_rows(gpu))
    assert rows["CUDA"] == "12.4" and rows["Devices"] == "cuda:0: NVIDIA H200"


def test_the_y_axis_covers_the_data():
    fig = drawing.line_figure([("net2net", [535_818, 600_000, 700_810])], ["init", "1", "2"],
                              title="growth", x_label="after task", y_label="parameters",
                              thousands=True)
    lo, hi = fig.axes[0].get_ylim()
    assert lo < 535_818 and hi > 700_810, (lo, hi)


def test_identical_lines_stay_distinguishable():
    fig = drawing.line_figure([("naive", [1000, 1000]), ("ewc", [1000, 1000]),
                               ("net2net", [1000, 1500])], ["init", "1"],
                              title="growth", x_label="after task", y_label="parameters")
    a, b, other = fig.axes[0].get_lines()
    assert a.get_linestyle() != b.get_linestyle() and a.get_marker() != b.get_marker()
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == ["naive", "ewc (same values as naive)", "net2net"]
    svg = str(drawing.figure_svg(fig, "growth", "growth"))
    assert "ewc (same values as naive)" in svg
