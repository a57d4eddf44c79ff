"""End-to-end tests of the ``clbench`` command line: interrupt and resume, bad input, failing and
diverging strategies, a corrupt results store, the JSON report, listings and dry runs.

Everything runs offline on scikit-learn's bundled digits at the ``smoke`` budget. Commands run
in-process through ``clbench.cli.main`` (stdout/stderr captured with capsys) except the interrupt
test, which needs a real process to send SIGINT to.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from clbench import cli

REPO = Path(__file__).resolve().parents[1]
BOOM = "clbench_test_plugins:Boom"
ALL_SCENARIOS = ("split-mnist", "permuted-mnist", "split-cifar10", "split-cifar100",
                 "split-digits", "permuted-digits")
SUMMARY = re.compile(r"(\d+) planned: (\d+) ran, (\d+) already done, (\d+) failed, (\d+) diverged")
# One real run shared by the report and corrupt-store tests: 2 runs (seeds 0 and 1), 5 tasks.
BASE_RUN = ["run", "--scenario", "split-digits", "--strategy", "naive", "--seeds", "0,1",
            "--budget", "smoke", "--device", "cpu"]


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("CLBENCH_OFFLINE", "1")


def clbench(capsys, *args) -> tuple[int, str, str]:
    """Run ``clbench ARGS`` in this process: (exit status, stdout, stderr)."""
    capsys.readouterr()
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def flat(text: str) -> str:
    """Whitespace collapsed (stderr goes through rich, which may wrap long lines)."""
    return " ".join(text.split())


def summary(err: str) -> dict[str, int]:
    match = SUMMARY.search(flat(err))
    assert match, f"no summary line in stderr:\n{err}"
    return dict(zip(("planned", "ran", "done", "failed", "diverged"), map(int, match.groups()),
                    strict=True))


def stored(results: Path) -> list[Path]:
    """The result documents in a store (not temporary files)."""
    return sorted(p for p in results.glob("*.json") if not p.name.startswith("."))


def load_all(results: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in stored(results)}


def dry_run_hashes(capsys, *args) -> list[str]:
    code, out, _ = clbench(capsys, *args, "--dry-run")
    assert code == 0
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def assert_bad_input(code: int, out: str, err: str, *expected: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err
    assert err.startswith("error: "), err
    assert sum(line.startswith("error:") for line in err.splitlines()) == 1, err
    assert out == ""
    for text in expected:
        assert text in flat(err), f"{text!r} not in stderr:\n{err}"


@pytest.fixture(scope="module")
def base_store(tmp_path_factory) -> Path:
    """A results store written by one real run (naive on split-digits, seeds 0 and 1)."""
    results = tmp_path_factory.mktemp("base") / "results"
    assert cli.main([*BASE_RUN, "--results", str(results)]) == 0
    assert len(stored(results)) == 2
    return results


@pytest.fixture
def store(base_store, tmp_path) -> Path:
    """A private copy of the base store, free to modify."""
    return Path(shutil.copytree(base_store, tmp_path / "results"))


# ---------------------------------------------------------------------------------------------
# 1. Interrupt and resume


def test_interrupt_then_resume_runs_each_planned_run_exactly_once(tmp_path, capsys):
    suite = tmp_path / "suite.toml"
    suite.write_text(
        'description = "interrupt test"\n'
        'budget = "smoke"\n'
        "seeds = [0, 1]\n"
        'scenarios = ["split-digits", { name = "permuted-digits", params = { n_tasks = 3 } }]\n'
        'strategies = ["naive", "joint"]\n'
    )
    results = tmp_path / "results"
    args = ["run", "--suite", str(suite), "--results", str(results), "--group-size", "1",
            "--device", "cpu"]
    planned = dry_run_hashes(capsys, *args)
    assert len(planned) == len(set(planned)) == 8  # 2 scenarios x 2 strategies x 2 seeds

    env = {**os.environ, "CLBENCH_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    # A shell that starts this test in the background ignores SIGINT, and the child would
    # inherit that: give it the default disposition, as an interactive Ctrl-C would find.
    proc = subprocess.Popen([sys.executable, "-m", "clbench.cli", *args], cwd=REPO, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 180
        while not stored(results):
            assert proc.poll() is None, f"exited before any result:\n{proc.communicate()[1]}"
            assert time.monotonic() < deadline, "no result within 180 s"
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert "interrupted" in err and "run the same command again to resume" in flat(err)
    assert not list(results.glob(".tmp-*")), "a temporary file was left behind"
    before = {p.name: p.read_bytes() for p in stored(results)}
    assert 1 <= len(before) < len(planned), "the interrupt came too late to test resuming"
    started = {}
    for name, data in before.items():
        doc = json.loads(data)
        assert name == f"{doc['spec_hash']}.json" and doc["spec_hash"] in planned
        assert doc["status"] == "ok"
        started[name] = doc["started_at"]

    code, _, err = clbench(capsys, *args)
    assert code == 0, err
    assert summary(err) == {"planned": 8, "ran": 8 - len(before), "done": len(before),
                            "failed": 0, "diverged": 0}
    assert sorted(p.stem for p in stored(results)) == sorted(planned)
    assert not list(results.glob(".tmp-*"))
    for name, data in before.items():  # kept, not run a second time
        assert (results / name).read_bytes() == data
        assert json.loads((results / name).read_text())["started_at"] == started[name]
    assert all(doc["status"] == "ok" for doc in load_all(results).values())

    code, _, err = clbench(capsys, *args)  # a third time: nothing left to do
    assert code == 0
    assert summary(err)["ran"] == 0 and summary(err)["done"] == 8


# ---------------------------------------------------------------------------------------------
# 2. Bad input: exit status 2, one `error:` line naming the problem (and a hint), no traceback

RUN = ["run", "--budget", "smoke", "--device", "cpu"]
BAD_INPUT = {
    "unknown scenario": (
        [*RUN, "--scenario", "split-mnsit", "--strategy", "naive"],
        ["unknown scenario 'split-mnsit'", "did you mean", "'split-mnist'"]),
    "unknown strategy": (
        [*RUN, "--scenario", "split-digits", "--strategy", "naiv"],
        ["unknown strategy 'naiv'", "did you mean", "'naive'"]),
    "unknown parameter": (
        [*RUN, "--scenario", "split-digits", "--strategy", "naive:lrr=0.1"],
        ["has no parameter 'lrr'", "valid parameters:", "lr (float", "epochs (int"]),
    "wrong type": (
        [*RUN, "--scenario", "split-digits", "--strategy", "naive:lr=abc"],
        ["parameter 'lr' must be a number", "'abc'"]),
    "bad choice": (
        [*RUN, "--scenario", "split-digits:setting=foo", "--strategy", "naive"],
        ["parameter 'setting' must be one of", "'class', 'task', 'domain'", "'foo'"]),
    "bad seeds": (
        [*RUN, "--scenario", "split-digits", "--strategy", "naive", "--seeds", "x"],
        ["cannot read seeds 'x'", "0,1,2 or 0-4"]),
    "unknown suite": (
        [*RUN, "--suite", "no-such-suite"],
        ["no suite named 'no-such-suite'", "built-in suites:", "smoke"]),
    "missing module": (
        [*RUN, "--scenario", "split-digits", "--strategy", "no_such_module_xyz:Thing"],
        ["cannot import module 'no_such_module_xyz'", "PYTHONPATH"]),
    "missing class": (
        [*RUN, "--scenario", "split-digits", "--strategy", "clbench_test_plugins:Nope"],
        ["has no attribute 'Nope'", "clbench_test_plugins:Nope"]),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input(case, tmp_path, capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "tests"))
    args, expected = BAD_INPUT[case]
    results = tmp_path / "results"
    code, out, err = clbench(capsys, *args, "--results", results)
    assert_bad_input(code, out, err, *expected)
    assert not results.exists(), "bad input must not write results"


def test_bad_input_invalid_suite_toml(tmp_path, capsys):
    suite = tmp_path / "broken.toml"
    suite.write_text('scenarios = ["split-digits"\nstrategies = \n')
    code, out, err = clbench(capsys, *RUN, "--suite", suite, "--results", tmp_path / "r")
    assert_bad_input(code, out, err, "broken.toml", "is not valid TOML")
    assert not (tmp_path / "r").exists()


def test_bad_input_missing_data_names_the_expected_path(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    results = tmp_path / "results"
    code, out, err = clbench(capsys, *RUN, "--scenario", "split-mnist", "--strategy", "naive",
                             "--data-dir", empty, "--no-download", "--results", results)
    assert code == 2, err
    assert "Traceback" not in err and out == ""
    assert "data missing" in err and "MNIST" in err
    squeezed = "".join(err.split())
    assert str(empty / "MNIST" / "raw" / "train-images-idx3-ubyte") in squeezed
    assert "--no-download" in squeezed  # the hint says how to fix it
    assert summary(err) == {"planned": 1, "ran": 0, "done": 0, "failed": 0, "diverged": 0}
    assert not results.exists() or not stored(results)
    assert not any(empty.iterdir()), "nothing may be written to the data folder"


def test_bad_input_report_on_missing_results_dir(tmp_path, capsys):
    missing = tmp_path / "nowhere"
    code, out, err = clbench(capsys, "report", "--results", missing, "--json", "-")
    assert_bad_input(code, out, err, "no results directory at", "clbench run")
    assert str(missing) in "".join(err.split())
    assert not missing.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_bad_input_cuda_unavailable(tmp_path, capsys):
    results = tmp_path / "results"
    code, out, err = clbench(capsys, *RUN, "--scenario", "split-digits", "--strategy", "naive",
                             "--device", "cuda", "--results", results)
    assert_bad_input(code, out, err, "CUDA is not available", "--device cpu")
    assert not results.exists()


def test_error_message_keeps_long_paths_on_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    missing = tmp_path / ("long-directory-name-" * 8) / "suite.toml"
    code, _, err = clbench(capsys, *RUN, "--suite", missing)
    assert code == 2
    assert err.splitlines()[0] == f"error: no suite named {str(missing)!r} and no such file"


def test_bad_input_plugin_module_that_fails_to_import(tmp_path, capsys, monkeypatch):
    (tmp_path / "clbench_broken_plugin.py").write_text('raise RuntimeError("plugin broken")\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    code, out, err = clbench(capsys, *RUN, "--scenario", "split-digits",
                             "--strategy", "clbench_broken_plugin:Thing", "--dry-run")
    assert_bad_input(code, out, err, "clbench_broken_plugin", "plugin broken")


def test_bad_input_class_that_is_not_a_strategy(capsys):
    code, out, err = clbench(capsys, *RUN, "--scenario", "split-digits",
                             "--strategy", "clbench.api:RunSummary", "--dry-run")
    assert_bad_input(code, out, err, "clbench.api:RunSummary")


# ---------------------------------------------------------------------------------------------
# 3. A failing strategy is a failed result, not a crash; it is retried on rerun


def test_failing_strategy_is_recorded_and_retried(tmp_path, capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "tests"))
    results = tmp_path / "results"
    # Boom first: its failure must not stop the runs after it.
    args = [*RUN, "--scenario", "split-digits", "--strategy", BOOM, "--strategy", "naive",
            "--seeds", "0,1", "--results", results]
    code, _, err = clbench(capsys, *args)
    assert code == 1, err
    assert "Traceback" not in err
    assert "RuntimeError: boom" in flat(err)
    assert summary(err) == {"planned": 4, "ran": 4, "done": 0, "failed": 2, "diverged": 0}

    docs = load_all(results)
    assert len(docs) == 4
    failed = {h: d for h, d in docs.items() if d["spec"]["strategy"] == BOOM}
    ok = {h: d for h, d in docs.items() if d["spec"]["strategy"] == "naive"}
    assert len(failed) == len(ok) == 2
    for doc in failed.values():
        assert doc["status"] == "failed"
        assert doc["error"]["type"] == "RuntimeError" and doc["error"]["message"] == "boom"
        assert "boom" in doc["error"]["traceback"]
        assert doc["diverged_after_task"] is None
        R = doc["accuracy_matrix"]
        assert len(R) == 6 and all(len(row) == 5 for row in R)
        assert all(isinstance(v, float) for row in R[:2] for v in row)  # before, after task 1
        assert all(v is None for row in R[2:] for v in row)
    for doc in ok.values():
        assert doc["status"] == "ok" and doc["error"] is None
        assert all(isinstance(v, float) for row in doc["accuracy_matrix"] for v in row)

    ok_bytes = {h: (results / f"{h}.json").read_bytes() for h in ok}
    failed_bytes = {h: (results / f"{h}.json").read_bytes() for h in failed}
    code, _, err = clbench(capsys, *args)
    assert code == 1, err
    assert summary(err) == {"planned": 4, "ran": 2, "done": 2, "failed": 2, "diverged": 0}
    for h, data in ok_bytes.items():
        assert (results / f"{h}.json").read_bytes() == data  # not rerun
    for h, data in failed_bytes.items():
        assert (results / f"{h}.json").read_bytes() != data  # rerun, replaced
        assert json.loads((results / f"{h}.json").read_text())["status"] == "failed"
    assert len(stored(results)) == 4


# ---------------------------------------------------------------------------------------------
# 4. Divergence is a result (exit 0), not a failure


def test_divergence_is_recorded_with_exit_status_0(tmp_path, capsys):
    results = tmp_path / "results"
    args = [*RUN, "--scenario", "split-digits", "--strategy", "naive:lr=1e30", "--seeds", "0",
            "--results", results]
    code, _, err = clbench(capsys, *args)
    assert code == 0, err
    assert summary(err) == {"planned": 1, "ran": 1, "done": 0, "failed": 0, "diverged": 1}
    (doc,) = load_all(results).values()
    assert doc["status"] == "diverged" and doc["error"] is None
    after = doc["diverged_after_task"]
    assert isinstance(after, int) and 1 <= after <= 5
    R = doc["accuracy_matrix"]
    assert all(isinstance(v, float) for row in R[:after] for v in row)
    assert all(v is None for row in R[after:] for v in row)

    code, _, err = clbench(capsys, *args)  # a diverged run is done: not rerun
    assert code == 0
    assert summary(err)["ran"] == 0 and summary(err)["done"] == 1


# ---------------------------------------------------------------------------------------------
# 5. A corrupt results store


def test_report_lists_corrupt_files_as_problems(store, tmp_path, capsys):
    good = {p.stem for p in stored(store)}
    bad, wrong = "b" * 20 + ".json", "c" * 20 + ".json"
    (store / bad).write_text("this is {not json")
    (store / wrong).write_text(json.dumps({"hello": "world", "schema_version": 1}))
    (store / "notes.json").write_text("{}")  # not a result's name: mentioned, not a problem
    out_file = tmp_path / "out.json"
    code, out, err = clbench(capsys, "report", "--results", store, "--json", out_file)
    # the report is written from the readable documents; exit 2 says some were skipped
    assert code == 2, err
    assert out == ""
    report = json.loads(out_file.read_text())
    assert {run["spec_hash"] for run in report["runs"]} == good
    problems = report["problems"]
    assert len(problems) == 2
    assert any(bad in p for p in problems)
    assert any(wrong in p and "missing keys" in p for p in problems)
    for name in (bad, wrong):
        assert f"skipped: {store / name}" in flat(err)
    assert "2 document(s) skipped" in flat(err)
    assert "ignored 1 file(s)" in flat(err) and "notes.json" in flat(err)


def test_run_replaces_a_corrupt_result(store, capsys):
    docs = load_all(store)
    corrupt, intact = sorted(docs, key=lambda h: docs[h]["spec"]["seed"])
    intact_bytes = (store / f"{intact}.json").read_bytes()
    (store / f"{corrupt}.json").write_text('{"truncated": ')
    code, _, err = clbench(capsys, *BASE_RUN, "--results", store)
    assert code == 0, err
    assert summary(err) == {"planned": 2, "ran": 1, "done": 1, "failed": 0, "diverged": 0}
    doc = json.loads((store / f"{corrupt}.json").read_text())
    assert doc["spec_hash"] == corrupt and doc["status"] == "ok"
    assert (store / f"{intact}.json").read_bytes() == intact_bytes
    assert len(stored(store)) == 2


def test_report_survives_a_document_with_wrong_types(store, capsys):
    doc = json.loads(stored(store)[0].read_text())
    doc["scenario"] = ["not", "an", "object"]
    odd = "d" * 20 + ".json"
    (store / odd).write_text(json.dumps(doc))
    code, out, err = clbench(capsys, "report", "--results", store, "--json", "-")
    assert code == 2, err
    assert any(odd in p for p in json.loads(out)["problems"])


# ---------------------------------------------------------------------------------------------
# 6. The JSON report's metrics follow from the accuracy matrix


def _expected_metrics(R: list[list[float]], counts: list[int]) -> dict[str, float]:
    T = len(R[0])
    diag = [R[i][i - 1] for i in range(1, T + 1)]  # R[i][i]: task i just after learning it
    return {
        "acc": sum(R[T]) / T,
        "bwt": sum(R[T][j] - R[j + 1][j] for j in range(T - 1)) / (T - 1),
        "fwt": sum(R[j][j] - R[0][j] for j in range(1, T)) / (T - 1),  # R[i-1][i] - b_i
        "forgetting": sum(max(R[i][j] for i in range(1, T)) - R[T][j]
                          for j in range(T - 1)) / (T - 1),
        "learning_accuracy": sum(diag) / T,
        "param_growth": counts[-1] / counts[0],
    }


def test_report_json_to_stdout_has_metrics_consistent_with_the_matrix(base_store, capsys):
    code, out, err = clbench(capsys, "report", "--results", base_store, "--json", "-")
    assert code == 0, err
    report = json.loads(out)
    assert report["problems"] == []
    assert len(report["runs"]) == 2
    assert {run["spec"]["seed"] for run in report["runs"]} == {0, 1}
    for run in report["runs"]:
        R = run["accuracy_matrix"]
        assert len(R) == 6 and all(v is not None for row in R for v in row)
        expected = _expected_metrics(R, run["param_counts"])
        assert set(expected) <= set(run["metrics"])
        for name, value in expected.items():
            assert run["metrics"][name] == pytest.approx(value, abs=1e-9), name
        assert run["metrics"]["param_growth"] == 1.0  # naive never grows
        assert math.isclose(run["metrics"]["acc"], sum(R[-1]) / len(R[-1]))
        assert run["status"] == "ok" and run["spec_hash"] in {p.stem for p in stored(base_store)}


# ---------------------------------------------------------------------------------------------
# 7. Listings


def test_list_all_text(capsys):
    code, out, _ = clbench(capsys, "list")
    assert code == 0
    sections: dict[str, set[str]] = {}
    current = None
    for line in out.splitlines():
        if line and not line.startswith(" ") and line.endswith(":"):
            current = sections.setdefault(line[:-1], set())
        elif line.startswith("  ") and not line.startswith("      "):
            current.add(line.split()[0])
    assert set(sections) == {"scenarios", "strategies", "backbones", "reporters", "executors",
                             "trackers", "suites", "budgets"}
    assert {"json", "markdown", "html", "csv", "latex"} <= sections["reporters"]
    assert {"tensorboard", "mlflow"} <= sections["trackers"]
    assert {"local", "ray"} <= sections["executors"]
    assert sections["backbones"] == {"mlp", "convnet", "resnet18-reduced", "mlp-1x256",
                                     "mlp-2x256", "mlp-2x100", "mlp-2x1000"}
    assert {"naive", "joint"} <= sections["strategies"]
    assert set(ALL_SCENARIOS) <= sections["scenarios"]
    assert {"smoke", "default", "paper"} <= sections["budgets"]
    assert {"smoke", "demo", "standard"} <= sections["suites"]


def test_list_json(capsys):
    code, out, _ = clbench(capsys, "list", "strategies", "--json")
    assert code == 0
    listing = json.loads(out)
    assert list(listing) == ["strategies"]
    by_name = {s["name"]: s for s in listing["strategies"]}
    assert {"naive", "joint"} <= set(by_name)
    assert "lr" in {p[0] for p in by_name["naive"]["params"]}
    assert "reinit" in {p[0] for p in by_name["joint"]["params"]}

    code, out, _ = clbench(capsys, "list", "scenarios", "--json")
    assert code == 0
    assert set(ALL_SCENARIOS) <= {s["name"] for s in json.loads(out)["scenarios"]}


# ---------------------------------------------------------------------------------------------
# 8. Dry run


def test_dry_run_prints_one_line_per_run_and_writes_nothing(tmp_path, capsys):
    results = tmp_path / "results"
    code, out, err = clbench(
        capsys, *RUN, "--scenario", "split-digits", "--scenario", "permuted-digits:n_tasks=3",
        "--strategy", "naive", "--strategy", "joint", "--seeds", "0-2", "--results", results,
        "--dry-run")
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 12  # 2 scenarios x 2 strategies x 3 seeds
    line_re = re.compile(r"^([0-9a-f]{20})  (naive|joint) on (split-digits|permuted-digits) "
                         r"\(seed ([012]), smoke\)$")
    parsed = [line_re.match(line) for line in lines]
    assert all(parsed), lines
    assert len({m.group(1) for m in parsed}) == 12
    assert {(m.group(2), m.group(3), m.group(4)) for m in parsed} == {
        (st, sc, seed) for st in ("naive", "joint")
        for sc in ("split-digits", "permuted-digits") for seed in "012"}
    assert not results.exists()
    assert SUMMARY.search(flat(err)) is None  # nothing ran


def test_outside_a_terminal_each_finished_group_prints_one_line(tmp_path, capsys):
    code, _, err = clbench(capsys, *RUN, "--scenario", "split-digits", "--strategy", "naive",
                           "--strategy", "joint", "--seeds", "0,1", "--results", tmp_path / "r")
    assert code == 0
    lines = [line for line in err.splitlines() if "runs done" in line]
    assert len(lines) == 2, err
    assert re.fullmatch(r"naive on split-digits \[seeds 0,1\]: ok, ACC 0\.\d{3}, [\d.]+s; "
                        r"2/4 runs done, 2 left, ETA [\dms.]+", lines[0]), lines[0]
    assert lines[1].startswith("joint on split-digits [seeds 0,1]: ok, ACC ")
    assert lines[1].endswith("4/4 runs done, 0 left")
