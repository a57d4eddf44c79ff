"""The result document: one run's raw observations, typed, versioned and checked.

A run is stored as one JSON document (:class:`clbench.results.ResultsStore`). This module owns
its shape, declared once: the dataclasses below are the document, and each field's metadata
(:func:`clbench.records.key`) says which document key holds it and how its value is checked,
read and written.
:meth:`RunResult.to_json` (writing), :func:`validate` (the key and value checks) and
:func:`parse` (reading, after :mod:`clbench.migrations` brought an older document up to date)
are all derived from them; the few rules that span several fields are written out in
``_check_rules``. A new field is one line: a field with its :func:`key`.

Schema 4 (``SCHEMA_VERSION``), key by key (docs/results.md has the table):

* ``schema_version`` (4), ``spec`` (:class:`clbench.spec.RunSpec` as JSON) and ``spec_hash``
  (``RunSpec.hash`` of that spec, the file name);
* ``status`` (ok, diverged, failed), ``error`` (type, message, traceback; set exactly when
  failed), ``diverged_after_task`` (the row from which a diverged member has no accuracies);
* ``identity``: clbench, git, Python, PyTorch, CUDA, platform, CPU and device of the run, and
  optional keys (documents written before them lack them: "not recorded");
* ``scenario``: the scenario as run (params, setting, input shape, outputs, primary metric,
  tasks and their classes) and ``data``, the source of its data;
* ``accuracy_matrix``: T + 1 rows of T accuracies in [0, 1] or null (not measured); row 0 is
  the untrained model, row i the model after task i;
* ``param_counts`` (T + 1), ``train_time_s`` (T), ``eval_time_s`` (T + 1), ``setup_time_s``,
  ``wall_time_s``, ``peak_host_memory_bytes`` with ``peak_host_memory_scope`` (group or
  process), ``peak_device_memory_bytes``; ``group`` (member, seeds, batched), and
  ``started_at`` / ``finished_at`` (ISO 8601);
* ``curve``: the continual evaluation of a run with ``spec.eval_every`` (steps, task ends, the
  accuracy on each task at each step), else null;
* ``migrated_from``: only in a document read from an older schema, that schema's version.

Nothing derivable is stored: the scenario's name, version and backbone, the hyperparameters
(all in the spec), the number of tasks and the group's size are properties. Every other key is
present; null means "not measured" or, in a migrated document, "not recorded by that schema".
Numbers are never booleans. This module imports neither torch nor any scenario or strategy:
reports read results without them.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from clbench.errors import ResultsError
from clbench.metrics import MATRIX_METRICS
from clbench.migrations import MIGRATIONS, migrate
from clbench.records import (
    Bool,
    Int,
    Invalid,
    JsonObject,
    Keys,
    ListOf,
    Seconds,
    Stored,
    Text,
    Timestamp,
    UnknownKeys,
    Value,
    at,
    fail,
    is_int,
    is_number,
    key,
    record_of,
    show,
)
from clbench.spec import RunSpec

SCHEMA_VERSION = 4
STATUSES = ("ok", "diverged", "failed")
SETTINGS = ("class", "task", "domain")
HOST_MEMORY_SCOPES = ("group", "process")  # what peak_host_memory_bytes covers


# ---------------------------------------------------------------------------------------------
# The values only the result document has


class Accuracy(Value):
    nullable = True
    expected = "an accuracy in [0, 1]"

    def accepts(self, value: Any) -> bool:
        return is_number(value) and 0 <= value <= 1


class Fraction(Value):
    expected = "a fraction in (0, 0.5]"

    def accepts(self, value: Any) -> bool:
        return is_number(value) and 0 < value <= 0.5


class SchemaVersion(Value):
    """An older schema version this clbench migrates from."""

    @property
    def expected(self) -> str:
        return f"one of {', '.join(map(str, MIGRATIONS))}"

    def accepts(self, value: Any) -> bool:
        return is_int(value) and value in MIGRATIONS


class SpecValue(Keys):
    """``spec``: a :class:`clbench.spec.RunSpec` as JSON. A new optional spec key is one line
    in ``optional``."""

    def __init__(self) -> None:
        super().__init__(
            required={"scenario": Text(non_empty=True), "scenario_version": Text(non_empty=True),
                      "scenario_params": JsonObject(), "strategy": Text(non_empty=True),
                      "strategy_version": Text(non_empty=True),
                      "strategy_params": JsonObject(), "backbone": Text(non_empty=True),
                      "backbone_version": Text(non_empty=True), "seed": Int(),
                      "budget": Text(non_empty=True)},
            # a validation-split run: both keys, together (a test-split spec has neither);
            # a run on the scenario's first k tasks: tasks (absent: all of them)
            # a run with continual evaluation: eval_every and eval_subset, together
            optional={"split": Text(choices=("validation",)), "validation": Fraction(),
                      "tasks": Int(minimum=2), "eval_every": Int(minimum=1),
                      "eval_subset": Int()})

    def check(self, value: Any, path: str, also: tuple[str, ...] = ()) -> None:
        if isinstance(value, dict) and ("split" in value) != ("validation" in value):
            if "split" not in value:
                fail(at(path, "split"), '"validation" (a test-split spec has no split key)',
                     None)
            fail(at(path, "validation"), "a fraction in (0, 0.5]", None)
        if isinstance(value, dict) and ("eval_every" in value) != ("eval_subset" in value):
            missing = "eval_subset" if "eval_every" in value else "eval_every"
            fail(at(path, missing), "present with its partner (a spec without continual "
                 "evaluation has neither eval_every nor eval_subset)", None)
        super().check(value, path, also)

    def load(self, value: Any) -> RunSpec:
        return RunSpec.from_json(value)

    def dump(self, value: RunSpec) -> dict[str, Any]:
        return value.to_json()


# ---------------------------------------------------------------------------------------------
# The document as Python values


@dataclasses.dataclass(frozen=True, kw_only=True)
class RunError(Stored):
    """The exception a failed run raised."""

    type: str = key(Text())
    message: str = key(Text())
    traceback: str = key(Text())


@dataclasses.dataclass(frozen=True, kw_only=True)
class GitState(Stored):
    sha: str | None = key(Text(nullable=True))  # None outside a git checkout
    dirty: bool | None = key(Bool(nullable=True))


_TEXT_OR_NULL = Text(nullable=True)
_COUNT_OR_NULL = Int(minimum=1, nullable=True)


@dataclasses.dataclass(frozen=True, kw_only=True)
class RunIdentity(Stored):
    """Which code, on which software and hardware, produced the result."""

    clbench_version: str | None = key(_TEXT_OR_NULL)
    git: GitState = key(record_of(GitState))
    python: str | None = key(_TEXT_OR_NULL)
    torch: str | None = key(_TEXT_OR_NULL)
    cuda: str | None = key(_TEXT_OR_NULL)  # None off CUDA
    platform: str | None = key(_TEXT_OR_NULL)
    cpu: str | None = key(_TEXT_OR_NULL)
    cpu_count: int | None = key(_COUNT_OR_NULL)
    torch_threads: int | None = key(_COUNT_OR_NULL)
    device: str | None = key(_TEXT_OR_NULL)
    device_name: str | None = key(_TEXT_OR_NULL)
    argv: tuple[str, ...] | None = key(ListOf(Text(), what="a list of strings", nullable=True))
    # Optional keys, written when known (documents written before them lack them: None, "not
    # recorded"): where it ran, the machine's host name and the executor (local, ray).
    host: str | None = key(Text(non_empty=True), optional=True)
    executor: str | None = key(Text(non_empty=True), optional=True)
    # The process's one-time set-up (clbench.app.warmup) before this group, kept out of its times.
    warmup_s: float | None = key(Seconds(), optional=True)


_CLASS_IDS = ListOf(Int(), what="a list of class ids")


@dataclasses.dataclass(frozen=True, kw_only=True)
class TaskRecord(Stored):
    classes: tuple[int, ...] = key(_CLASS_IDS)  # output units of the task's labels
    source_classes: tuple[int, ...] | None = key(  # the dataset's class ids
        ListOf(Int(), what="a list of class ids", nullable=True))


@dataclasses.dataclass(frozen=True, kw_only=True)
class ScenarioRecord(Stored):
    """The scenario as run (``ScenarioInfo``) and where its data came from. Its name, version
    and backbone are the spec's."""

    params: dict[str, Any] = key(JsonObject())
    setting: str = key(Text(choices=SETTINGS))
    input_shape: tuple[int, ...] | None = key(
        ListOf(Int(minimum=1), what="a list of positive integers", nullable=True,
               empty="must be a list of positive integers or null, got []"))
    n_outputs: int | None = key(_COUNT_OR_NULL)
    primary_metric: str = key(Text(choices=tuple(MATRIX_METRICS)))
    tasks: tuple[TaskRecord, ...] = key(ListOf(record_of(TaskRecord),
                                               empty="must list at least one task"))
    # the data source as the scenario reports it (layout, sizes, subset)
    data: dict[str, Any] = key(JsonObject(known={"subset": Bool()}))

    @property
    def n_tasks(self) -> int:
        return len(self.tasks)

    @property
    def data_subset(self) -> bool:
        """True when the run used a subset of the dataset (a different experiment)."""
        return self.data.get("subset", False) is True


@dataclasses.dataclass(frozen=True, kw_only=True)
class GroupRecord(Stored):
    """The seed group the run trained in (a batched strategy trains them as one model)."""

    member: int = key(Int())  # this run's position in ``seeds``
    seeds: tuple[int, ...] = key(ListOf(Int()))
    batched: bool = key(Bool())

    @property
    def size(self) -> int:
        return len(self.seeds)


_TIMES = ListOf(Seconds())


@dataclasses.dataclass(frozen=True, kw_only=True)
class RunTimes:
    """Seconds; each member of a group records the group's times."""

    train_s: tuple[float | None, ...] = key(_TIMES, name="train_time_s")  # one per task
    eval_s: tuple[float | None, ...] = key(_TIMES, name="eval_time_s")  # one per matrix row
    setup_s: float | None = key(Seconds(), name="setup_time_s")
    wall_s: float | None = key(Seconds(), name="wall_time_s")


@dataclasses.dataclass(frozen=True, kw_only=True)
class PeakMemory:
    host_bytes: int | None = key(Int(nullable=True), name="peak_host_memory_bytes")
    # "group" (peak reset for the group) or "process"
    host_scope: str | None = key(Text(choices=HOST_MEMORY_SCOPES, nullable=True),
                                 name="peak_host_memory_scope")
    device_bytes: int | None = key(Int(nullable=True),  # None off CUDA
                                   name="peak_device_memory_bytes")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Curve(Stored):
    """Continual evaluation (``spec.eval_every``): accuracy on each task during training, on a
    fixed subset of each task's evaluation split, at ``steps`` (optimiser steps since the run
    began: step 0, every ``eval_every`` steps, and each task's end)."""

    steps: tuple[int, ...] = key(ListOf(Int(), what="a list of step indices"))
    # the step after which each task's training ended (one per task trained)
    task_ends: tuple[int, ...] = key(ListOf(Int(), what="a list of step indices"))
    # per point, T accuracies; null where not evaluated (tasks past the next one) or diverged
    accuracy: tuple[tuple[float | None, ...], ...] = key(ListOf(ListOf(Accuracy())))
    eval_s: float | None = key(Seconds())  # the group's time spent on continual evaluation


@dataclasses.dataclass(frozen=True, kw_only=True)
class RunResult(Stored):
    """One run: its spec, outcome and every raw observation. Metrics are computed from it at
    report time (:func:`clbench.metrics.run_metrics`), never stored."""

    spec: RunSpec = key(SpecValue())
    status: str = key(Text(choices=STATUSES))
    error: RunError | None = key(record_of(RunError, nullable=True))
    diverged_after_task: int | None = key(Int(nullable=True))
    identity: RunIdentity = key(record_of(RunIdentity))
    scenario: ScenarioRecord = key(record_of(ScenarioRecord))
    accuracy_matrix: tuple[tuple[float | None, ...], ...] = key(ListOf(ListOf(Accuracy())))
    param_counts: tuple[int | None, ...] = key(ListOf(Int(nullable=True)))
    times: RunTimes = key(record_of(RunTimes), flatten=True)
    memory: PeakMemory = key(record_of(PeakMemory), flatten=True)
    group: GroupRecord | None = key(record_of(GroupRecord, nullable=True))
    started_at: str | None = key(Timestamp())
    finished_at: str | None = key(Timestamp())
    # null: no continual evaluation
    curve: Curve | None = key(record_of(Curve, nullable=True), default=None)
    # Read from an older schema: that schema's version (a migrated document stays readable).
    migrated_from: int | None = key(SchemaVersion(), optional=True)

    @property
    def spec_hash(self) -> str:
        return self.spec.hash

    @property
    def n_tasks(self) -> int:
        return len(self.accuracy_matrix[0])

    @property
    def hyperparameters(self) -> dict[str, dict[str, Any]]:
        return {"strategy": dict(self.spec.strategy_params),
                "scenario": dict(self.spec.scenario_params)}

    def to_json(self) -> dict[str, Any]:
        """The result document (schema ``SCHEMA_VERSION``), as stored."""
        return {"schema_version": SCHEMA_VERSION, "spec_hash": self.spec_hash,
                **super().to_json()}


# ---------------------------------------------------------------------------------------------
# Checking: every key and value from the records, then the rules that span several fields


def _check_rules(doc: dict[str, Any]) -> None:
    """The rules no single field states: the hash, the lengths T fixes, the outcome, the
    group member."""
    expected = RunSpec.from_json(doc["spec"]).hash
    if doc["spec_hash"] != expected:
        raise Invalid(f"spec_hash {show(doc['spec_hash'])} does not match its spec "
                       f"(RunSpec.hash is {expected!r}): the document was edited by hand")
    T = len(doc["scenario"]["tasks"])
    rows = doc["accuracy_matrix"]
    if len(rows) != T + 1 or any(len(r) != T for r in rows):
        raise Invalid(f"accuracy_matrix must be {T + 1} rows of {T} entries (T + 1 x T for "
                       f"the scenario's {T} tasks)")
    for name, length in (("param_counts", T + 1), ("train_time_s", T), ("eval_time_s", T + 1)):
        if len(doc[name]) != length:
            raise Invalid(f"{name} must have {length} entries, got {len(doc[name])}")
    status, after = doc["status"], doc["diverged_after_task"]
    if status == "failed" and doc["error"] is None:
        raise Invalid("a failed run must record its error")
    if status != "failed" and doc["error"] is not None:
        raise Invalid(f"a run with status {status!r} must have error null")
    if status == "diverged" and after is None:
        raise Invalid("a diverged run must record diverged_after_task")
    if after is not None and after > T:
        raise Invalid(f"diverged_after_task {after} is past the last task ({T})")
    _check_curve(doc, T)
    group, seed = doc["group"], doc["spec"]["seed"]
    if group is not None and (group["member"] >= len(group["seeds"])
                              or group["seeds"][group["member"]] != seed):
        raise Invalid(f"group.member {group['member']} is not this run's seed {seed} in "
                       f"group.seeds {group['seeds']}")


def _check_curve(doc: dict[str, Any], T: int) -> None:
    curve = doc["curve"]
    if curve is None:
        return
    if "eval_every" not in doc["spec"]:
        raise Invalid("curve must be null: the spec has no eval_every (no continual evaluation)")
    steps = curve["steps"]
    if len(curve["accuracy"]) != len(steps) or any(len(a) != T for a in curve["accuracy"]):
        raise Invalid(f"curve.accuracy must have one row of {T} entries per step "
                      f"({len(steps)} steps)")
    if any(b <= a for a, b in zip(steps, steps[1:])):
        raise Invalid("curve.steps must increase")
    ends = curve["task_ends"]
    if len(ends) > T or any(b < a for a, b in zip(ends, ends[1:])):
        raise Invalid(f"curve.task_ends must be at most {T} non-decreasing steps")


def _check_version(version: Any) -> None:
    if not is_int(version):
        raise Invalid(f"schema_version must be an integer, got {show(version)}: not a "
                       "clbench result")
    if version > SCHEMA_VERSION:
        raise Invalid(f"schema_version {version} is newer than this clbench reads "
                       f"({SCHEMA_VERSION}): upgrade clbench to read it")
    if version != SCHEMA_VERSION and version not in MIGRATIONS:
        raise Invalid(f"schema_version {version} is not a clbench result schema (known: "
                       f"{', '.join(map(str, [*MIGRATIONS, SCHEMA_VERSION]))})")


def _check(doc: Any) -> None:
    """Raises Invalid naming the first problem of a schema-``SCHEMA_VERSION`` document."""
    if not isinstance(doc, dict):
        raise Invalid("not a clbench result (expected a JSON object)")
    _check_version(doc.get("schema_version"))
    if doc["schema_version"] != SCHEMA_VERSION:
        raise Invalid(f"schema_version {doc['schema_version']} is not the current schema "
                       f"({SCHEMA_VERSION}): read it with clbench.schema.parse, which migrates")
    record_of(RunResult).check(doc, "", also=("schema_version", "spec_hash"))
    _check_rules(doc)


def validate(doc: Any) -> str | None:
    """What is wrong with a schema-``SCHEMA_VERSION`` result document, or None."""
    try:
        _check(doc)
    except UnknownKeys as exc:
        return f"{exc} (schema {SCHEMA_VERSION} has no such field)"
    except Invalid as exc:
        return str(exc)
    return None


# ---------------------------------------------------------------------------------------------
# Reading


def parse(doc: Any) -> RunResult:
    """A result document of any known schema as a RunResult: migrated
    (:mod:`clbench.migrations`), validated, built. Raises ResultsError naming the problem."""
    if not isinstance(doc, dict):
        raise ResultsError("not a clbench result (expected a JSON object)")
    original = doc.get("schema_version")
    try:
        _check_version(original)
    except Invalid as exc:
        raise ResultsError(str(exc)) from None
    current = migrate(doc, SCHEMA_VERSION)
    problem = validate(current)
    if problem:
        if original != SCHEMA_VERSION:
            problem = f"{problem} (after migrating from schema {original})"
        raise ResultsError(problem, hint="rerun it with `clbench run` (add --rerun), or "
                           "remove the file")
    return record_of(RunResult).load(current)
