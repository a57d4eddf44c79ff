"""The HTML report in a real browser: headless Chromium (Debian's /usr/bin/chromium, not a
Playwright download) driven by Playwright, opening the file from disk with every non-file
request aborted. Checks: no request leaves the file, no console error or page error, no dialog
(the ``<script>alert(1)</script>`` strategy is text, in the tables and in the charts), sorting on
a header click, and charts drawn with a non-zero size and their labels visible as text.

Skipped, with the reason, when chromium or the playwright package is missing.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from clbench.reports.html_report import render_html
from clbench.reports.tables import aggregate
from clbench.results import ResultsStore

GOLDEN = Path(__file__).resolve().parent / "golden"
XSS = "<script>alert(1)</script>"
CHROMIUM = os.environ.get("CLBENCH_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

sync_api = pytest.importorskip(
    "playwright.sync_api",
    reason="the playwright package is not installed (pip install playwright)")
if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
    pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def page_report(tmp_path_factory):
    path = tmp_path_factory.mktemp("html") / "leaderboard.html"
    loaded = ResultsStore(GOLDEN / "results").load()
    path.write_text(render_html(aggregate(loaded.runs, generated_at="2026-01-02T03:04:05Z")))
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page()
            seen = {"network": [], "console": [], "errors": [], "dialogs": []}

            def route(r):
                if r.request.url.startswith("file://"):
                    r.continue_()
                else:
                    seen["network"].append(r.request.url)
                    r.abort()

            page.route("**/*", route)
            page.on("console", lambda m: m.type == "error" and seen["console"].append(m.text))
            page.on("pageerror", lambda e: seen["errors"].append(str(e)))

            def on_dialog(d):
                seen["dialogs"].append(d.message)
                d.dismiss()

            page.on("dialog", on_dialog)
            page.goto(path.as_uri())
            page.wait_for_load_state("load")
            yield page, seen
        finally:
            browser.close()


def test_opens_offline_without_errors(page_report):
    page, seen = page_report
    assert seen["network"] == [], "the report tried to fetch something"
    assert seen["console"] == [] and seen["errors"] == []
    assert page.title() == "clbench leaderboard"


def test_script_named_strategy_is_text(page_report):
    page, seen = page_report
    assert seen["dialogs"] == []
    cells = page.locator("td.strategy").all_text_contents()
    assert XSS in cells
    assert XSS in page.locator("body").inner_text()
    assert page.evaluate("document.querySelectorAll('script').length") == 2


def test_header_click_sorts_the_table(page_report):
    page, _ = page_report
    table = page.locator("table.leaderboard").nth(2)  # split-digits smoke: 3 strategies
    names = lambda: table.locator("tbody td.strategy").all_text_contents()  # noqa: E731
    before = names()
    assert before == ["joint", "naive", XSS]  # ranked by ACC
    table.locator("th[data-key='label']").click()
    ascending = names()
    assert ascending == [XSS, "joint", "naive"]  # "<" sorts first
    assert table.locator("th[data-key='label']").get_attribute("aria-sort") == "ascending"
    table.locator("th[data-key='label']").click()
    assert names() == list(reversed(ascending))
    table.locator("th[data-key='acc']").click()  # ascending ACC: naive is the lowest
    assert names()[0] == "naive"
    assert names() != before


def test_charts_render(page_report):
    page, _ = page_report
    sizes = page.evaluate(
        "Array.from(document.querySelectorAll('svg.chart')).map(s => {"
        " const r = s.getBoundingClientRect(); return [r.width, r.height,"
        " Array.from(s.querySelectorAll('path')).filter(p => {"
        "  const b = p.getBoundingClientRect(); return b.width > 0 || b.height > 0; }).length];"
        " })")
    assert len(sizes) >= 10
    assert all(w > 100 and h > 50 and n > 10 for w, h, n in sizes), sizes
    assert page.locator("svg.heatmap").count() >= 6
    # The charts' text is text in the page, the hostile label too (no dialog: test above).
    heatmap_texts = page.locator("svg.heatmap text").all_text_contents()
    assert f"{XSS}: R (2 seeds)" in heatmap_texts
    assert "0.90" in heatmap_texts  # a cell's value, written in the cell
    box = page.locator("svg.heatmap text", has_text=f"{XSS}: R").first.bounding_box()
    assert box and box["width"] > 0 and box["height"] > 0
    legend = page.locator("svg.chart text", has_text="(same values as naive)")
    assert legend.count() >= 1 and legend.first.is_visible()
