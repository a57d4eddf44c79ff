"""The result document (clbench.schema): RunResult round trips, strict validation, the schema 1
-> 2 migration and reading without torch."""

from __future__ import annotations

import copy
import dataclasses
import json
import subprocess
import sys

import pytest

from clbench import schema
from clbench.errors import ResultsError
from clbench.schema import (
    GitState,
    GroupRecord,
    PeakMemory,
    RunIdentity,
    RunResult,
    RunTimes,
    ScenarioRecord,
    TaskRecord,
)
from clbench.spec import RunSpec

SPEC = RunSpec(scenario="split-digits", scenario_version="1",
               scenario_params=(("n_tasks", 2), ("setting", "task")), strategy="naive",
               strategy_version="1", strategy_params=(("epochs", 1), ("lr", 0.01)),
               backbone="mlp", backbone_version="1", seed=1, budget="smoke")


def make_result(**changes) -> RunResult:
    result = RunResult(
        spec=SPEC, status="ok", error=None, diverged_after_task=None,
        identity=RunIdentity(clbench_version="0.1.0", git=GitState(sha="ab" * 20, dirty=False),
                             python="3.11.7", torch="2.3.0", cuda=None, platform="Linux",
                             cpu="Test CPU", cpu_count=2, torch_threads=2, device="cpu",
                             device_name="Test CPU", argv=("run",)),
        scenario=ScenarioRecord(
            name="split-digits", version="1", params={"n_tasks": 2, "setting": "task"},
            setting="task", input_shape=(1, 8, 8), n_outputs=4, backbone="mlp",
            primary_metric="acc",
            tasks=(TaskRecord(classes=(0, 1), source_classes=(0, 1)),
                   TaskRecord(classes=(2, 3), source_classes=(2, 3))),
            data={"layout": "sklearn-digits", "subset": False}),
        accuracy_matrix=((0.5, 0.5), (0.9, 0.5), (0.8, 0.9)),
        param_counts=(100, 100, 100),
        times=RunTimes(setup_s=0.1, train_s=(1.0, 1.0), eval_s=(0.1, 0.1, 0.1), wall_s=2.5),
        memory=PeakMemory(host_bytes=2**20, host_scope="group", device_bytes=None),
        group=GroupRecord(size=2, member=1, seeds=(0, 1), batched=True),
        started_at="2026-01-01T00:00:00+00:00", finished_at="2026-01-01T00:01:00+00:00",
    )
    return dataclasses.replace(result, **changes)


def test_to_json_writes_exactly_the_document_and_parse_reads_it_back():
    result = make_result()
    doc = result.to_json()
    assert schema.validate(doc) is None
    assert doc["schema_version"] == schema.SCHEMA_VERSION == 2
    assert doc["spec_hash"] == SPEC.hash and "migrated_from" not in doc
    assert doc["hyperparameters"] == {"strategy": {"epochs": 1, "lr": 0.01},
                                      "scenario": {"n_tasks": 2, "setting": "task"}}
    text = json.dumps(doc)
    again = schema.parse(json.loads(text))
    assert again == result
    assert json.dumps(again.to_json()) == text


def _set(doc, path, value):
    *head, last = path
    for key in head:
        doc = doc[key]
    if value is KeyError:
        del doc[last]
    else:
        doc[last] = value


@pytest.mark.parametrize("path,value,message", [
    (("accuracy_matrix", 1, 0), True, "accuracy_matrix[1][0] must be an accuracy in [0, 1] or "
                                      "null, got true"),
    (("accuracy_matrix", 2, 1), 1.5, "accuracy_matrix[2][1] must be an accuracy in [0, 1]"),
    (("accuracy_matrix", 2, 1), float("nan"), "got NaN"),
    (("accuracy_matrix",), [[0.5, 0.5], [0.9, 0.5]], "must be 3 rows of 2 entries"),
    (("accuracy_matrix", 0), [0.5], "must be 3 rows of 2 entries"),
    (("param_counts", 0), True, "param_counts[0] must be an integer >= 0 or null, got true"),
    (("param_counts",), [100, 100], "param_counts must have 3 entries"),
    (("train_time_s", 0), -1.0, "train_time_s[0] must be a non-negative number"),
    (("wall_time_s",), "2.5", "wall_time_s must be a non-negative number of seconds"),
    (("spec", "seed"), True, "spec.seed must be an integer >= 0, got true"),
    (("spec", "strategy_version"), 1, "spec.strategy_version must be a non-empty string"),
    (("spec", "backbone_version"), KeyError, "missing keys in spec: backbone_version"),
    (("spec", "strategy_params"), [], "spec.strategy_params must be a JSON object"),
    (("spec", "colour"), "red", "unknown keys in spec: colour"),
    (("status",), "crashed", "status must be one of ok, diverged, failed"),
    (("group",), KeyError, "missing keys: group"),
    (("extra",), 1, "unknown keys in the document: extra"),
    (("spec_hash",), "0" * 20, "does not match its spec"),
    (("error",), {"type": "E", "message": "m", "traceback": "t"}, "must have error null"),
    (("diverged_after_task",), 3, "past the last task"),
    (("group", "member"), 0, "group.member 0 is not this run's seed 1"),
    (("group", "batched"), 1, "group.batched must be true or false"),
    (("scenario", "name"), "split-mnist", "scenario.name 'split-mnist' disagrees with "
                                          "spec.scenario"),
    (("scenario", "setting"), "online", "scenario.setting must be one of class, task, domain"),
    (("scenario", "n_tasks"), 3, "scenario.n_tasks is 3 but scenario.tasks lists 2"),
    (("scenario", "primary_metric"), "speed", "scenario.primary_metric must be one of acc"),
    (("scenario", "data", "subset"), "no", "scenario.data.subset must be true or false"),
    (("identity", "cpu_count"), True, "identity.cpu_count must be an integer >= 1 or null"),
    (("identity", "git", "dirty"), "yes", "identity.git.dirty must be true or false or null"),
    (("hyperparameters", "strategy", "lr"), 0.1, "hyperparameters must be the spec's"),
    (("started_at",), "yesterday", "started_at must be an ISO 8601 time"),
    (("peak_host_memory_scope",), "machine", "peak_host_memory_scope must be one of group"),
    (("schema_version",), 3, "schema_version 3 is newer than this clbench reads (2)"),
    (("schema_version",), "2", "schema_version must be an integer"),
    (("schema_version",), 0, "schema_version 0 is not a clbench result schema"),
])
def test_validate_names_what_is_wrong(path, value, message):
    doc = make_result().to_json()
    _set(doc, path, value)
    problem = schema.validate(doc)
    assert problem is not None and message in problem, problem
    with pytest.raises(ResultsError, match="."):
        schema.parse(doc)


def test_outcome_rules():
    failed = make_result(status="failed", error=schema.RunError(type="E", message="m",
                                                                traceback="t"))
    assert schema.validate(failed.to_json()) is None
    no_error = failed.to_json()
    no_error["error"] = None
    assert "a failed run must record its error" in schema.validate(no_error)
    diverged = make_result(status="diverged", diverged_after_task=2,
                           accuracy_matrix=((0.5, 0.5), (0.9, 0.5), (None, None)))
    assert schema.validate(diverged.to_json()) is None
    doc = diverged.to_json()
    doc["diverged_after_task"] = None
    assert "a diverged run must record diverged_after_task" in schema.validate(doc)


def schema1_doc() -> dict:
    """A schema-1 document as clbench wrote it before component versions existed."""
    doc = make_result().to_json()
    for key in ("strategy_version", "backbone", "backbone_version"):
        del doc["spec"][key]
    doc["schema_version"] = 1
    doc["spec_hash"] = "0123456789abcdef0123"  # schema 1 hashed a spec without versions
    for key in ("setup_time_s", "peak_host_memory_scope", "group", "eval_time_s"):
        del doc[key]
    del doc["scenario"]["input_shape"]
    del doc["identity"]["argv"]
    return doc


def test_migrate_1_to_2_is_pure_and_completes_the_spec():
    old = schema1_doc()
    before = copy.deepcopy(old)
    new = schema.migrate_1_to_2(old)
    assert old == before, "the migration changed its input"
    assert new["schema_version"] == 2 and new["migrated_from"] == 1
    assert new["spec"]["strategy_version"] == "1" and new["spec"]["backbone_version"] == "1"
    assert new["spec"]["backbone"] == old["scenario"]["backbone"] == "mlp"
    assert new["spec_hash"] == RunSpec.from_json(new["spec"]).hash == SPEC.hash
    assert new["spec_hash"] != old["spec_hash"]
    assert new["setup_time_s"] is None and new["group"] is None
    assert new["eval_time_s"] == [None, None, None]
    assert new["scenario"]["input_shape"] is None and new["identity"]["argv"] is None
    assert schema.validate(new) is None
    result = schema.parse(old)
    assert result.migrated_from == 1 and result.spec == SPEC
    assert result.to_json()["migrated_from"] == 1
    assert schema.parse(result.to_json()) == result  # a migrated document stays readable
    assert schema.MIGRATIONS[1] is schema.migrate_1_to_2
    assert set(schema.MIGRATIONS) == set(range(1, schema.SCHEMA_VERSION))


def test_migrate_keeps_versions_a_late_schema_1_writer_recorded():
    old = make_result().to_json()
    old["schema_version"] = 1
    old["spec"]["strategy_version"] = "3"
    new = schema.migrate_1_to_2(old)
    assert new["spec"]["strategy_version"] == "3"
    assert new["spec_hash"] == RunSpec.from_json(new["spec"]).hash != SPEC.hash


def test_bad_schema_1_documents_are_named():
    with pytest.raises(ResultsError, match="missing keys spec, spec_hash"):
        schema.parse({"schema_version": 1, "status": "ok", "accuracy_matrix": [[0.1], [0.2]],
                      "param_counts": [1, 1], "identity": {}, "scenario": {}})
    old = schema1_doc()
    old["accuracy_matrix"][1][0] = True
    with pytest.raises(ResultsError, match=r"accuracy_matrix\[1\]\[0\] .* got true "
                                           r"\(after migrating from schema 1\)"):
        schema.parse(old)
    with pytest.raises(ResultsError, match="expected a JSON object"):
        schema.parse(["not", "a", "document"])


def test_reading_results_never_imports_torch():
    code = ("import sys, json; from clbench import schema, results; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
