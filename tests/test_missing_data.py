"""Runs skipped for missing data: one exit rule for a single run and a suite (2 unless
``--allow-missing-data``), and the leaderboard lists the skipped scenarios as "not run: data
missing" (the run leaves a record in the store; a later result of the same spec supersedes it).

Offline, at the smoke budget: split-digits has its data (scikit-learn's bundled digits),
split-mnist does not (an empty ``--data-dir``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clbench import api, cli
from clbench.results import NOT_RUN_DIR, ResultsStore


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("CLBENCH_OFFLINE", "1")


def clbench(capsys, *args) -> tuple[int, str, str]:
    capsys.readouterr()
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def suite_file(tmp_path: Path) -> Path:
    suite = tmp_path / "mixed.toml"
    suite.write_text('budget = "smoke"\nseeds = [0]\n'
                     'scenarios = ["split-digits", "split-mnist:setting=task"]\n'
                     'strategies = ["naive"]\n')
    return suite


@pytest.fixture(scope="module")
def mixed_store(tmp_path_factory):
    """A suite with one scenario that has data and one that has not, run once."""
    tmp = tmp_path_factory.mktemp("mixed")
    empty = tmp / "empty"
    empty.mkdir()
    results = tmp / "results"
    code = cli.main(["run", "--suite", str(suite_file(tmp)), "--device", "cpu",
                     "--data-dir", str(empty), "--no-download", "--results", str(results)])
    return code, results, empty


def test_a_suite_that_skips_runs_for_missing_data_exits_2(mixed_store):
    code, results, _ = mixed_store
    assert code == 2
    loaded = ResultsStore(results).load()
    assert [r.spec.scenario for r in loaded.runs] == ["split-digits"]  # the rest still ran
    (record,) = loaded.not_run
    assert record.spec["scenario"] == "split-mnist" and record.reason == "data missing"
    assert "MNIST" in record.message


def test_allow_missing_data_exits_0_and_still_records(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = clbench(capsys, "run", "--suite", suite_file(tmp_path), "--device", "cpu",
                           "--data-dir", empty, "--no-download", "--results", tmp_path / "r",
                           "--allow-missing-data")
    assert code == 0, err
    assert "not run, data missing" in err
    assert len(ResultsStore(tmp_path / "r").load().not_run) == 1


def test_the_exit_rule_is_the_same_for_one_run_and_a_suite():
    assert api.RunSummary(planned=1, without_data=1).exit_code == 2
    assert api.RunSummary(planned=9, ran=8, without_data=1).exit_code == 2  # was 0
    assert api.RunSummary(planned=9, ran=8, skipped=0, without_data=1,
                          allow_missing_data=True).exit_code == 0
    assert api.RunSummary(planned=9, ran=8, failed=1, without_data=1).exit_code == 1
    assert api.RunSummary(planned=2, ran=2).exit_code == 0


def test_the_leaderboard_lists_skipped_scenarios_as_not_run(mixed_store, capsys):
    _, results, _ = mixed_store
    code, md, _ = clbench(capsys, "report", "--results", results, "--markdown", "-")
    assert code == 0
    section = md.split("## Not run: data missing", 1)[1].split("\n## ", 1)[0]
    row = next(line for line in section.splitlines() if line.startswith("| split-mnist"))
    assert "not run: data missing" in row and "naive" in row
    assert "## split-digits" in md  # the scenario that ran is a table as before
    code, out, _ = clbench(capsys, "report", "--results", results, "--json", "-")
    (entry,) = json.loads(out)["leaderboards"]["not_run"]
    assert entry["scenario"].startswith("split-mnist [task]") and entry["strategies"] == ["naive"]
    html = api.report(results, {"html": "-"})["html"]
    assert 'id="not-run"' in html and "not run: data missing" in html


def test_a_result_of_the_same_spec_supersedes_the_record(tmp_path):
    from clbench.spec import make_specs

    store = ResultsStore(tmp_path)
    (spec,) = make_specs("split-digits", "naive", [0], "smoke")
    store.record_not_run(spec, "split-digits: data missing", "2026-01-01T00:00:00+00:00")
    assert len(store.load().not_run) == 1
    summary = api.run([spec], tmp_path, device="cpu")
    assert summary.exit_code == 0 and summary.ran == 1
    assert store.load().not_run == []
    assert not (tmp_path / NOT_RUN_DIR / f"{spec.hash}.json").exists()


def test_a_corrupt_not_run_record_is_named_not_trusted(tmp_path):
    folder = tmp_path / NOT_RUN_DIR
    folder.mkdir(parents=True)
    (folder / ("0" * 20 + ".json")).write_text('{"kind": "clbench-not-run", "spec": 3}')
    loaded = ResultsStore(tmp_path).load()
    assert loaded.not_run == []
    assert any("not a clbench not-run record" in p for p in loaded.problems)
