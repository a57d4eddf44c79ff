"""Migrations of the result document: ``MIGRATIONS[v]`` turns a schema-v document into a
schema-(v + 1) one, as asv migrates its results files.

Each step is a pure function of the document (a new document; its input is not changed) and
checks only what it reads or drops; :func:`clbench.schema.parse` validates the migrated
document against the current schema. Nothing is rewritten on disk. docs/results.md describes
each step.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

from clbench.errors import ResultsError
from clbench.spec import RunSpec

Document = dict[str, Any]


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _spec_hash(spec: Any, fallback: Any) -> Any:
    """``RunSpec.hash`` of ``spec``; ``fallback`` for a spec that cannot be read (the validation
    after migrating names what is wrong with it)."""
    try:
        return RunSpec.from_json(spec).hash
    except (KeyError, TypeError, ValueError, AttributeError):
        return fallback


# ---------------------------------------------------------------------------------------------
# 1 -> 2: component versions in the spec; every key written out

V1_REQUIRED = ("schema_version", "spec", "spec_hash", "status", "accuracy_matrix",
               "param_counts", "identity", "scenario")
V1_SPEC = ("scenario", "scenario_version", "scenario_params", "strategy", "strategy_params",
           "seed", "budget")
# Keys schema 1 did not require (its readers defaulted them) and their "not recorded" values.
V1_OPTIONAL_TOP = ("error", "diverged_after_task", "setup_time_s", "wall_time_s",
                   "peak_host_memory_bytes", "peak_host_memory_scope",
                   "peak_device_memory_bytes", "group", "started_at", "finished_at")
V2_IDENTITY = ("clbench_version", "git", "python", "torch", "cuda", "platform", "cpu",
               "cpu_count", "torch_threads", "device", "device_name", "argv")


def _check_schema_1(doc: Any) -> str | None:
    """What schema 1 guaranteed (its own validator's checks), plus what migrating reads."""
    if not isinstance(doc, dict):
        return "not a clbench result (expected a JSON object)"
    missing = [k for k in V1_REQUIRED if k not in doc]
    if missing:
        return f"missing keys {', '.join(missing)}"
    for key in ("spec", "scenario", "identity"):
        if not isinstance(doc[key], dict):
            return f"{key} must be a JSON object, got {_show(doc[key])}"
    missing = [k for k in V1_SPEC if k not in doc["spec"]]
    if missing:
        return f"missing keys in spec: {', '.join(missing)}"
    if "backbone" not in doc["spec"] and not isinstance(doc["scenario"].get("backbone"), str):
        return ("scenario.backbone must be a string (the run's backbone), got "
                f"{_show(doc['scenario'].get('backbone'))}")
    R = doc["accuracy_matrix"]
    if (not isinstance(R, list) or len(R) < 2
            or any(not isinstance(r, list) or len(r) != len(R) - 1 for r in R)):
        return "accuracy_matrix must be a list of T + 1 rows of T entries"
    return None


def migrate_1_to_2(doc: Mapping[str, Any]) -> Document:
    """A schema-1 result document as schema 2.

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
    problem = _check_schema_1(doc)
    if problem:
        raise ResultsError(f"not a valid schema-1 result: {problem}")
    new = copy.deepcopy(dict(doc))
    T = len(new["accuracy_matrix"][0])
    scenario = new["scenario"]
    spec = new["spec"]
    if type(spec["scenario_version"]) is int:  # schema 1's reader took str() of it
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
    for key in V2_IDENTITY:
        identity.setdefault(key, {"sha": None, "dirty": None} if key == "git" else None)
    new["schema_version"] = 2
    new["migrated_from"] = 1
    new["spec_hash"] = _spec_hash(spec, new["spec_hash"])
    return new


# ---------------------------------------------------------------------------------------------
# 2 -> 3: the stored copies of derivable facts are dropped


def _derived_facts(doc: Document) -> list[tuple[str, Any, Any, str]]:
    """(key, stored value, derived value, where the derived value comes from) of each fact
    schema 2 stored beside what it derives from."""
    spec, scenario, group = doc["spec"], doc["scenario"], doc["group"]
    facts = [("hyperparameters", doc["hyperparameters"],
              {"strategy": spec.get("strategy_params"), "scenario": spec.get("scenario_params")},
              "the spec's strategy_params and scenario_params")]
    for key, spec_key in (("name", "scenario"), ("version", "scenario_version"),
                          ("backbone", "backbone")):
        facts.append((f"scenario.{key}", scenario[key], spec.get(spec_key),
                      f"spec.{spec_key} {_show(spec.get(spec_key))}"))
    tasks = scenario.get("tasks")
    if isinstance(tasks, list):
        facts.append(("scenario.n_tasks", scenario["n_tasks"], len(tasks),
                      f"the {len(tasks)} tasks scenario.tasks lists"))
    if isinstance(group, dict) and isinstance(group.get("seeds"), list):
        seeds = group["seeds"]
        facts.append(("group.size", group["size"], len(seeds),
                      f"the {len(seeds)} seeds group.seeds lists"))
    return facts


def migrate_2_to_3(doc: Mapping[str, Any]) -> Document:
    """A schema-2 result document as schema 3: the stored copies of facts it derives from other
    keys are dropped. Schema 2 checked each equal to its source:

    * ``hyperparameters`` (the spec's ``strategy_params`` and ``scenario_params``);
    * ``scenario.name``, ``scenario.version`` and ``scenario.backbone`` (the spec's
      ``scenario``, ``scenario_version`` and ``backbone``);
    * ``scenario.n_tasks`` (the length of ``scenario.tasks``);
    * ``group.size`` (the length of ``group.seeds``).

    ``migrated_from`` becomes 2 unless the document was itself migrated (then it keeps the
    version it was read from). Raises ResultsError when a dropped fact is missing or disagrees
    with its source (the document was edited by hand: schema 2 refused it too).
    """
    new = copy.deepcopy(dict(doc))
    scenario, group = new.get("scenario"), new.get("group")
    if isinstance(new.get("spec"), dict) and isinstance(scenario, dict):
        # else the validation after migrating names what is wrong with them
        missing = [k for k in ("hyperparameters",) if k not in new]
        missing += [f"scenario.{k}" for k in ("name", "version", "backbone", "n_tasks")
                    if k not in scenario]
        if isinstance(group, dict) and "size" not in group:
            missing.append("group.size")
        if missing:
            raise ResultsError(f"not a valid schema-2 result: missing keys "
                               f"{', '.join(missing)}")
        for key, stored, derived, source in _derived_facts(new):
            if stored != derived:
                raise ResultsError(f"not a valid schema-2 result: {key} {_show(stored)} "
                                   f"disagrees with {source}")
    new.pop("hyperparameters", None)
    for key in ("name", "version", "backbone", "n_tasks"):
        if isinstance(scenario, dict):
            scenario.pop(key, None)
    if isinstance(group, dict):
        group.pop("size", None)
    new["schema_version"] = 3
    new["migrated_from"] = new.get("migrated_from", 2)
    return new


# ---------------------------------------------------------------------------------------------
# 3 -> 4: the continual-evaluation curve


def migrate_3_to_4(doc: Mapping[str, Any]) -> Document:
    """A schema-3 result document as schema 4: ``curve`` is null (schema 3 had no continual
    evaluation, and its specs no ``eval_every``; the spec and its hash are unchanged).
    ``migrated_from`` becomes 3 unless the document was itself migrated."""
    new = copy.deepcopy(dict(doc))
    if "curve" in new:
        raise ResultsError("not a valid schema-3 result: it has a curve key (schema 4's)")
    new["curve"] = None
    new["schema_version"] = 4
    new["migrated_from"] = new.get("migrated_from", 3)
    return new


MIGRATIONS: dict[int, Callable[[Mapping[str, Any]], Document]] = {
    1: migrate_1_to_2,
    2: migrate_2_to_3,
    3: migrate_3_to_4,
}


def migrate(doc: Mapping[str, Any], to: int) -> Mapping[str, Any]:
    """``doc`` (of a version ``MIGRATIONS`` knows, or ``to``) brought to schema ``to``."""
    while doc["schema_version"] < to:
        doc = MIGRATIONS[doc["schema_version"]](doc)
    return doc
