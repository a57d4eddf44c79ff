"""Published reference figures for the accuracy tier (``pytest -m accuracy``).

One table, ``bench/reference.toml``: each row names a clbench run (scenario and strategy in the
CLI's ``NAME:key=value`` syntax, a budget), the published figure it should reproduce (a metric of
the accuracy matrix, its target and tolerance), the source of the figure, and how our setup
differs from the source's. ``REPRODUCIBILITY.md`` lists the same rows with the figures reached.

```toml
[[target]]
id = "naive-split-mnist-class"
scenario = "split-mnist:setting=class"
strategy = "naive"
budget = "paper"
metric = "acc"            # a metric of the accuracy matrix in clbench.metrics.METRICS
target = 0.197
tolerance = 0.02
check = "within"          # |mean - target| <= tolerance; "at_least": mean >= target - tolerance
source = "Hsu et al. 2018, ..."
differences = "what is not as in the source"
cpu_minutes = 2           # rough cost of 3 seeds on a 2-core CPU
```
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from clbench.budget import get_budget
from clbench.errors import ConfigError
from clbench.metrics import MATRIX_METRICS, matrix_metric
from clbench.spec import RunSpec, make_specs

_FIELDS = {"id", "scenario", "strategy", "budget", "metric", "target", "tolerance", "check",
           "source", "differences", "cpu_minutes"}
CHECKS = ("within", "at_least")


@dataclass(frozen=True)
class ReferenceTarget:
    id: str
    scenario: str
    strategy: str
    budget: str
    metric: str
    target: float
    tolerance: float
    check: str
    source: str
    differences: str
    cpu_minutes: float

    def specs(self, seeds: Sequence[int]) -> list[RunSpec]:
        return make_specs(self.scenario, self.strategy, list(seeds), self.budget)

    def value(self, accuracy_matrix) -> float:
        """This row's metric of one run's accuracy matrix."""
        return MATRIX_METRICS[self.metric](accuracy_matrix)

    def target_text(self) -> str:
        if self.check == "at_least":
            return f">= {self.target - self.tolerance:.3f} ({self.target:.3f} - {self.tolerance})"
        return f"{self.target:.3f} ± {self.tolerance}"

    def reached(self, mean: float) -> bool:
        """``within``: the mean over seeds is within ``tolerance`` of the target on either
        side; ``at_least``: it is no more than ``tolerance`` below it (sources that publish a
        figure to reach, such as continual-learning-baselines, pass anything above)."""
        if not math.isfinite(mean):
            return False
        if self.check == "at_least":
            return mean >= self.target - self.tolerance
        return abs(mean - self.target) <= self.tolerance


def _row(item: object, where: str) -> ReferenceTarget:
    if not isinstance(item, dict):
        raise ConfigError(f"{where}: each [[target]] must be a table")
    missing = sorted(_FIELDS - item.keys())
    unknown = sorted(item.keys() - _FIELDS)
    if missing or unknown:
        raise ConfigError(f"{where}: " + "; ".join(
            part for part in (missing and f"missing {', '.join(missing)}",
                              unknown and f"unknown keys {', '.join(unknown)}") if part))
    row = ReferenceTarget(**{k: item[k] for k in _FIELDS})
    try:
        matrix_metric(row.metric)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc.message}", hint=exc.hint) from None
    if row.check not in CHECKS:
        raise ConfigError(f"{where}: unknown check {row.check!r}",
                          hint=f"choose one of: {', '.join(CHECKS)}")
    try:
        get_budget(row.budget)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc.message}", hint=exc.hint) from None
    for key in ("target", "tolerance", "cpu_minutes"):
        value = getattr(row, key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < -1:
            raise ConfigError(f"{where}: {key} must be a number, got {value!r}")
    if row.tolerance < 0:
        raise ConfigError(f"{where}: tolerance must be >= 0, got {row.tolerance}")
    if not row.source.strip():
        raise ConfigError(f"{where}: every target needs its source")
    return row


def load_targets(path: str | Path | None = None) -> list[ReferenceTarget]:
    """The reference table (the built-in one by default); raises ConfigError naming the row."""
    if path is None:
        text = (resources.files("clbench") / "reference.toml").read_text()
        origin = "bench/reference.toml"
    else:
        text, origin = Path(path).read_text(), str(path)
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{origin} is not valid TOML: {exc}") from None
    rows = [_row(item, f"{origin} target {i + 1}") for i, item in
            enumerate(doc.get("target", []))]
    ids = [r.id for r in rows]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ConfigError(f"{origin}: duplicate target ids {', '.join(duplicates)}")
    return rows
