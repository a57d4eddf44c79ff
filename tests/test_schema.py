"""The result document (clbench.schema): RunResult round trips, strict validation, the
migrations (clbench.migrations: 1 -> 2 -> 3 -> 4) and reading without torch."""

from __future__ import annotations

import copy
import dataclasses
import json
import subprocess
import sys

import pytest

from clbench import migrations, schema
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
            params={"n_tasks": 2, "setting": "task"}, setting="task", input_shape=(1, 8, 8),
            n_outputs=4, primary_metric="acc",
            tasks=(TaskRecord(classes=(0, 1), source_classes=(0, 1)),
                   TaskRecord(classes=(2, 3), source_classes=(2, 3))),
            data={"layout": "sklearn-digits", "subset": False}),
        accuracy_matrix=((0.5, 0.5), (0.9, 0.5), (0.8, 0.9)),
        param_counts=(100, 100, 100),
        times=RunTimes(setup_s=0.1, train_s=(1.0, 1.0), eval_s=(0.1, 0.1, 0.1), wall_s=2.5),
        memory=PeakMemory(host_bytes=2**20, host_scope="group", device_bytes=None),
        group=GroupRecord(member=1, seeds=(0, 1), batched=True),
        started_at="2026-01-01T00:00:00+00:00", finished_at="2026-01-01T00:01:00+00:00",
    )
    return dataclasses.replace(result, **changes)


def test_to_json_writes_exactly_the_document_and_parse_reads_it_back():
    result = make_result()
    doc = result.to_json()
    assert schema.validate(doc) is None
    assert doc["schema_version"] == schema.SCHEMA_VERSION == 4 and doc["curve"] is None
    assert doc["spec_hash"] == SPEC.hash and "migrated_from" not in doc
    # nothing derivable is stored; the readers derive it
    assert "hyperparameters" not in doc and "size" not in doc["group"]
    assert set(doc["scenario"]) == {"params", "setting", "input_shape", "n_outputs",
                                    "primary_metric", "tasks", "data"}
    assert result.hyperparameters == {"strategy": {"epochs": 1, "lr": 0.01},
                                      "scenario": {"n_tasks": 2, "setting": "task"}}
    assert result.group.size == 2 and result.scenario.n_tasks == result.n_tasks == 2
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


def schema3_doc() -> dict:
    """The document of ``make_result()`` as schema 3 wrote it: no curve."""
    doc = make_result().to_json()
    del doc["curve"]
    doc["schema_version"] = 3
    return doc


def test_migrate_3_to_4_is_pure_and_adds_a_null_curve():
    old = schema3_doc()
    before = copy.deepcopy(old)
    new = migrations.migrate_3_to_4(old)
    assert old == before, "the migration changed its input"
    assert new == {**make_result().to_json(), "migrated_from": 3}
    assert new["curve"] is None and new["spec_hash"] == old["spec_hash"]
    assert schema.parse(old) == make_result(migrated_from=3)
    assert migrations.migrate_3_to_4({**old, "migrated_from": 1})["migrated_from"] == 1
    with pytest.raises(ResultsError, match="curve"):
        migrations.migrate_3_to_4({**old, "curve": None})


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
    (("scenario", "name"), "split-digits", "unknown keys in scenario: name (schema 4 has no "
                                           "such field)"),
    (("group", "size"), 2, "unknown keys in group: size"),
    (("hyperparameters",), {}, "unknown keys in the document: hyperparameters"),
    (("scenario", "tasks"), [], "scenario.tasks must list at least one task"),
    (("scenario", "tasks", 0, "classes"), [0, -1], "scenario.tasks[0].classes must be a list "
                                                   "of class ids, got [0, -1]"),
    (("scenario", "tasks", 1), {"classes": [2]}, "missing keys in scenario.tasks[1]: "
                                                 "source_classes"),
    (("scenario", "input_shape"), [1, 0], "scenario.input_shape must be a list of positive "
                                          "integers or null"),
    (("identity", "argv"), ["run", 1], "identity.argv must be a list of strings or null"),
    (("identity", "host"), "", "identity.host must be a non-empty string"),
    (("identity", "git"), KeyError, "missing keys in identity: git"),
    (("error",), 1, "error must be a JSON object or null, got 1"),
    (("spec", "validation"), 0.1, "spec.split must be \"validation\""),
    (("migrated_from",), 7, "migrated_from must be one of 1, 2, 3, got 7"),
    (("train_time_s",), [1.0], "train_time_s must have 2 entries, got 1"),
    (("scenario", "setting"), "online", "scenario.setting must be one of class, task, domain"),
    (("scenario", "primary_metric"), "speed", "scenario.primary_metric must be one of acc"),
    (("scenario", "data", "subset"), "no", "scenario.data.subset must be true or false"),
    (("identity", "cpu_count"), True, "identity.cpu_count must be an integer >= 1 or null"),
    (("identity", "git", "dirty"), "yes", "identity.git.dirty must be true or false or null"),
    (("started_at",), "yesterday", "started_at must be an ISO 8601 time"),
    (("peak_host_memory_scope",), "machine", "peak_host_memory_scope must be one of group"),
    (("schema_version",), 5, "schema_version 5 is newer than this clbench reads (4)"),
    (("schema_version",), "3", "schema_version must be an integer"),
    (("schema_version",), 0, "schema_version 0 is not a clbench result schema"),
])
def test_validate_names_what_is_wrong(path, value, message):
    doc = make_result().to_json()
    _set(doc, path, value)
    problem = schema.validate(doc)
    assert problem is not None and message in problem, problem
    with pytest.raises(ResultsError, match="."):
        schema.parse(doc)


def test_a_new_optional_key_is_one_field():
    """Keys, checks, reading and writing all derive from the fields: one declared field is a
    new optional key that older documents lack (read as None) and a bad value is named."""
    from clbench import records

    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Identity(RunIdentity):
        process_setup_s: float | None = records.key(records.Seconds(), optional=True)

    record = records.Record(Identity)
    old = make_result().identity.to_json()
    record.check(old, "identity")
    assert record.load(old) == Identity(**dataclasses.asdict(make_result().identity)
                                        | {"git": make_result().identity.git,
                                           "argv": ("run",)})
    new = {**old, "process_setup_s": 1.5}
    record.check(new, "identity")
    assert record.load(new).process_setup_s == 1.5 and record.dump(record.load(new)) == new
    with pytest.raises(records.Invalid, match="identity.process_setup_s must be a "
                                              "non-negative number of seconds or null, got -1"):
        record.check({**old, "process_setup_s": -1}, "identity")
    with pytest.raises(records.UnknownKeys, match="unknown keys in identity: colour"):
        record.check({**new, "colour": "red"}, "identity")


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


def schema2_doc() -> dict:
    """The document of ``make_result()`` as schema 2 wrote it: with the derivable keys."""
    doc = make_result().to_json()
    del doc["curve"]  # schema 4's
    doc["schema_version"] = 2
    doc["hyperparameters"] = {"strategy": {"epochs": 1, "lr": 0.01},
                              "scenario": {"n_tasks": 2, "setting": "task"}}
    doc["scenario"].update(name="split-digits", version="1", backbone="mlp", n_tasks=2)
    doc["group"]["size"] = 2
    return doc


def schema1_doc() -> dict:
    """A schema-1 document as clbench wrote it before component versions existed."""
    doc = schema2_doc()
    for key in ("strategy_version", "backbone", "backbone_version"):
        del doc["spec"][key]
    doc["schema_version"] = 1
    doc["spec_hash"] = "0123456789abcdef0123"  # schema 1 hashed a spec without versions
    for key in ("setup_time_s", "peak_host_memory_scope", "group", "eval_time_s"):
        del doc[key]
    del doc["scenario"]["input_shape"]
    del doc["identity"]["argv"]
    return doc


def test_migrations_are_registered_in_order():
    assert migrations.MIGRATIONS == {1: migrations.migrate_1_to_2, 2: migrations.migrate_2_to_3,
                                     3: migrations.migrate_3_to_4}
    assert set(migrations.MIGRATIONS) == set(range(1, schema.SCHEMA_VERSION))


def test_migrate_1_to_2_is_pure_and_completes_the_spec():
    old = schema1_doc()
    before = copy.deepcopy(old)
    new = migrations.migrate_1_to_2(old)
    assert old == before, "the migration changed its input"
    assert new["schema_version"] == 2 and new["migrated_from"] == 1
    assert new["spec"]["strategy_version"] == "1" and new["spec"]["backbone_version"] == "1"
    assert new["spec"]["backbone"] == old["scenario"]["backbone"] == "mlp"
    assert new["spec_hash"] == RunSpec.from_json(new["spec"]).hash == SPEC.hash
    assert new["spec_hash"] != old["spec_hash"]
    assert new["setup_time_s"] is None and new["group"] is None
    assert new["eval_time_s"] == [None, None, None]
    assert new["scenario"]["input_shape"] is None and new["identity"]["argv"] is None
    assert schema.validate(migrations.migrate_3_to_4(migrations.migrate_2_to_3(new))) is None
    result = schema.parse(old)
    assert result.migrated_from == 1 and result.spec == SPEC
    assert result.to_json()["migrated_from"] == 1
    assert schema.parse(result.to_json()) == result  # a migrated document stays readable


def test_migrate_keeps_versions_a_late_schema_1_writer_recorded():
    old = schema2_doc()
    old["schema_version"] = 1
    old["spec"]["strategy_version"] = "3"
    new = migrations.migrate_1_to_2(old)
    assert new["spec"]["strategy_version"] == "3"
    assert new["spec_hash"] == RunSpec.from_json(new["spec"]).hash != SPEC.hash


def test_migrate_2_to_3_is_pure_and_drops_the_derivable_keys():
    old = schema2_doc()
    before = copy.deepcopy(old)
    new = migrations.migrate_2_to_3(old)
    assert old == before, "the migration changed its input"
    current = make_result().to_json()
    del current["curve"]  # schema 4's
    assert new == {**current, "schema_version": 3, "migrated_from": 2}
    assert schema.parse(old) == make_result(migrated_from=2)
    # a document migrated from schema 1 keeps the version it was read from
    assert migrations.migrate_2_to_3({**old, "migrated_from": 1})["migrated_from"] == 1


@pytest.mark.parametrize("path,value,message", [
    (("scenario", "name"), "split-mnist", "scenario.name 'split-mnist' disagrees with "
                                          "spec.scenario 'split-digits'"),
    (("scenario", "version"), "2", "scenario.version '2' disagrees with spec.scenario_version"),
    (("scenario", "backbone"), "cnn", "scenario.backbone 'cnn' disagrees with spec.backbone"),
    (("scenario", "n_tasks"), 3, "scenario.n_tasks 3 disagrees with the 2 tasks scenario.tasks "
                                 "lists"),
    (("group", "size"), 3, "group.size 3 disagrees with the 2 seeds group.seeds lists"),
    (("hyperparameters", "strategy", "lr"), 0.1, "hyperparameters {'strategy': {'epochs': 1, "),
    (("scenario", "n_tasks"), KeyError, "missing keys scenario.n_tasks"),
    (("hyperparameters",), KeyError, "missing keys hyperparameters"),
])
def test_schema_2_documents_whose_derivable_keys_disagree_are_refused(path, value, message):
    """Schema 2 checked each stored copy against its source; migrating keeps refusing them."""
    doc = schema2_doc()
    _set(doc, path, value)
    with pytest.raises(ResultsError, match="not a valid schema-2 result: ") as info:
        schema.parse(doc)
    assert message in str(info.value), info.value


def test_bad_schema_1_documents_are_named():
    with pytest.raises(ResultsError, match="missing keys spec, spec_hash"):
        schema.parse({"schema_version": 1, "status": "ok", "accuracy_matrix": [[0.1], [0.2]],
                      "param_counts": [1, 1], "identity": {}, "scenario": {}})
    old = schema1_doc()
    old["accuracy_matrix"][1][0] = True
    with pytest.raises(ResultsError, match=r"accuracy_matrix\[1\]\[0\] .* got true "
                                           r"\(after migrating from schema 1\)"):
        schema.parse(old)
    old = schema1_doc()
    old["spec"]["seed"] = "one"
    with pytest.raises(ResultsError, match=r"spec.seed must be an integer >= 0, got \"one\" "
                                           r"\(after migrating from schema 1\)"):
        schema.parse(old)
    with pytest.raises(ResultsError, match="expected a JSON object"):
        schema.parse(["not", "a", "document"])


def test_reading_results_never_imports_torch():
    code = ("import sys, json; from clbench import schema, results; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
