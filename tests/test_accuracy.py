"""The accuracy tier: each row of ``bench/reference.toml`` run at its budget, its metric's mean
over seeds compared with the published figure (``pytest -m accuracy``; off by default).

Results go into the committed reference store, ``reference/results/`` (probes into
``reference/probes/``): the tier resumes from it and runs only what is not there, a row over
``ONE_SEED_MINUTES`` one seed per group so that each finished seed is kept. Commit the store
after each row, then regenerate REPRODUCIBILITY.md (``python -m clbench.reproducibility``),
which judges the rows with the same :func:`clbench.reproducibility.outcome` as this tier.

Environment:
- ``CLBENCH_ACCURACY_REFERENCE``: another folder for results/ and probes/ (a scratch copy).
- ``CLBENCH_DEVICE``: ``auto`` (default), ``cpu`` or ``cuda``. Rows marked for a GPU are
  skipped on a CPU unless their results are stored already (then they are checked).
- ``CLBENCH_GPU_ROWS_ON_CPU=1``: run those rows on the CPU anyway (hours each; a seed per
  group, so a row resumes across sittings).

The default run checks the table itself: every row resolves to valid run specs, so a typo
fails in CI, not hours into the tier; every native strategy has a row that tells it from
fine-tuning; and REPRODUCIBILITY.md is what the command writes from the committed store.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path

import pytest
import torch

from clbench import api, reproducibility
from clbench.errors import ConfigError
from clbench.experience import Experience
from clbench.params import parse_named
from clbench.reference import FINE_TUNING, ReferenceTarget, load_targets
from clbench.registry import STRATEGIES
from clbench.reproducibility import MET, SEEDS, StoreIndex, outcome, write_probe

REPO = Path(__file__).resolve().parents[1]
TARGETS = load_targets()
DEVICE = os.environ.get("CLBENCH_DEVICE", "auto")
GPU = DEVICE != "cpu" and torch.cuda.is_available()
GPU_ROWS_ON_CPU = os.environ.get("CLBENCH_GPU_ROWS_ON_CPU", "") == "1"


def test_reference_table_is_runnable():
    for row in TARGETS:
        specs = row.specs(SEEDS)  # raises ConfigError on an unknown name or parameter
        assert len(specs) == len(SEEDS)
        assert len(row.baseline_specs(SEEDS)) == len(SEEDS)
        assert 0 <= row.target <= 1 or row.metric in ("bwt", "fwt") or row.versus_baseline, \
            row.id


# Strategies whose figure is the reference point, not a method to tell from it.
REFERENCE_POINTS = {FINE_TUNING, "joint"}


def test_every_native_strategy_has_a_discriminating_row():
    """A row that a do-nothing method (fine-tuning, or the method with its mechanism off)
    also passes is no evidence for the method: each native strategy needs at least one row
    whose window leaves out the published fine-tuning figure, that asks for a margin over
    its baseline, or whose measured baseline the tier requires to miss it."""
    # clbench's own, by their registered names (not a test's plugin, not a module:Class alias)
    native = {name for name, cls in STRATEGIES.items()
              if cls.__module__.startswith("clbench.strategies.") and ":" not in name
              and not name.startswith("avalanche.")}
    covered = {row.strategy_name for row in TARGETS if row.discrimination}
    missing = sorted(native - REFERENCE_POINTS - covered)
    assert not missing, f"no discriminating row for {', '.join(missing)}"


def test_reproducibility_md_is_generated_from_the_committed_store():
    """No figure in REPRODUCIBILITY.md is typed by hand: it is exactly what
    ``python -m clbench.reproducibility`` writes from the table and the committed store."""
    expected = reproducibility.generate(reference=REPO / "reference")
    assert (REPO / "REPRODUCIBILITY.md").read_text() == expected, (
        "REPRODUCIBILITY.md is out of date: run `python -m clbench.reproducibility`")


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    return Path(os.environ.get("CLBENCH_ACCURACY_REFERENCE", REPO / "reference"))


PROBE_INPUTS = 1000  # test inputs per task on which a widening's change of outputs is measured


def widening_output_change(scenario: str, strategy: str, budget: str, data_dir) -> list[float]:
    """Per seed: the largest relative change of the network's outputs across any widening,
    ``||f_after(X) - f_before(X)|| / ||f_before(X)||`` (Frobenius norms of the logits on the
    first ``PROBE_INPUTS`` test inputs of every task), each measured just before and after the
    ``grow()`` that the strategy's training step makes before each task from the 2nd on (a
    run's own widenings). 0: the widened network computes the same function."""
    trained, data = api.prepare(scenario, strategy, SEEDS, budget, DEVICE, data_dir,
                                download=False)
    inputs = []
    for test in data.test:
        index = torch.arange(min(PROBE_INPUTS, len(test)), device=test.rows.device)
        x, _, t = test.batch(index.expand(test.members, -1))
        inputs.append((x, t if data.info.task_id_at_test else None))
    grow, changes = trained.grow, [torch.zeros(len(SEEDS))]

    def outputs() -> torch.Tensor:
        with torch.no_grad():
            return torch.cat([trained.predict(x, t) for x, t in inputs], dim=1).flatten(1)

    def measured_grow():
        before = outputs()
        grow()
        after = outputs()
        changes.append(((after - before).norm(dim=1) / before.norm(dim=1)).cpu())

    trained.grow = measured_grow
    for t in range(data.info.n_tasks - 1):
        trained.train(Experience(data.info.tasks[t], data.train[t]))
    measured_grow()  # the widening before the last task (its training adds nothing here)
    return torch.stack(changes).amax(0).tolist()


EVAL_EVERY = 25  # training steps between the accuracy measurements of the acceleration probe


def _accuracy_curve(strategy, data, epochs: int) -> list[torch.Tensor]:
    """Train ``strategy`` on the scenario's first task for ``epochs`` epochs (one optimiser, as
    any task trains); its test accuracy on that task, ``[S]``, before the first step, every
    ``EVAL_EVERY`` steps, and at the end."""
    from clbench.app.runner import evaluate

    curve, step, count = [], strategy.training_step, 0

    def measured_step(batch, i, prepared):
        nonlocal count
        if count % EVAL_EVERY == 0:  # the network as the previous steps left it
            curve.append(evaluate(strategy, data.info, data.test[:1])[0][:, 0])
        count += 1
        return step(batch, i, prepared)

    strategy.training_step = measured_step  # an instance attribute over the class's method
    try:
        strategy.fit(data.train[0], epochs=epochs)
    finally:
        del strategy.training_step
    curve.append(evaluate(strategy, data.info, data.test[:1])[0][:, 0])
    return curve


def net2net_acceleration(scenario: str, strategy: str, budget: str, data_dir) -> list[float]:
    """Per seed: Chen et al. 2016's acceleration claim (Sec. 4.2) on the scenario's first task.
    A teacher of ``initial_width`` units trains for the budget's epochs; it is widened by the
    strategy's ``grow()`` and the student trains for as long again. A network of the student's
    width trains from scratch for the same number of steps as the student. The value is the
    number of steps (in units of ``EVAL_EVERY``) the student needs to reach the accuracy the
    scratch network ends with, over the number the scratch network needs: below 1, the student
    gets there in fewer steps.
    The student's first measurement (just after widening) is the teacher's accuracy, since the
    widening preserves the function; it continues from there instead of starting over."""
    teacher, data = api.prepare(scenario, strategy, SEEDS, budget, DEVICE, data_dir,
                                download=False)
    epochs = teacher.params.epochs
    teacher.fit(data.train[0])
    teacher.grow()
    student_curve = _accuracy_curve(teacher, data, epochs)
    wide = teacher.net.hidden[0].out_features
    name, params = parse_named(strategy)
    scratch_strategy = f"{name}:" + ",".join(
        f"{k}={v}" for k, v in {**params, "initial_width": wide}.items())
    scratch, _ = api.prepare(scenario, scratch_strategy, SEEDS, budget, DEVICE, data_dir,
                             download=False)
    scratch_curve = _accuracy_curve(scratch, data, epochs)
    student, fresh = torch.stack(student_curve), torch.stack(scratch_curve)  # [points, S]
    goal = fresh[-1]
    ratios = []
    for s in range(len(SEEDS)):
        reached_student = (student[:, s] >= goal[s]).nonzero()
        reached_fresh = int((fresh[:, s] >= goal[s]).nonzero()[0])
        ratios.append(math.inf if len(reached_student) == 0
                      else int(reached_student[0]) / max(reached_fresh, 1))
    return ratios


PROBE_FUNCTIONS = {"widening_output_change": widening_output_change,
                   "net2net_acceleration": net2net_acceleration}


def _measure_probe(row: ReferenceTarget, reference: Path, data_dir) -> None:
    probe = PROBE_FUNCTIONS[row.metric]
    device = "cpu" if not GPU else torch.cuda.get_device_name()
    values = probe(row.scenario, row.strategy, row.budget, data_dir)
    base = probe(row.scenario, row.baseline_strategy, row.budget, data_dir) if row.baseline \
        else []
    write_probe(reference / "probes", row, row.specs(SEEDS), values, row.baseline_specs(SEEDS),
                base, device)


@pytest.mark.accuracy
@pytest.mark.parametrize("row", TARGETS, ids=[t.id for t in TARGETS])
def test_reaches_published_figure(row: ReferenceTarget, reference_dir, data_dir):
    results, probes = reference_dir / "results", reference_dir / "probes"
    before = outcome(row, StoreIndex.load(results), probes, gpu=GPU)
    if row.needs_gpu and not GPU and not GPU_ROWS_ON_CPU and not before.values:
        pytest.skip(f"{row.id}: not run here (gpu): about {row.cpu_minutes:g} CPU minutes "
                    "(CLBENCH_GPU_ROWS_ON_CPU=1 runs it anyway)")
    if not before.values:
        if row.is_probe:
            _measure_probe(row, reference_dir, data_dir)
        else:
            for specs in (row.specs(SEEDS), row.baseline_specs(SEEDS)):
                run = api.run(specs, results=results, data_dir=data_dir, download=False,
                              device=DEVICE, group_size=row.seeds_per_group)
                assert not run.not_run, run.not_run
    got = outcome(row, StoreIndex.load(results), probes, gpu=GPU)
    what = "margin over the baseline" if row.versus_baseline else row.metric
    message = (f"{row.id}: {got.status}: {what} {got.mean:.4f} (seeds {got.checked}), "
               f"target {row.target_text()} ({row.source}); baseline "
               f"{row.baseline_strategy} {got.baseline_mean:.4f}")
    if row.not_reproduced:
        assert got.status != MET, f"{row.id} is reached now: remove its not_reproduced note"
        pytest.xfail(f"{message}; known: {row.not_reproduced}")
    assert got.status == MET, message


# The stability gap (De Lange, van de Ven & Tuytelaars, ICLR 2023, Figure 1): replay at its
# defaults on class-incremental Split MNIST, evaluated every few optimiser steps. Task 1's
# accuracy drops far below its end-of-task value within the first steps of task 2, then
# recovers part of it by the end of task 2.
GAP_SCENARIO, GAP_STRATEGY, GAP_BUDGET = "split-mnist:setting=class", "replay", "default"
# Every optimiser step, as De Lange et al. evaluate: the dip lasts a few steps. Measured (seeds
# 0-2): task 1 0.999 -> 0.841 eight steps into task 2 -> 0.981; sampled every 5 steps, its
# lowest point was 0.923.
GAP_EVAL_EVERY, GAP_EVAL_SUBSET = 1, 1000
GAP_WINDOW = 50  # optimiser steps of task 2 in which the dip must show
GAP_DIP, GAP_RECOVERY = 0.10, 0.05  # the dip below the end of task 1; the recovery from it


def stability_gap_shape(steps, task_ends, accuracy, window: int = GAP_WINDOW
                        ) -> tuple[float, float, float]:
    """Task 1 on a continual-evaluation curve: (its accuracy at the end of task 1, its minimum
    within the first ``window`` steps of task 2, its accuracy at the end of task 2)."""
    at = {s: row[0] for s, row in zip(steps, accuracy)}
    end_1, end_2 = task_ends[0], task_ends[1]
    dip = min(a for s, a in at.items() if end_1 < s <= end_1 + window)
    return at[end_1], dip, at[end_2]


@pytest.mark.accuracy
def test_replay_shows_the_stability_gap(reference_dir, data_dir):
    """Stored in the reference store like a row's runs (the tier resumes from it); judged on
    the curve averaged over the seeds, as the paper's Figure 1 shows it."""
    from clbench.reports.tables import aggregate
    from clbench.results import ResultsStore

    specs, _ = api.plan(scenarios=[GAP_SCENARIO], strategies=[GAP_STRATEGY],
                        seeds=list(SEEDS), budget=GAP_BUDGET, eval_every=GAP_EVAL_EVERY,
                        eval_subset=GAP_EVAL_SUBSET)
    results = reference_dir / "results"
    run = api.run(specs, results=results, data_dir=data_dir, download=False, device=DEVICE)
    assert not run.not_run and run.failed == 0
    hashes = {s.hash for s in specs}
    runs = [r for r in ResultsStore(results).load().runs if r.spec_hash in hashes]
    assert len(runs) == len(SEEDS)
    [table] = aggregate(runs).scenarios
    curve = table.cells[0].mean_curve
    assert curve is not None and curve.n == len(SEEDS)
    end_1, dip, end_2 = stability_gap_shape(curve.steps, curve.task_ends, curve.accuracy)
    message = (f"task 1: {end_1:.3f} at the end of task 1, {dip:.3f} at least in the first "
               f"{GAP_WINDOW} steps of task 2, {end_2:.3f} at the end of task 2")
    assert end_1 - dip > GAP_DIP, message
    assert end_2 - dip >= GAP_RECOVERY, message


def test_the_stability_gap_shape_reads_task_1_on_the_curve():
    steps, ends = [0, 10, 20, 30, 40, 50, 60, 70], [20, 70]
    acc = [[0.1, None], [0.8, None], [0.95, 0.1], [0.6, 0.5], [0.8, 0.7], [0.85, 0.8],
           [0.3, 0.9], [0.9, 0.95]]
    # the dip within 20 steps of task 2's start (steps 30, 40) is 0.6; at step 60 is outside
    assert stability_gap_shape(steps, ends, acc, window=20) == (0.95, 0.6, 0.9)
    assert stability_gap_shape(steps, ends, acc, window=50) == (0.95, 0.3, 0.9)


ROW = """
[[target]]
id = "x"
scenario = "split-digits"
strategy = "naive"
budget = "smoke"
metric = "acc"
target = 0.5
tolerance = 0.1
check = "within"
source = "a paper"
source_kind = "suite-target"
differences = "none"
cpu_minutes = 1
"""
SD = '\nsd = 0.02\nallowances = [{points = 0.01, why = "inputs"}]\n'


@pytest.mark.parametrize("edit,message", [
    (("metric = \"acc\"", "metric = \"accuracy\""), "unknown metric 'accuracy'"),
    (("check = \"within\"", "check = \"above\""), "unknown check 'above'"),
    (("cpu_minutes = 1", "cpu_minutes = 1\ncolour = 2"), "unknown keys colour"),
    (("source = \"a paper\"\n", ""), "missing source"),
    (("tolerance = 0.1", "tolerance = -0.1"), "tolerance must be >= 0"),
    (("budget = \"smoke\"", "budget = \"huge\""), "unknown budget 'huge'"),
    (("source_kind = \"suite-target\"", "source_kind = \"blog\""), "unknown source_kind"),
    (("tolerance = 0.1", ""), "exactly one of sd"),
    (("tolerance = 0.1", "tolerance = 0.1" + SD), "exactly one of sd"),
    (("tolerance = 0.1", SD.replace('"inputs"', '""')), "allowance 1 must be"),
    (("tolerance = 0.1", "sd = 0.02\nallowances = [{points = 0.01}]"), "allowance 1 must be"),
    (("target = 0.5", "target = \"0.5\""), "target must be a number"),
    (("check = \"within\"", "check = \"within\"\nversus_baseline = true"),
     "its source_kind is \"claim\""),
    (("check = \"within\"", "check = \"within\"\nbaseline_target = 0.2"),
     "needs its baseline_source"),
])
def test_bad_reference_rows_are_named(tmp_path, edit, message):
    path = tmp_path / "reference.toml"
    path.write_text(ROW.replace(*edit))
    with pytest.raises(ConfigError, match=message) as info:
        load_targets(path)
    assert "target 1" in str(info.value)


def test_duplicate_ids_and_checks(tmp_path):
    path = tmp_path / "reference.toml"
    path.write_text(ROW + ROW)
    with pytest.raises(ConfigError, match="duplicate target ids x"):
        load_targets(path)
    path.write_text(ROW)
    (row,) = load_targets(path)
    assert row.reached(0.45) and row.reached(0.6) and not row.reached(0.39)
    assert not row.reached(float("nan"))
    at_least = dataclasses.replace(row, check="at_least")
    assert at_least.reached(0.41) and at_least.reached(0.99) and not at_least.reached(0.39)


def test_tolerance_is_the_spread_plus_written_allowances_and_discrimination(tmp_path):
    path = tmp_path / "reference.toml"
    path.write_text(ROW.replace("tolerance = 0.1", SD).replace("suite-target", "paper"))
    (row,) = load_targets(path)
    assert row.tolerance == pytest.approx(3 * 0.02 + 0.01)
    assert row.discrimination == ""  # no baseline named or published
    # the window 0.5 +- 0.07 leaves out a published fine-tuning figure of 0.4, not one of 0.45
    far = dataclasses.replace(row, baseline_target=0.4, baseline_source="x")
    near = dataclasses.replace(row, baseline_target=0.45, baseline_source="x")
    assert far.discrimination == "published" and near.discrimination == ""
    assert dataclasses.replace(row, baseline="naive:lr=0.1").discrimination == "measured"
    claim = dataclasses.replace(row, versus_baseline=True, target=0.05, tolerance_given=0.0,
                                sd=None, allowances=(), source_kind="claim")
    assert claim.discrimination == "margin"
    assert dataclasses.replace(claim, target=0.0).discrimination == ""
    # the baseline runs with the row's own training parameters
    assert dataclasses.replace(row, strategy="ewc:lr=0.1,ewc_lambda=5").baseline_strategy == \
        "naive:lr=0.1"


def test_rows_are_judged_from_current_versions_only(tmp_path, monkeypatch):
    """A stored run of the row at another strategy version is listed stale, never counted."""
    path = tmp_path / "reference.toml"
    path.write_text(ROW)
    (row,) = load_targets(path)
    results, probes = tmp_path / "results", tmp_path / "probes"
    api.run(row.specs([0]), results=results, device="cpu", download=False)
    current = outcome(row, StoreIndex.load(results), probes, seeds=[0])
    assert current.status in (MET, reproducibility.MISSED) and len(current.values) == 1
    assert current.values == current.baseline_values  # naive against naive: one run
    assert not current.stale
    monkeypatch.setattr(STRATEGIES.get("naive"), "version", "999")  # the code changed
    later = outcome(row, StoreIndex.load(results), probes, seeds=[0])
    assert later.status == reproducibility.NOT_RUN and not later.values
    assert later.stale and "naive v" in later.stale[0]
    text = reproducibility.render([row], [later])
    assert "stale (not counted)" in text and "run at the current versions: 0" in text
