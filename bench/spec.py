"""Run specs: what one run is, frozen, with a stable hash.

A spec names the scenario and strategy with their *resolved* parameters (defaults filled in),
the versions of the scenario, the strategy and the backbone (:mod:`clbench.versions`), the seed
and the budget. Its hash is the SHA-256 of its canonical JSON, so it is the same on every machine
and Python version, and changes whenever anything that defines the experiment changes: new code
at a new version is a new run, never a stored result of the old code.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from clbench.budget import get_budget
from clbench.errors import ConfigError, UnsupportedError
from clbench.params import parse_named, resolve
from clbench.registry import BACKBONES, SCENARIOS, STRATEGIES
from clbench.versions import version_of


def _frozen(params: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(params.items()))


@dataclasses.dataclass(frozen=True, kw_only=True)
class RunSpec:
    scenario: str
    scenario_version: str
    scenario_params: tuple[tuple[str, Any], ...]
    strategy: str
    strategy_version: str
    strategy_params: tuple[tuple[str, Any], ...]
    backbone: str
    backbone_version: str
    seed: int
    budget: str
    # Fraction of every task's training data held out and evaluated on instead of the test
    # split (0: the test split). Tuning runs use it; reports keep the two splits apart.
    validation: float = 0.0
    # Train and evaluate on the scenario's first ``tasks`` tasks only (0: all of them): the
    # protocol of Chaudhry et al. 2019 (A-GEM), which tunes on a few tasks of the stream.
    tasks: int = 0
    # Continual evaluation (clbench.app.continual): every ``eval_every`` optimiser steps (0: off),
    # score every task seen so far and the next on a fixed, seeded subset of ``eval_subset``
    # samples per task (0: all of them). The accuracy matrix is the same either way.
    eval_every: int = 0
    eval_subset: int = 0

    @property
    def split(self) -> str:
        """What the accuracy matrix was measured on: ``"test"`` or ``"validation"``."""
        return "validation" if self.validation else "test"

    def to_json(self) -> dict[str, Any]:
        # A test-split spec has no split keys, so its hash is the one it had before the
        # validation split existed.
        split = {"split": "validation", "validation": self.validation} if self.validation \
            else {}
        first = {"tasks": self.tasks} if self.tasks else {}  # likewise
        continual = {"eval_every": self.eval_every, "eval_subset": self.eval_subset} \
            if self.eval_every else {}  # likewise
        return {
            **split,
            **first,
            **continual,
            "scenario": self.scenario,
            "scenario_version": self.scenario_version,
            "scenario_params": dict(self.scenario_params),
            "strategy": self.strategy,
            "strategy_version": self.strategy_version,
            "strategy_params": dict(self.strategy_params),
            "backbone": self.backbone,
            "backbone_version": self.backbone_version,
            "seed": self.seed,
            "budget": self.budget,
        }

    @staticmethod
    def from_json(doc: Mapping[str, Any]) -> RunSpec:
        """The spec of a document that passed :func:`clbench.schema.validate`."""
        return RunSpec(
            scenario=doc["scenario"],
            scenario_version=str(doc["scenario_version"]),
            scenario_params=_frozen(doc["scenario_params"]),
            strategy=doc["strategy"],
            strategy_version=str(doc["strategy_version"]),
            strategy_params=_frozen(doc["strategy_params"]),
            backbone=doc["backbone"],
            backbone_version=str(doc["backbone_version"]),
            seed=int(doc["seed"]),
            budget=doc["budget"],
            validation=float(doc.get("validation", 0.0)),
            tasks=int(doc.get("tasks", 0)),
            eval_every=int(doc.get("eval_every", 0)),
            eval_subset=int(doc.get("eval_subset", 0)),
        )

    @property
    def hash(self) -> str:
        canonical = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:20]

    def group_key(self) -> RunSpec:
        """Specs that differ only in seed share this key."""
        return dataclasses.replace(self, seed=0)

    def label(self) -> str:
        first = f", first {self.tasks} tasks" if self.tasks else ""
        every = f", evaluated every {self.eval_every} steps" if self.eval_every else ""
        return (f"{self.strategy} on {self.scenario} (seed {self.seed}, {self.budget}{first}"
                f"{every})")


def make_scenario(name: str, params: Mapping[str, Any]):
    cls = SCENARIOS.get(name)
    return cls(resolve(cls.Params, [params], f"scenario {name!r}"))


def make_specs(
    scenario: str | tuple[str, Mapping[str, Any]],
    strategy: str | tuple[str, Mapping[str, Any]],
    seeds: list[int],
    budget: str,
    validation: float = 0.0,
    tasks: int = 0,
) -> list[RunSpec]:
    """Specs for one scenario x strategy over ``seeds``; ``scenario`` and ``strategy`` are
    ``"name:key=value,..."`` strings or ``(name, params)`` pairs; ``validation`` > 0 evaluates
    on that fraction of each task's training data instead of the test split; ``tasks`` > 0
    keeps the scenario's first ``tasks`` tasks only. Raises
    ConfigError for unknown names, bad parameters, or a strategy that is not defined for the
    scenario."""
    get_budget(budget)
    validation = check_validation(validation)
    sc_name, sc_params = parse_named(scenario) if isinstance(scenario, str) else scenario
    st_name, st_params = parse_named(strategy) if isinstance(strategy, str) else strategy
    sc = make_scenario(sc_name, sc_params)
    st_cls = STRATEGIES.get(st_name)
    resolved_st = st_cls.resolve_params(sc.name, budget, st_params)
    info = sc.info(seeds[0] if seeds else 0)
    tasks = check_tasks(tasks, info.n_tasks, sc.name)
    reason = st_cls.unsupported(info)
    if reason:
        raise UnsupportedError(f"cannot run {st_name!r} on {sc_name!r}: {reason}")
    parse_seeds(list(seeds))  # the same checks as on the command line
    common = dict(
        scenario=sc.name,
        scenario_version=version_of(type(sc)),
        scenario_params=_frozen(dataclasses.asdict(sc.params)),
        strategy=st_cls.name,
        strategy_version=version_of(st_cls),
        strategy_params=_frozen(dataclasses.asdict(resolved_st)),
        backbone=info.backbone,
        backbone_version=version_of(BACKBONES.get(info.backbone)),
        budget=budget,
        validation=validation,
        tasks=tasks,
    )
    return [RunSpec(**common, seed=seed) for seed in seeds]


def check_validation(fraction: Any) -> float:
    """The validation fraction as a float in [0, 0.5]; ConfigError otherwise."""
    hint = "give a fraction of each task's training data, e.g. 0.1 (0: evaluate on the test split)"
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)):
        raise ConfigError(f"validation must be a number, got {fraction!r}", hint=hint)
    fraction = float(fraction)
    if not 0.0 <= fraction <= 0.5:  # also rejects NaN
        raise ConfigError(f"validation must be between 0 and 0.5, got {fraction}", hint=hint)
    return fraction


def check_continual(eval_every: Any, eval_subset: Any) -> tuple[int, int]:
    """``(eval_every, eval_subset)`` as whole numbers >= 0, the subset only with an interval;
    ConfigError otherwise."""
    for name, value in (("eval-every", eval_every), ("eval-subset", eval_subset)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"--{name} must be a whole number >= 0, got {value!r}",
                              hint="e.g. --eval-every 10 --eval-subset 1000 (0: off / all)")
    if eval_subset and not eval_every:
        raise ConfigError("--eval-subset needs --eval-every",
                          hint="add --eval-every N (evaluate every N optimiser steps), or "
                          "leave --eval-subset out")
    return eval_every, eval_subset


def check_tasks(tasks: Any, n_tasks: int | None = None, scenario: str = "the scenario") -> int:
    """The number of leading tasks to keep, an int in [0, n_tasks] (0: all); ConfigError
    otherwise. A value equal to ``n_tasks`` is all of them: 0, so such a spec is the plain one."""
    hint = "give the number of leading tasks to keep, e.g. 3 (0: all tasks)"
    if isinstance(tasks, bool) or not isinstance(tasks, int):
        raise ConfigError(f"tasks must be a whole number, got {tasks!r}", hint=hint)
    if tasks < 0 or tasks == 1:
        raise ConfigError(f"tasks must be 0 or at least 2, got {tasks}",
                          hint="one task has no continual-learning metric; " + hint)
    if n_tasks is not None and tasks > n_tasks:
        raise ConfigError(f"tasks {tasks} is more than the {n_tasks} tasks of {scenario}",
                          hint=hint)
    return 0 if tasks == n_tasks else tasks


MAX_SEEDS = 10_000  # more seeds than any study runs: a typo such as 0-100000000, refused at once


def parse_seeds(text: str | int | list) -> list[int]:
    """``"0,1,2"``, ``"0-4"`` (inclusive), ``3`` or ``[0, 1]`` -> a list of seeds (at most
    :data:`MAX_SEEDS`, checked before any range is expanded)."""
    hint = "write seeds as 0,1,2 or 0-4"
    if isinstance(text, list):
        items = text
    elif isinstance(text, int) and not isinstance(text, bool):
        items = [text]
    elif isinstance(text, str):
        items = []
        for part in text.split(","):
            part = part.strip()
            if not part:
                continue
            lo, dash, hi = part.partition("-")
            try:
                low, high = (int(lo), int(hi)) if dash else (int(part), int(part))
            except ValueError:
                raise ConfigError(f"cannot read seeds {text!r}", hint=hint) from None
            if high < low:
                raise ConfigError(f"seed range {part!r} is empty (it ends before it starts)",
                                  hint="write a range as LOW-HIGH with LOW <= HIGH, e.g. 0-4")
            if high - low + 1 + len(items) > MAX_SEEDS:
                raise ConfigError(f"seeds {text!r} name more than {MAX_SEEDS:,} seeds",
                                  hint="give fewer seeds, e.g. 0-9")
            items.extend(range(low, high + 1))
    else:
        raise ConfigError(f"seeds must be a list of integers or a string such as '0-4', got "
                          f"{type(text).__name__}", hint=hint)
    if not items or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in items):
        raise ConfigError(f"seeds must be non-negative integers, got {text!r}", hint=hint)
    if len(items) > MAX_SEEDS:
        raise ConfigError(f"{len(items):,} seeds is more than {MAX_SEEDS:,}",
                          hint="give fewer seeds, e.g. 0-9")
    if max(items) >= 2**63:
        raise ConfigError(f"seed {max(items)} is too large", hint="seeds must be below 2**63")
    return list(dict.fromkeys(items))
