"""Regenerate docs/stability-gap.svg: the stability gap of replay on class-incremental Split
MNIST (De Lange, van de Ven & Tuytelaars, ICLR 2023, Figure 1), drawn from the runs of the
accuracy tier's ``test_replay_shows_the_stability_gap`` in the committed reference store.

    pytest -m accuracy tests/test_accuracy.py -k stability_gap   # runs it if not stored
    python docs/make_stability_gap.py
"""

from __future__ import annotations

import sys
from pathlib import Path

from clbench import api
from clbench.reports import drawing
from clbench.reports.figures import stability_gap_figure
from clbench.reports.tables import aggregate
from clbench.results import ResultsStore

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from test_accuracy import (  # noqa: E402 (the tier's own definition of the run)
    GAP_BUDGET,
    GAP_EVAL_EVERY,
    GAP_EVAL_SUBSET,
    GAP_SCENARIO,
    GAP_STRATEGY,
    SEEDS,
)


def main(out: Path = REPO / "docs" / "stability-gap.svg") -> None:
    specs, _ = api.plan(scenarios=[GAP_SCENARIO], strategies=[GAP_STRATEGY], seeds=list(SEEDS),
                        budget=GAP_BUDGET, eval_every=GAP_EVAL_EVERY,
                        eval_subset=GAP_EVAL_SUBSET)
    hashes = {s.hash for s in specs}
    runs = [r for r in ResultsStore(REPO / "reference" / "results").load().runs
            if r.spec_hash in hashes]
    if len(runs) != len(specs):
        sys.exit(f"{len(runs)} of {len(specs)} runs are stored: run the tier's "
                 "test_replay_shows_the_stability_gap first")
    [table] = aggregate(runs).scenarios
    drawing.save_figure(stability_gap_figure(table, table.cells[0]), out, "svg")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
