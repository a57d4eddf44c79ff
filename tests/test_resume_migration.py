"""Resuming across the schema migration: a store of schema-1 documents, named by their old
hashes (of specs without component versions), counts as done for the equivalent specs of this
clbench, so rerunning a suite after upgrading does not redo every run."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
from pathlib import Path

import pytest

from clbench import api, cli
from clbench.reports.tables import aggregate
from clbench.results import ResultsStore
from clbench.schema import RunError
from clbench.spec import RunSpec, make_specs

GOLDEN = Path(__file__).resolve().parent / "golden"
_spec = importlib.util.spec_from_file_location("golden_make_results",
                                               GOLDEN / "make_results.py")
make_results = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_results)

# pnn: a strategy still at version 1, the version schema-1 documents migrate to
SPECS = make_specs("split-digits:setting=task", "pnn", [0, 1, 2], "smoke")


def schema_1_hash(spec: dict) -> str:
    """The spec hash of schema-1 clbench: SHA-256 of the canonical JSON of a spec that has no
    strategy_version, backbone or backbone_version."""
    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:20]


def write_schema_1(root: Path, spec: RunSpec, failed: bool = False) -> str:
    """A schema-1 document of ``spec`` as clbench wrote it before versions; its file name."""
    T = 5
    R = [[0.1] * T] + [[0.9] * T for _ in range(T)]
    if failed:
        R[2:] = [[None] * T for _ in range(T - 1)]
    setting = dict(spec.scenario_params)["setting"]
    base = make_results.run_result(
        spec.scenario, setting, {}, spec.strategy, {}, spec.seed, spec.budget, R,
        group_seeds=(0, 1, 2), status="failed" if failed else "ok",
        error=RunError(type="RuntimeError", message="boom", traceback="...") if failed
        else None)
    result = dataclasses.replace(base, spec=spec, scenario=dataclasses.replace(
        base.scenario, params=dict(spec.scenario_params)))
    doc = result.to_json()
    # schema 1 stored what schema 3 derives
    doc["hyperparameters"] = result.hyperparameters
    doc["scenario"].update(name=spec.scenario, version=spec.scenario_version,
                           backbone=spec.backbone, n_tasks=T)
    doc["group"]["size"] = 3
    del doc["curve"]  # schema 4's
    for key in ("strategy_version", "backbone", "backbone_version"):
        del doc["spec"][key]
    del doc["setup_time_s"], doc["peak_host_memory_scope"]  # schema 1 did not require them
    doc["schema_version"] = 1
    doc["spec_hash"] = schema_1_hash(doc["spec"])
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{doc['spec_hash']}.json").write_text(json.dumps(doc, indent=1))
    return doc["spec_hash"]


@pytest.fixture
def old_store(tmp_path) -> Path:
    root = tmp_path / "results"
    for spec in SPECS:
        write_schema_1(root, spec, failed=spec.seed == 2)
    return root


def test_migrated_documents_count_as_completed_under_their_new_hash(old_store):
    store = ResultsStore(old_store)
    names = {p.stem for p in old_store.glob("*.json")}
    assert names.isdisjoint(s.hash for s in SPECS)  # the files are named by the old hashes
    assert store.completed_hashes() == {SPECS[0].hash, SPECS[1].hash}
    assert store.completed(SPECS[0].hash) and store.completed(SPECS[1].hash)
    assert not store.completed(SPECS[2].hash)  # a failed run is retried, as before
    assert not any(store.completed(name) for name in names)


def test_a_suite_rerun_after_upgrading_runs_only_what_is_missing(old_store, capsys):
    before = {p.name: p.read_bytes() for p in old_store.glob("*.json")}
    summary = api.run(SPECS[:2], results=old_store, device="cpu")
    assert (summary.skipped, summary.ran) == (2, 0)
    capsys.readouterr()
    code = cli.main(["run", "--scenario", "split-digits:setting=task", "--strategy", "pnn",
                     "--seeds", "0-2",
                     "--budget", "smoke", "--device", "cpu", "--results", str(old_store)])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 0, err
    assert "3 planned: 1 ran, 2 already done, 0 failed" in err
    after = {p.name: p.read_bytes() for p in old_store.glob("*.json")}
    assert {n: b for n, b in after.items() if n in before} == before  # never rewritten
    assert set(after) - set(before) == {f"{SPECS[2].hash}.json"}
    loaded = ResultsStore(old_store).load()
    assert not loaded.problems
    (table,) = aggregate(loaded.runs).scenarios
    (pnn,) = table.cells
    assert (pnn.n_ok, pnn.n_total) == (3, 3)  # the rerun's ok seed 2 wins over the failed
