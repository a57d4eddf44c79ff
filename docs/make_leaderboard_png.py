"""Regenerate docs/leaderboard.png: the HTML report of a results store, screenshotted with
Debian's headless Chromium through Playwright, offline.

    clbench run --suite demo --results /tmp/demo-results
    python docs/make_leaderboard_png.py /tmp/demo-results
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from clbench import api

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def main(results: str, out: str = str(Path(__file__).with_name("leaderboard.png"))) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        html = Path(tmp) / "leaderboard.html"
        api.report(results, {"html": html})
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1500})
            page.route("**/*", lambda r: r.continue_() if r.request.url.startswith("file:")
                       else r.abort())
            page.goto(html.as_uri())
            page.screenshot(path=out, full_page=False)
            browser.close()


if __name__ == "__main__":
    main(*sys.argv[1:])
