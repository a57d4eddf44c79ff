"""Reference figures for the accuracy tier (``pytest -m accuracy``): what clbench claims to
reproduce, each row a clbench run, the figure it should reach, and where that figure comes from.

One table, ``bench/reference.toml``. Each ``[[target]]`` row declares the fields of
:class:`ReferenceTarget` (the dataclass is the one declaration: required fields have no default,
optional ones have theirs, and the loader derives its key checks from it):

```toml
[[target]]
id = "ewc-split-mnist-task"
scenario = "split-mnist:setting=task"
strategy = "ewc"
budget = "paper"
metric = "acc"            # a metric of the accuracy matrix (clbench.metrics) or a probe
target = 0.977
sd = 0.0081               # the source's spread (sd over its runs): tolerance = 3 sd + allowances
allowances = [{points = 0.01, why = "32x32 inputs in the source, 28x28 here"}]
check = "within"          # |mean - target| <= tolerance; "at_least": mean >= target - tolerance
source = "Hsu et al. 2018, Table 2: EWC, task-IL, 97.70 ± 0.81"
source_kind = "paper"     # paper | authors-log | suite-target | claim
baseline_target = 0.9346  # fine-tuning's figure in the same source and setting
baseline_source = "Hsu et al. 2018, Table 2: Adam, task-IL, 93.46 ± 2.01"
differences = "what is not as in the source"
cpu_minutes = 6           # rough cost of 3 seeds on the 2-core development CPU
```

**Tolerance.** A row gives either ``sd`` (the source's reported spread; the tolerance is
``SPREAD_WIDTH`` sd plus each written allowance) or ``tolerance`` itself, where the source sets
its own acceptance (a reproducibility suite's delta) or the row is a claim with a margin of ours.
A wider window never comes without its reason: every allowance carries its ``why``.

**Baseline.** Every row is told apart from fine-tuning: ``baseline`` is the strategy run beside
it (default: ``naive`` with the row's training parameters) and ``baseline_target`` the source's
own fine-tuning figure in the same setting. A row *discriminates* when its window leaves out
that published figure, when it is a claim (``versus_baseline``: the checked value is the row's
metric minus the baseline's, seed by seed) with a positive margin, or when it names a
``baseline`` without a published figure, which the tier then requires to miss the window
(``measured``). A row that does not discriminate (EWC in class-IL equals fine-tuning by design)
may stay; it never counts as its strategy's check (``tests/test_accuracy.py``).

**Cost.** ``cpu_minutes`` above ``GPU_MINUTES`` marks a row for a GPU: on a CPU the tier lists it
as not run here. Above ``ONE_SEED_MINUTES`` the tier trains one seed per group, so each finished
seed is stored (and committed) on its own.

Some claims are not a function of the accuracy matrix; their metric is a *probe*
(:data:`PROBES`), measured by the tier on the trained strategy itself and stored beside the
results (``reference/probes/``).
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from clbench.budget import get_budget
from clbench.errors import ConfigError
from clbench.metrics import MATRIX_METRICS, matrix_metric
from clbench.params import parse_named
from clbench.registry import STRATEGIES
from clbench.spec import RunSpec, make_specs

CHECKS = ("within", "at_least")
# What a row's figure is: the paper's own table; a log in the authors' repository; a
# reproducibility suite's target (continual-learning-baselines); a method's claim against its
# ablation or fine-tuning, with a margin of ours. Never two kinds in one row.
SOURCE_KINDS = ("paper", "authors-log", "suite-target", "claim")
SPREAD_WIDTH = 3  # tolerance = SPREAD_WIDTH x the source's sd, plus the written allowances
GPU_MINUTES = 30  # rows costlier than this for 3 seeds on the 2-core CPU run on a GPU
ONE_SEED_MINUTES = 5  # rows costlier than this train one seed per group
# Baselines: the strategy that does nothing against forgetting, with the row's training.
FINE_TUNING = "naive"
# Claims measured on the trained strategy, not read from the accuracy matrix (tests/
# test_accuracy.py measures them): name -> what the value is.
PROBES = {
    "widening_output_change": "the largest relative change of the trained network's outputs "
                              "(logits on test inputs) when it is widened before the next "
                              "task (Net2Net's function preservation, Chen et al. 2016, Sec. 3)",
    "net2net_acceleration": "the training steps a widened student needs to reach the accuracy "
                            "that a network of its width trained from scratch for as many "
                            "steps ends with, over the steps that network needs (Chen et al. "
                            "2016, Sec. 4.2); below 1: fewer steps",
}


@dataclass(frozen=True)
class Allowance:
    """A written widening of a row's tolerance for one protocol difference."""

    points: float
    why: str


@dataclass(frozen=True)
class ReferenceTarget:
    id: str
    scenario: str
    strategy: str
    budget: str
    metric: str
    target: float
    check: str
    source: str
    source_kind: str
    differences: str
    cpu_minutes: float
    # exactly one of these two: the source's spread, or a tolerance the source sets itself
    sd: float | None = None
    tolerance_given: float | None = field(default=None, metadata={"key": "tolerance"})
    allowances: tuple[Allowance, ...] = ()
    baseline: str | None = None
    baseline_target: float | None = None
    baseline_source: str = ""
    versus_baseline: bool = False
    # Why clbench does not reach this figure: the tier runs the row and reports it as an
    # expected failure (strict: reaching it fails the tier, so the note goes once it holds).
    # A claim kept visible, not a row deleted. The figures are in the generated table.
    not_reproduced: str = ""

    @property
    def tolerance(self) -> float:
        if self.tolerance_given is not None:
            return self.tolerance_given
        return SPREAD_WIDTH * self.sd + sum(a.points for a in self.allowances)

    @property
    def baseline_strategy(self) -> str:
        """The strategy run beside this row: ``baseline``, or fine-tuning (naive) with the
        row's own training parameters (optimizer, lr, epochs, ... that naive has)."""
        if self.baseline:
            return self.baseline
        _, params = parse_named(self.strategy)
        fields = {f.name for f in dataclasses.fields(STRATEGIES.get(FINE_TUNING).Params)}
        kept = ",".join(f"{k}={v}" for k, v in params.items() if k in fields)
        return f"{FINE_TUNING}:{kept}" if kept else FINE_TUNING

    @property
    def strategy_name(self) -> str:
        return parse_named(self.strategy)[0]

    @property
    def is_probe(self) -> bool:
        return self.metric in PROBES

    @property
    def needs_gpu(self) -> bool:
        return self.cpu_minutes > GPU_MINUTES

    @property
    def seeds_per_group(self) -> int | None:
        """1 for a long row (each seed stored as it finishes); None: all seeds in one group."""
        return 1 if self.cpu_minutes > ONE_SEED_MINUTES else None

    @property
    def discrimination(self) -> str:
        """How the row tells the method from its baseline: ``published`` (the window leaves
        out the source's fine-tuning figure), ``margin`` (a claim with a positive margin over
        the baseline), ``measured`` (the tier requires the measured baseline to miss the
        window), or ``""``: it does not (module docstring)."""
        if self.versus_baseline:
            return "margin" if self.target - self.tolerance > 0 else ""
        if self.baseline_target is not None:
            return "" if self.reached(self.baseline_target) else "published"
        return "measured" if self.baseline else ""

    def specs(self, seeds: Sequence[int]) -> list[RunSpec]:
        return make_specs(self.scenario, self.strategy, list(seeds), self.budget)

    def baseline_specs(self, seeds: Sequence[int]) -> list[RunSpec]:
        return make_specs(self.scenario, self.baseline_strategy, list(seeds), self.budget)

    def value(self, accuracy_matrix) -> float:
        """This row's metric of one run's accuracy matrix."""
        return MATRIX_METRICS[self.metric](accuracy_matrix)

    def target_text(self) -> str:
        tol = f"{self.tolerance:.3g}"
        prefix = "baseline + " if self.versus_baseline else ""
        if self.check == "at_least":
            return f"{prefix}≥ {self.target - self.tolerance:.3f}"
        return f"{prefix}{self.target:.3f} ± {tol}"

    def reached(self, mean: float) -> bool:
        """``within``: the mean over seeds is within ``tolerance`` of the target on either
        side; ``at_least``: it is no more than ``tolerance`` below it (sources that publish a
        figure to reach, such as continual-learning-baselines, pass anything above)."""
        if not math.isfinite(mean):
            return False
        # a hair of slack so that a figure exactly on the edge is not lost to float rounding
        slack = 1e-12
        if self.check == "at_least":
            return mean >= self.target - self.tolerance - slack
        return abs(mean - self.target) <= self.tolerance + slack


def _key(f: dataclasses.Field) -> str:
    return f.metadata.get("key", f.name)


_REQUIRED = {_key(f) for f in dataclasses.fields(ReferenceTarget)
             if f.default is dataclasses.MISSING}
_OPTIONAL = {_key(f) for f in dataclasses.fields(ReferenceTarget)} - _REQUIRED
_TYPES: dict[str, tuple[type, ...]] = {
    "target": (int, float), "cpu_minutes": (int, float), "sd": (int, float),
    "tolerance": (int, float), "baseline_target": (int, float), "versus_baseline": (bool,),
    "allowances": (list,), "baseline": (str,),
}


def _check_type(key: str, value: Any, where: str) -> None:
    kinds = _TYPES.get(key, (str,))
    if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
        what = {int: "a number", bool: "true or false", list: "a list", str: "text"}[kinds[0]]
        raise ConfigError(f"{where}: {key} must be {what}, got {value!r}")


def _allowances(value: list, where: str) -> tuple[Allowance, ...]:
    out = []
    for i, item in enumerate(value):
        if (not isinstance(item, dict) or set(item) != {"points", "why"}
                or isinstance(item["points"], bool)
                or not isinstance(item["points"], (int, float)) or item["points"] < 0
                or not isinstance(item["why"], str) or not item["why"].strip()):
            raise ConfigError(f"{where}: allowance {i + 1} must be {{points = >= 0, why = "
                              "\"the protocol difference it covers\"}}",
                              hint="a tolerance is never wider without its reason")
        out.append(Allowance(float(item["points"]), item["why"]))
    return tuple(out)


def _row(item: object, where: str) -> ReferenceTarget:
    if not isinstance(item, dict):
        raise ConfigError(f"{where}: each [[target]] must be a table")
    missing = sorted(_REQUIRED - item.keys())
    unknown = sorted(item.keys() - _REQUIRED - _OPTIONAL)
    if missing or unknown:
        raise ConfigError(f"{where}: " + "; ".join(
            part for part in (missing and f"missing {', '.join(missing)}",
                              unknown and f"unknown keys {', '.join(unknown)}") if part))
    for key, value in item.items():
        _check_type(key, value, where)
    if ("sd" in item) == ("tolerance" in item):
        raise ConfigError(f"{where}: give exactly one of sd (the source's spread; tolerance = "
                          f"{SPREAD_WIDTH} sd + allowances) or tolerance (set by the source "
                          "or the claim)")
    if "tolerance" in item and item.get("allowances"):
        raise ConfigError(f"{where}: allowances widen an sd-based tolerance only",
                          hint="with tolerance = ..., write the reason in differences")
    values = {f.name: item[_key(f)] for f in dataclasses.fields(ReferenceTarget)
              if _key(f) in item}
    values["allowances"] = _allowances(item.get("allowances", []), where)
    row = ReferenceTarget(**values)
    if row.metric not in PROBES:
        try:
            matrix_metric(row.metric)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc.message}",
                              hint=f"{exc.hint}; or a probe: {', '.join(PROBES)}") from None
    if row.check not in CHECKS:
        raise ConfigError(f"{where}: unknown check {row.check!r}",
                          hint=f"choose one of: {', '.join(CHECKS)}")
    if row.source_kind not in SOURCE_KINDS:
        raise ConfigError(f"{where}: unknown source_kind {row.source_kind!r}",
                          hint=f"choose one of: {', '.join(SOURCE_KINDS)}")
    try:
        get_budget(row.budget)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc.message}", hint=exc.hint) from None
    if row.sd is not None and row.sd < 0 or row.tolerance < 0:
        raise ConfigError(f"{where}: tolerance must be >= 0, got {row.tolerance}")
    if not row.source.strip():
        raise ConfigError(f"{where}: every target needs its source")
    if row.baseline_target is not None and not row.baseline_source.strip():
        raise ConfigError(f"{where}: baseline_target needs its baseline_source")
    if row.versus_baseline and row.source_kind != "claim":
        raise ConfigError(f"{where}: a margin over the baseline (versus_baseline) is ours, so "
                          "its source_kind is \"claim\"")
    return row


def read_table(path: str | Path | None, builtin: str) -> tuple[dict[str, Any], str]:
    """A TOML table of clbench's (``bench/<builtin>`` by default, else ``path``) and its name
    for messages; ConfigError when it is not valid TOML."""
    if path is None:
        text, origin = (resources.files("clbench") / builtin).read_text(), f"bench/{builtin}"
    else:
        text, origin = Path(path).read_text(), str(path)
    try:
        return tomllib.loads(text), origin
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{origin} is not valid TOML: {exc}") from None


def check_unique_ids(ids: Sequence[str], origin: str, what: str) -> None:
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ConfigError(f"{origin}: duplicate {what} ids {', '.join(duplicates)}")


def load_targets(path: str | Path | None = None) -> list[ReferenceTarget]:
    """The reference table (the built-in one by default); raises ConfigError naming the row."""
    doc, origin = read_table(path, "reference.toml")
    rows = [_row(item, f"{origin} target {i + 1}") for i, item in
            enumerate(doc.get("target", []))]
    check_unique_ids([r.id for r in rows], origin, "target")
    return rows
