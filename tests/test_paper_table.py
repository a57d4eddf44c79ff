"""The paper table in Markdown and HTML (`clbench report --table paper`), and its bad input."""

from __future__ import annotations

from pathlib import Path

from cli_run import clbench

GOLDEN = Path(__file__).resolve().parent / "golden"
XSS = "<script>alert(1)</script>"


def test_markdown_and_html_paper_table(capsys, tmp_path):
    html = tmp_path / "lb.html"
    code, out, err = clbench(capsys, "report", "--results", GOLDEN / "results", "--markdown",
                             "-", "--html", html, "--table", "paper", "--metrics",
                             "acc,forgetting", "--baseline", "naive")
    assert code == 0, err
    section = out.split("## Paper table")[1].split("## Overall ranking")[0]
    header = next(ln for ln in section.splitlines() if ln.startswith("| Strategy"))
    assert "split-digits \\[class\\] (budget smoke) ACC" in header
    assert "split-digits \\[class\\] (budget smoke) Forgetting" in header
    joint = next(ln for ln in section.splitlines() if ln.startswith("| joint |"))
    assert "**0.812 ± 0.011** +" in joint  # bold beyond the CIs, better than naive
    assert "| naive (baseline) |" in section and "\\<script\\>" in section
    assert "adjusted as one family by Holm" in section
    page = html.read_text()
    assert '<h2 id="paper">Paper table</h2>' in page and XSS not in page
    assert '<sup class="mark">+</sup>' in page
    # without --table paper, Markdown and HTML keep their per-scenario tables only
    code, out, _ = clbench(capsys, "report", "--results", GOLDEN / "results", "--markdown", "-")
    assert code == 0 and "## Paper table" not in out


def test_paper_table_bad_input_is_named(capsys):
    for args, words in ((["--metrics", "speed"], "unknown metric 'speed'"),
                        (["--baseline", "nope"], "no single strategy 'nope'")):
        code, _, err = clbench(capsys, "report", "--results", GOLDEN / "results", "--latex",
                               "-", *args)
        assert code == 2 and words in err, err
