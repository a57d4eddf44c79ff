"""The result document: one run's raw observations, typed, versioned and checked.

A run is stored as one JSON document (:class:`clbench.results.ResultsStore`). This module owns
its shape: :class:`RunResult` is the document as Python values, :meth:`RunResult.to_json`
writes exactly the document, :func:`validate` says what is wrong with one, and :func:`parse`
reads any schema version this clbench knows into a :class:`RunResult`.

Schema 2 (``SCHEMA_VERSION``), key by key:

* ``schema_version`` (2), ``spec`` (:class:`clbench.spec.RunSpec` as JSON: scenario,
  scenario_version, scenario_params, strategy, strategy_version, strategy_params, backbone,
  backbone_version, seed, budget) and ``spec_hash`` (``RunSpec.hash`` of that spec, the file name);
* ``status`` (ok, diverged, failed), ``error`` (type, message, traceback; set exactly when
  failed), ``diverged_after_task`` (the row from which a diverged member has no accuracies);
* ``identity``: clbench, git, Python, PyTorch, CUDA, platform, CPU and device of the run, and
  where it ran: ``host`` and ``executor`` (local or ray), and ``warmup_s``, the seconds its
  process spent on one-time set-up before the group's timer started (not in the group's
  times), optional keys (documents written before them lack them: "not recorded");
* ``scenario``: the scenario as run (setting, tasks and their classes, backbone, primary
  metric) and ``data``, the source of its data; ``hyperparameters``: the spec's parameters;
* ``accuracy_matrix``: T + 1 rows of T accuracies in [0, 1] or null (not measured); row 0 is
  the untrained model, row i the model after task i;
* ``param_counts`` (T + 1), ``train_time_s`` (T), ``eval_time_s`` (T + 1), ``setup_time_s``,
  ``wall_time_s``, ``peak_host_memory_bytes`` with ``peak_host_memory_scope`` (group or
  process), ``peak_device_memory_bytes``; ``group`` (size, member, seeds, batched), and
  ``started_at`` / ``finished_at`` (ISO 8601);
* ``migrated_from``: only in a document read from an older schema, that schema's version.

Every key is present; null means "not measured" (no CUDA device, a run that failed during set-up)
or, in a migrated document, "not recorded by that schema". Numbers are never booleans.

Older documents are brought up to date by the functions in ``MIGRATIONS`` (version -> function
to the next version), each pure and documented, as asv migrates its results files; nothing is
rewritten on disk. This module imports neither torch nor any scenario or strategy: reports read
results without them.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import json
import math
from collections.abc import Callable, Mapping
from typing import Any

from clbench.errors import ResultsError
from clbench.metrics import MATRIX_METRICS
from clbench.spec import RunSpec

SCHEMA_VERSION = 2
STATUSES = ("ok", "diverged", "failed")
SETTINGS = ("class", "task", "domain")
HOST_MEMORY_SCOPES = ("group", "process")  # what peak_host_memory_bytes covers


# ---------------------------------------------------------------------------------------------
# The document as Python values


@dataclasses.dataclass(frozen=True, kw_only=True)
class RunError:
    """The exception a failed run raised."""

    type: str
    message: str
    traceback: str

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "message": self.message, "traceback": self.traceback}


@dataclasses.dataclass(frozen=True, kw_only=True)
class GitState:
    sha: str | None  # None outside a git checkout
    dirty: bool | None

    def to_json(self) -> dict[str, Any]:
        return {"sha": self.sha, "dirty": self.dirty}


@dataclasses.dataclass(frozen=True, kw_only=True)
class RunIdentity:
    """Which code, on which software and hardware, produced the result."""

    clbench_version: str | None
    git: GitState
    python: str | None
    torch: str | None
    cuda: str | None  # None off CUDA
    platform: str | None
    cpu: str | None
    cpu_count: int | None
    torch_threads: int | None
    device: str | None
    device_name: str | None
    argv: tuple[str, ...] | None
    # Where it ran (optional keys of schema 2: absent in documents written before them, which
    # read as None, "not recorded"): the machine's host name, and the executor (local, ray).
    host: str | None = None
    executor: str | None = None
    # The process's one-time set-up (clbench.warmup) before this group, kept out of its times.
    warmup_s: float | None = None

    def to_json(self) -> dict[str, Any]:
        doc = {
            "clbench_version": self.clbench_version, "git": self.git.to_json(),
            "python": self.python, "torch": self.torch, "cuda": self.cuda,
            "platform": self.platform, "cpu": self.cpu, "cpu_count": self.cpu_count,
            "torch_threads": self.torch_threads, "device": self.device,
            "device_name": self.device_name,
            "argv": None if self.argv is None else list(self.argv),
        }
        for key in IDENTITY_OPTIONAL_KEYS:
            if getattr(self, key) is not None:
                doc[key] = getattr(self, key)
        return doc


@dataclasses.dataclass(frozen=True, kw_only=True)
class TaskRecord:
    classes: tuple[int, ...]  # output units of the task's labels
    source_classes: tuple[int, ...] | None  # the dataset's class ids

    def to_json(self) -> dict[str, Any]:
        return {"classes": list(self.classes),
                "source_classes": None if self.source_classes is None
                else list(self.source_classes)}


@dataclasses.dataclass(frozen=True, kw_only=True)
class ScenarioRecord:
    """The scenario as run (``ScenarioInfo``) and where its data came from."""

    name: str
    version: str
    params: dict[str, Any]
    setting: str
    input_shape: tuple[int, ...] | None
    n_outputs: int | None
    backbone: str
    primary_metric: str
    tasks: tuple[TaskRecord, ...]
    data: dict[str, Any]  # the data source as the scenario reports it (layout, sizes, subset)

    @property
    def n_tasks(self) -> int:
        return len(self.tasks)

    @property
    def data_subset(self) -> bool:
        """True when the run used a subset of the dataset (a different experiment)."""
        return self.data.get("subset", False) is True

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "version": self.version, "params": self.params,
            "setting": self.setting,
            "input_shape": None if self.input_shape is None else list(self.input_shape),
            "n_outputs": self.n_outputs, "n_tasks": self.n_tasks, "backbone": self.backbone,
            "primary_metric": self.primary_metric,
            "tasks": [t.to_json() for t in self.tasks], "data": self.data,
        }


@dataclasses.dataclass(frozen=True, kw_only=True)
class GroupRecord:
    """The seed group the run trained in (a batched strategy trains them as one model)."""

    size: int
    member: int  # this run's position in ``seeds``
    seeds: tuple[int, ...]
    batched: bool

    def to_json(self) -> dict[str, Any]:
        return {"size": self.size, "member": self.member, "seeds": list(self.seeds),
                "batched": self.batched}


@dataclasses.dataclass(frozen=True, kw_only=True)
class RunTimes:
    """Seconds; each member of a group records the group's times."""

    setup_s: float | None
    train_s: tuple[float | None, ...]  # one per task
    eval_s: tuple[float | None, ...]  # one per row of the accuracy matrix
    wall_s: float | None


@dataclasses.dataclass(frozen=True, kw_only=True)
class PeakMemory:
    host_bytes: int | None
    host_scope: str | None  # "group" (peak reset for the group) or "process"
    device_bytes: int | None  # None off CUDA


@dataclasses.dataclass(frozen=True, kw_only=True)
class RunResult:
    """One run: its spec, outcome and every raw observation. Metrics are computed from it at
    report time (:func:`clbench.metrics.run_metrics`), never stored."""

    spec: RunSpec
    status: str
    error: RunError | None
    diverged_after_task: int | None
    identity: RunIdentity
    scenario: ScenarioRecord
    accuracy_matrix: tuple[tuple[float | None, ...], ...]
    param_counts: tuple[int | None, ...]
    times: RunTimes
    memory: PeakMemory
    group: GroupRecord | None
    started_at: str | None
    finished_at: str | None
    migrated_from: int | None = None  # the schema version the document was read from

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
        doc = {
            "schema_version": SCHEMA_VERSION,
            "spec": self.spec.to_json(),
            "spec_hash": self.spec_hash,
            "status": self.status,
            "error": None if self.error is None else self.error.to_json(),
            "diverged_after_task": self.diverged_after_task,
            "identity": self.identity.to_json(),
            "scenario": self.scenario.to_json(),
            "hyperparameters": self.hyperparameters,
            "accuracy_matrix": [list(row) for row in self.accuracy_matrix],
            "param_counts": list(self.param_counts),
            "train_time_s": list(self.times.train_s),
            "eval_time_s": list(self.times.eval_s),
            "setup_time_s": self.times.setup_s,
            "wall_time_s": self.times.wall_s,
            "peak_host_memory_bytes": self.memory.host_bytes,
            "peak_host_memory_scope": self.memory.host_scope,
            "peak_device_memory_bytes": self.memory.device_bytes,
            "group": None if self.group is None else self.group.to_json(),
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }
        if self.migrated_from is not None:
            doc["migrated_from"] = self.migrated_from
        return doc


# ---------------------------------------------------------------------------------------------
# Checking


class _Invalid(Exception):
    """What is wrong with a document (internal: :func:`validate` returns the message)."""


def _show(value: Any) -> str:
    try:
        text = json.dumps(value, allow_nan=True)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _fail(path: str, expected: str, value: Any) -> None:
    raise _Invalid(f"{path} must be {expected}, got {_show(value)}")


def _is_int(value: Any) -> bool:
    return type(value) is int  # bool is a subclass of int: `true` is not a count


def _is_number(value: Any) -> bool:
    return type(value) in (int, float) and math.isfinite(value)


def _string(value: Any, path: str, nullable: bool = False, non_empty: bool = False) -> None:
    if value is None and nullable:
        return
    if not isinstance(value, str) or (non_empty and not value):
        expected = "a non-empty string" if non_empty else "a string"
        _fail(path, expected + (" or null" if nullable else ""), value)


def _int(value: Any, path: str, nullable: bool = False, minimum: int | None = 0) -> None:
    if value is None and nullable:
        return
    if not _is_int(value) or (minimum is not None and value < minimum):
        expected = "an integer" if minimum is None else f"an integer >= {minimum}"
        _fail(path, expected + (" or null" if nullable else ""), value)


def _seconds(value: Any, path: str) -> None:
    if value is not None and not (_is_number(value) and value >= 0):
        _fail(path, "a non-negative number of seconds or null", value)


def _bool(value: Any, path: str, nullable: bool = False) -> None:
    if not (type(value) is bool or (nullable and value is None)):
        _fail(path, "true or false" + (" or null" if nullable else ""), value)


def _object(value: Any, path: str, keys: tuple[str, ...], optional: tuple[str, ...] = ()
            ) -> dict[str, Any]:
    """``value`` as a JSON object with exactly ``keys`` (plus any of ``optional``)."""
    if not isinstance(value, dict):
        _fail(path, "a JSON object", value)
    missing = [k for k in keys if k not in value]
    if missing:
        where = "" if path == "the document" else f" in {path}"
        raise _Invalid(f"missing keys{where}: {', '.join(missing)}")
    unknown = sorted(k for k in value if k not in keys and k not in optional)
    if unknown:
        raise _Invalid(f"unknown keys in {path}: {', '.join(map(str, unknown))} (schema "
                       f"{SCHEMA_VERSION} has no such field)")
    return value


def _list(value: Any, path: str, length: int | None = None) -> list[Any]:
    if not isinstance(value, list):
        _fail(path, "a JSON list", value)
    if length is not None and len(value) != length:
        raise _Invalid(f"{path} must have {length} entries, got {len(value)}")
    return value


def _timestamp(value: Any, path: str) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        _fail(path, "an ISO 8601 time or null", value)
    try:
        dt.datetime.fromisoformat(value)
    except ValueError:
        _fail(path, "an ISO 8601 time or null", value)


SPEC_KEYS = ("scenario", "scenario_version", "scenario_params", "strategy", "strategy_version",
             "strategy_params", "backbone", "backbone_version", "seed", "budget")
DOCUMENT_KEYS = ("schema_version", "spec", "spec_hash", "status", "error",
                 "diverged_after_task", "identity", "scenario", "hyperparameters",
                 "accuracy_matrix", "param_counts", "train_time_s", "eval_time_s",
                 "setup_time_s", "wall_time_s", "peak_host_memory_bytes",
                 "peak_host_memory_scope", "peak_device_memory_bytes", "group", "started_at",
                 "finished_at")
IDENTITY_KEYS = ("clbench_version", "git", "python", "torch", "cuda", "platform", "cpu",
                 "cpu_count", "torch_threads", "device", "device_name", "argv")
# written when known; older documents lack them
IDENTITY_OPTIONAL_KEYS = ("host", "executor", "warmup_s")
SCENARIO_KEYS = ("name", "version", "params", "setting", "input_shape", "n_outputs", "n_tasks",
                 "backbone", "primary_metric", "tasks", "data")


def _check_spec(spec: Any) -> None:
    _object(spec, "spec", SPEC_KEYS, optional=("split", "validation"))
    if "split" in spec or "validation" in spec:  # a validation-split run: both, consistent
        if spec.get("split") != "validation":
            _fail("spec.split", '"validation" (a test-split spec has no split key)',
                  spec.get("split"))
        v = spec.get("validation")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 0.5:
            _fail("spec.validation", "a fraction in (0, 0.5]", v)
    for key in ("scenario", "scenario_version", "strategy", "strategy_version", "backbone",
                "backbone_version", "budget"):
        _string(spec[key], f"spec.{key}", non_empty=True)
    for key in ("scenario_params", "strategy_params"):
        if not isinstance(spec[key], dict):
            _fail(f"spec.{key}", "a JSON object", spec[key])
    _int(spec["seed"], "spec.seed")


def _check_identity(identity: Any) -> None:
    _object(identity, "identity", IDENTITY_KEYS, optional=IDENTITY_OPTIONAL_KEYS)
    for key in ("clbench_version", "python", "torch", "cuda", "platform", "cpu", "device",
                "device_name"):
        _string(identity[key], f"identity.{key}", nullable=True)
    for key in ("host", "executor"):
        if key in identity:
            _string(identity[key], f"identity.{key}", non_empty=True)
    if "warmup_s" in identity:
        _seconds(identity["warmup_s"], "identity.warmup_s")
    for key in ("cpu_count", "torch_threads"):
        _int(identity[key], f"identity.{key}", nullable=True, minimum=1)
    git = _object(identity["git"], "identity.git", ("sha", "dirty"))
    _string(git["sha"], "identity.git.sha", nullable=True)
    _bool(git["dirty"], "identity.git.dirty", nullable=True)
    argv = identity["argv"]
    if argv is not None and not (isinstance(argv, list) and all(isinstance(a, str)
                                                                 for a in argv)):
        _fail("identity.argv", "a list of strings or null", argv)


def _check_scenario(sc: Any, spec: dict[str, Any]) -> int:
    """Checks ``scenario`` against its spec; returns the number of tasks."""
    _object(sc, "scenario", SCENARIO_KEYS)
    for key in ("name", "version", "backbone"):
        _string(sc[key], f"scenario.{key}", non_empty=True)
    for key, spec_key in (("name", "scenario"), ("version", "scenario_version"),
                          ("backbone", "backbone")):
        if sc[key] != spec[spec_key]:
            raise _Invalid(f"scenario.{key} {sc[key]!r} disagrees with spec.{spec_key} "
                           f"{spec[spec_key]!r}")
    if not isinstance(sc["params"], dict):
        _fail("scenario.params", "a JSON object", sc["params"])
    if sc["setting"] not in SETTINGS:
        _fail("scenario.setting", f"one of {', '.join(SETTINGS)}", sc["setting"])
    if sc["primary_metric"] not in MATRIX_METRICS:
        _fail("scenario.primary_metric", f"one of {', '.join(MATRIX_METRICS)}",
              sc["primary_metric"])
    shape = sc["input_shape"]
    if shape is not None and not (isinstance(shape, list) and shape
                                  and all(_is_int(d) and d > 0 for d in shape)):
        _fail("scenario.input_shape", "a list of positive integers or null", shape)
    _int(sc["n_outputs"], "scenario.n_outputs", nullable=True, minimum=1)
    tasks = _list(sc["tasks"], "scenario.tasks")
    if not tasks:
        raise _Invalid("scenario.tasks must list at least one task")
    for i, task in enumerate(tasks):
        _object(task, f"scenario.tasks[{i}]", ("classes", "source_classes"))
        for key in ("classes", "source_classes"):
            value = task[key]
            if value is None and key == "source_classes":
                continue
            if not (isinstance(value, list) and all(_is_int(c) and c >= 0 for c in value)):
                _fail(f"scenario.tasks[{i}].{key}",
                      "a list of class ids" + (" or null" if key == "source_classes" else ""),
                      value)
    _int(sc["n_tasks"], "scenario.n_tasks", minimum=1)
    if sc["n_tasks"] != len(tasks):
        raise _Invalid(f"scenario.n_tasks is {sc['n_tasks']} but scenario.tasks lists "
                       f"{len(tasks)}")
    data = sc["data"]
    if not isinstance(data, dict):
        _fail("scenario.data", "a JSON object", data)
    if "subset" in data:
        _bool(data["subset"], "scenario.data.subset")
    return len(tasks)


def _check_matrix(R: Any, T: int) -> None:
    rows = _list(R, "accuracy_matrix")
    if len(rows) != T + 1 or any(not isinstance(r, list) or len(r) != T for r in rows):
        raise _Invalid(f"accuracy_matrix must be {T + 1} rows of {T} entries (T + 1 x T for "
                       f"the scenario's {T} tasks)")
    for i, row in enumerate(rows):
        for j, v in enumerate(row):
            if v is not None and not (_is_number(v) and 0 <= v <= 1):
                _fail(f"accuracy_matrix[{i}][{j}]", "an accuracy in [0, 1] or null", v)


def _check_outcome(doc: dict[str, Any], T: int) -> None:
    status = doc["status"]
    if status not in STATUSES:
        _fail("status", f"one of {', '.join(STATUSES)}", status)
    error = doc["error"]
    if status == "failed":
        if error is None:
            raise _Invalid("a failed run must record its error")
        error = _object(error, "error", ("type", "message", "traceback"))
        for key in ("type", "message", "traceback"):
            _string(error[key], f"error.{key}")
    elif error is not None:
        raise _Invalid(f"a run with status {status!r} must have error null")
    after = doc["diverged_after_task"]
    _int(after, "diverged_after_task", nullable=True)
    if status == "diverged" and after is None:
        raise _Invalid("a diverged run must record diverged_after_task")
    if after is not None and after > T:
        raise _Invalid(f"diverged_after_task {after} is past the last task ({T})")


def _check_measurements(doc: dict[str, Any], T: int) -> None:
    for i, n in enumerate(_list(doc["param_counts"], "param_counts", T + 1)):
        _int(n, f"param_counts[{i}]", nullable=True)
    for key, length in (("train_time_s", T), ("eval_time_s", T + 1)):
        for i, v in enumerate(_list(doc[key], key, length)):
            _seconds(v, f"{key}[{i}]")
    _seconds(doc["setup_time_s"], "setup_time_s")
    _seconds(doc["wall_time_s"], "wall_time_s")
    _int(doc["peak_host_memory_bytes"], "peak_host_memory_bytes", nullable=True)
    _int(doc["peak_device_memory_bytes"], "peak_device_memory_bytes", nullable=True)
    scope = doc["peak_host_memory_scope"]
    if scope is not None and scope not in HOST_MEMORY_SCOPES:
        _fail("peak_host_memory_scope", f"one of {', '.join(HOST_MEMORY_SCOPES)} or null",
              scope)
    _timestamp(doc["started_at"], "started_at")
    _timestamp(doc["finished_at"], "finished_at")


def _check_group(group: Any, seed: int) -> None:
    if group is None:
        return
    _object(group, "group", ("size", "member", "seeds", "batched"))
    seeds = _list(group["seeds"], "group.seeds")
    for i, s in enumerate(seeds):
        _int(s, f"group.seeds[{i}]")
    _int(group["size"], "group.size", minimum=1)
    if group["size"] != len(seeds):
        raise _Invalid(f"group.size is {group['size']} but group.seeds lists {len(seeds)}")
    _int(group["member"], "group.member")
    if group["member"] >= len(seeds) or seeds[group["member"]] != seed:
        raise _Invalid(f"group.member {group['member']} is not this run's seed {seed} in "
                       f"group.seeds {seeds}")
    _bool(group["batched"], "group.batched")


def _check(doc: Any) -> None:
    """Raises _Invalid naming the first problem of a schema-2 document."""
    if not isinstance(doc, dict):
        raise _Invalid("not a clbench result (expected a JSON object)")
    _check_version(doc.get("schema_version"))
    if doc["schema_version"] != SCHEMA_VERSION:
        raise _Invalid(f"schema_version {doc['schema_version']} is not the current schema "
                       f"({SCHEMA_VERSION}): read it with clbench.schema.parse, which migrates")
    _object(doc, "the document", DOCUMENT_KEYS, optional=("migrated_from",))
    spec = doc["spec"]
    _check_spec(spec)
    expected = RunSpec.from_json(spec).hash
    if doc["spec_hash"] != expected:
        raise _Invalid(f"spec_hash {_show(doc['spec_hash'])} does not match its spec "
                       f"(RunSpec.hash is {expected!r}): the document was edited by hand")
    if doc["hyperparameters"] != {"strategy": spec["strategy_params"],
                                  "scenario": spec["scenario_params"]}:
        raise _Invalid("hyperparameters must be the spec's strategy_params and "
                       "scenario_params")
    T = _check_scenario(doc["scenario"], spec)
    _check_identity(doc["identity"])
    _check_matrix(doc["accuracy_matrix"], T)
    _check_outcome(doc, T)
    _check_measurements(doc, T)
    _check_group(doc["group"], spec["seed"])
    if "migrated_from" in doc and doc["migrated_from"] not in MIGRATIONS:
        _fail("migrated_from", f"one of {', '.join(map(str, MIGRATIONS))}",
              doc["migrated_from"])


def _check_version(version: Any) -> None:
    if not _is_int(version):
        raise _Invalid(f"schema_version must be an integer, got {_show(version)}: not a "
                       "clbench result")
    if version > SCHEMA_VERSION:
        raise _Invalid(f"schema_version {version} is newer than this clbench reads "
                       f"({SCHEMA_VERSION}): upgrade clbench to read it")
    if version != SCHEMA_VERSION and version not in MIGRATIONS:
        raise _Invalid(f"schema_version {version} is not a clbench result schema (known: "
                       f"{', '.join(map(str, [*MIGRATIONS, SCHEMA_VERSION]))})")


def validate(doc: Any) -> str | None:
    """What is wrong with a schema-``SCHEMA_VERSION`` result document, or None."""
    try:
        _check(doc)
    except _Invalid as exc:
        return str(exc)
    return None


# ---------------------------------------------------------------------------------------------
# Migrations: MIGRATIONS[v] turns a valid schema-v document into a schema-(v + 1) one.

V1_REQUIRED = ("schema_version", "spec", "spec_hash", "status", "accuracy_matrix",
               "param_counts", "identity", "scenario")
V1_SPEC = ("scenario", "scenario_version", "scenario_params", "strategy", "strategy_params",
           "seed", "budget")
# Keys schema 1 did not require (its readers defaulted them) and their "not recorded" values.
V1_OPTIONAL_TOP = ("error", "diverged_after_task", "setup_time_s", "wall_time_s",
                   "peak_host_memory_bytes", "peak_host_memory_scope",
                   "peak_device_memory_bytes", "group", "started_at", "finished_at")


def _check_schema_1(doc: Any) -> None:
    """What schema 1 guaranteed (its own validator's checks), plus what migrating reads."""
    if not isinstance(doc, dict):
        raise _Invalid("not a clbench result (expected a JSON object)")
    missing = [k for k in V1_REQUIRED if k not in doc]
    if missing:
        raise _Invalid(f"missing keys {', '.join(missing)}")
    for key in ("spec", "scenario", "identity"):
        if not isinstance(doc[key], dict):
            _fail(key, "a JSON object", doc[key])
    missing = [k for k in V1_SPEC if k not in doc["spec"]]
    if missing:
        raise _Invalid(f"missing keys in spec: {', '.join(missing)}")
    if "backbone" not in doc["spec"] and not isinstance(doc["scenario"].get("backbone"), str):
        _fail("scenario.backbone", "a string (the run's backbone)",
              doc["scenario"].get("backbone"))
    R = doc["accuracy_matrix"]
    if (not isinstance(R, list) or len(R) < 2
            or any(not isinstance(r, list) or len(r) != len(R) - 1 for r in R)):
        raise _Invalid("accuracy_matrix must be a list of T + 1 rows of T entries")


def migrate_1_to_2(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A schema-1 result document as schema 2 (a new document; ``doc`` is not changed).

    * ``spec`` gains the component versions that schema 1 did not record: ``strategy_version``
      and ``backbone_version`` are ``"1"`` (version 1 of every component is, by definition, its
      code when versions were introduced, and that change kept every result bit-identical),
      ``backbone`` is ``scenario.backbone``. A schema-1 document written after versions were
      introduced already holds them: they are kept.
    * ``spec_hash`` becomes ``RunSpec.hash`` of the completed spec. The file keeps its old name
      (the schema-1 hash): the store finds it by the recomputed hash.
    * Keys schema 1 did not require, whose readers defaulted them, are written out: ``null``
      ("not recorded") for the error, divergence, times, memory, group, timestamps, identity
      fields, ``scenario.input_shape`` / ``n_outputs`` and tasks' ``source_classes``;
      ``[null] * T`` (``T + 1``) for ``train_time_s`` (``eval_time_s``); ``{}`` for
      ``scenario.data``; ``"acc"`` for ``scenario.primary_metric``; the spec's parameters for
      ``hyperparameters``.
    * ``"migrated_from": 1`` records that the document was read from schema 1.

    Raises ResultsError when ``doc`` is not a schema-1 document.
    """
    try:
        _check_schema_1(doc)
    except _Invalid as exc:
        raise ResultsError(f"not a valid schema-1 result: {exc}") from None
    new = copy.deepcopy(dict(doc))
    T = len(new["accuracy_matrix"][0])
    scenario = new["scenario"]
    spec = new["spec"]
    if _is_int(spec["scenario_version"]):  # schema 1's reader took str() of it
        spec["scenario_version"] = str(spec["scenario_version"])
    spec.setdefault("strategy_version", "1")
    spec.setdefault("backbone", scenario.get("backbone"))
    spec.setdefault("backbone_version", "1")
    for key in V1_OPTIONAL_TOP:
        new.setdefault(key, None)
    new.setdefault("train_time_s", [None] * T)
    new.setdefault("eval_time_s", [None] * (T + 1))
    new.setdefault("hyperparameters", {"strategy": spec["strategy_params"],
                                       "scenario": spec["scenario_params"]})
    for key in ("input_shape", "n_outputs"):
        scenario.setdefault(key, None)
    scenario.setdefault("primary_metric", "acc")
    scenario.setdefault("data", {})
    if isinstance(scenario.get("tasks"), list):
        for task in scenario["tasks"]:
            if isinstance(task, dict):
                task.setdefault("source_classes", None)
    identity = new["identity"]
    for key in IDENTITY_KEYS:
        identity.setdefault(key, {"sha": None, "dirty": None} if key == "git" else None)
    new["schema_version"] = 2
    new["migrated_from"] = 1
    try:
        _check_spec(new["spec"])
    except _Invalid as exc:
        raise ResultsError(f"not a valid schema-1 result: {exc}") from None
    new["spec_hash"] = RunSpec.from_json(new["spec"]).hash
    return new


MIGRATIONS: dict[int, Callable[[Mapping[str, Any]], dict[str, Any]]] = {1: migrate_1_to_2}


def migrate(doc: Any) -> Any:
    """``doc`` brought to ``SCHEMA_VERSION`` through ``MIGRATIONS`` (unchanged if current).
    Raises ResultsError for an unknown or newer schema, or a document its migration refuses."""
    if not isinstance(doc, dict):
        raise ResultsError("not a clbench result (expected a JSON object)")
    try:
        _check_version(doc.get("schema_version"))
    except _Invalid as exc:
        raise ResultsError(str(exc)) from None
    while doc["schema_version"] != SCHEMA_VERSION:
        doc = MIGRATIONS[doc["schema_version"]](doc)
    return doc


# ---------------------------------------------------------------------------------------------
# Reading


def parse(doc: Any) -> RunResult:
    """A result document of any known schema as a RunResult: migrated, validated, built.
    Raises ResultsError naming the problem."""
    original = doc.get("schema_version") if isinstance(doc, dict) else None
    current = migrate(doc)
    problem = validate(current)
    if problem:
        if original != SCHEMA_VERSION:
            problem = f"{problem} (after migrating from schema {original})"
        raise ResultsError(problem, hint="rerun it with `clbench run` (add --rerun), or "
                           "remove the file")
    return _build(current)


def _build(doc: dict[str, Any]) -> RunResult:
    """The RunResult of a document that passed :func:`validate`."""
    sc, ident, group, error = doc["scenario"], doc["identity"], doc["group"], doc["error"]
    return RunResult(
        spec=RunSpec.from_json(doc["spec"]),
        status=doc["status"],
        error=None if error is None else RunError(**error),
        diverged_after_task=doc["diverged_after_task"],
        identity=RunIdentity(
            **{k: ident[k] for k in IDENTITY_KEYS if k not in ("git", "argv")},
            **{k: ident.get(k) for k in IDENTITY_OPTIONAL_KEYS},
            git=GitState(**ident["git"]),
            argv=None if ident["argv"] is None else tuple(ident["argv"])),
        scenario=ScenarioRecord(
            name=sc["name"], version=sc["version"], params=sc["params"],
            setting=sc["setting"],
            input_shape=None if sc["input_shape"] is None else tuple(sc["input_shape"]),
            n_outputs=sc["n_outputs"], backbone=sc["backbone"],
            primary_metric=sc["primary_metric"],
            tasks=tuple(TaskRecord(classes=tuple(t["classes"]),
                                   source_classes=None if t["source_classes"] is None
                                   else tuple(t["source_classes"]))
                        for t in sc["tasks"]),
            data=sc["data"]),
        accuracy_matrix=tuple(tuple(row) for row in doc["accuracy_matrix"]),
        param_counts=tuple(doc["param_counts"]),
        times=RunTimes(setup_s=doc["setup_time_s"], train_s=tuple(doc["train_time_s"]),
                       eval_s=tuple(doc["eval_time_s"]), wall_s=doc["wall_time_s"]),
        memory=PeakMemory(host_bytes=doc["peak_host_memory_bytes"],
                          host_scope=doc["peak_host_memory_scope"],
                          device_bytes=doc["peak_device_memory_bytes"]),
        group=None if group is None else GroupRecord(
            size=group["size"], member=group["member"], seeds=tuple(group["seeds"]),
            batched=group["batched"]),
        started_at=doc["started_at"],
        finished_at=doc["finished_at"],
        migrated_from=doc.get("migrated_from"),
    )
