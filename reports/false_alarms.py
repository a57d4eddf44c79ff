"""The regression gate's false-alarm rate, measured by simulation over a store's per-seed values.

Each simulated night draws, for every cell of the store with at least 2 ok seeds, two samples
of the *same* distribution, a baseline and a current one of ``seeds`` values each, labelled with
the same seeds, and gates them exactly as ``clbench gate`` does (the paired t-test, or Welch's
with ``paired=False``; the cells' p-values adjusted as one family; the verdict of
:func:`clbench.reports.compare.verdict`). Every regression flagged is a false alarm. Two
samples of one distribution:

* ``normal``: normal with the cell's stored mean and sd (the t-tests' own assumption);
* ``bootstrap``: drawn with replacement from the cell's stored per-seed values (no assumption;
  with few stored seeds the draws are coarse and ties are frequent).

Run: ``python -m clbench.reports.false_alarms RESULTS [--nights N]``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np

from clbench.metrics import METRIC_BY_KEY
from clbench.reports.compare import verdict
from clbench.reports.significance import adjust_results, compare_stats
from clbench.reports.statistics import summarize
from clbench.reports.table_model import Leaderboard


@dataclass
class FalseAlarms:
    cells: int  # cells simulated per night (the family size)
    nights: int
    per_cell: float  # fraction of cell-nights flagged as a regression
    per_night: float  # fraction of nights with at least one regression flagged


def stored_values(lb: Leaderboard, metric: str = "acc") -> list[list[float]]:
    """The per-seed values of every cell with at least 2 ok seeds (with some spread)."""
    out = []
    for t in lb.scenarios:
        for c in t.cells:
            st = c.metrics.get(metric)
            if st is not None and st.n >= 2 and st.std:
                out.append(list(st.values))
    return out


def simulate(cells: list[list[float]], nights: int = 1000, seeds: int = 5,
             resample: str = "normal", paired: bool = True, max_drop: float = 0.01,
             alpha: float = 0.05, adjust: str = "holm", higher_is_better: bool = True,
             rng_seed: int = 0) -> FalseAlarms:
    """The false-alarm rates of the gate over ``nights`` simulated nights (see the module)."""
    rng = np.random.default_rng(rng_seed)
    seed_ids = list(range(seeds))
    flagged_cells = flagged_nights = 0
    for _ in range(nights):
        results, changes = [], []
        for values in cells:
            if resample == "normal":
                mean, sd = float(np.mean(values)), float(np.std(values, ddof=1))
                old, new = rng.normal(mean, sd, seeds), rng.normal(mean, sd, seeds)
            else:
                old, new = rng.choice(values, seeds), rng.choice(values, seeds)
            a = summarize(old.tolist(), seeds=seed_ids)
            b = summarize(new.tolist(), seeds=seed_ids)
            result = compare_stats(b, a, "paired-t" if paired else "welch")
            results.append(result)
            changes.append((b.mean - a.mean) if higher_is_better else (a.mean - b.mean))
        adjust_results(results, adjust)
        n = sum(verdict(c, r.p_adjusted, max_drop, alpha) == "regression"
                for c, r in zip(changes, results))
        flagged_cells += n
        flagged_nights += n > 0
    return FalseAlarms(len(cells), nights, flagged_cells / (nights * len(cells)),
                       flagged_nights / nights)


def main(argv: list[str] | None = None) -> None:
    from clbench.reports.tables import aggregate
    from clbench.results import ResultsStore

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("results")
    ap.add_argument("--metric", default="acc")
    ap.add_argument("--nights", type=int, default=1000)
    ap.add_argument("--alpha", type=float, default=0.05)
    ap.add_argument("--max-drop", type=float, default=0.01)
    args = ap.parse_args(argv)
    lb = aggregate(ResultsStore(args.results).load().runs)
    cells = stored_values(lb, args.metric)
    higher = METRIC_BY_KEY[args.metric].higher_is_better
    print(f"{len(cells)} cells with >= 2 seeds in {args.results}; {args.nights} nights; "
          f"alpha {args.alpha}")
    print("| samples | seeds | test | adjust | max-drop | per cell | per night |")
    print("|---|---:|---|---|---:|---:|---:|")
    for resample in ("normal", "bootstrap"):
        for seeds in (3, 5):
            for paired in (True, False):
                for adjust in ("holm", "none"):
                    r = simulate(cells, args.nights, seeds, resample, paired, args.max_drop,
                                 args.alpha, adjust, higher)
                    print(f"| {resample} | {seeds} | {'paired-t' if paired else 'welch'} "
                          f"| {adjust} | {args.max_drop} | {r.per_cell:.4f} | "
                          f"{r.per_night:.3f} |", flush=True)


if __name__ == "__main__":
    main()
