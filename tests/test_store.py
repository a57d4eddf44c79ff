"""The results store under stress: two writers on one store, SIGKILLs at random moments, a full
disk, an unwritable directory. Nothing is lost, nothing is counted twice, no run is done twice.
"""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clbench import api, cli
from clbench.results import ResultsStore

REPO = Path(__file__).resolve().parents[1]
GRID = ["--scenario", "split-digits", "--scenario", "split-digits:setting=task",
        "--scenario", "permuted-digits:n_tasks=3", "--strategy", "naive", "--strategy", "joint",
        "--strategy", "ewc", "--seeds", "0,1", "--budget", "smoke", "--device", "cpu"]
PLANNED = 3 * 3 * 2
SUMMARY = "planned: {} ran"


def start(results: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "CLBENCH_OFFLINE": "1", "PYTHONUNBUFFERED": "1",
           "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "clbench.cli", "run", *GRID, *extra,
                             "--results", str(results)], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def ran(stderr: str) -> int:
    words = " ".join(stderr.split())
    marker = f"{PLANNED} planned: "
    assert marker in words, stderr[-2000:]
    return int(words.split(marker, 1)[1].split()[0])


def documents(results: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(results.glob("[0-9a-f]*.json"))]


def assert_each_planned_run_stored_once(results: Path) -> None:
    docs = documents(results)
    hashes = [d["spec_hash"] for d in docs]
    assert len(hashes) == PLANNED == len(set(hashes)), hashes
    assert all(d["status"] == "ok" for d in docs)
    loaded = ResultsStore(results).load()
    assert len(loaded.runs) == PLANNED and loaded.problems == []


def test_two_writers_on_one_store_never_run_a_run_twice(tmp_path):
    results = tmp_path / "results"
    first, second = start(results), start(results)
    outs = [p.communicate(timeout=600) for p in (first, second)]
    assert [p.returncode for p in (first, second)] == [0, 0], [e[-2000:] for _, e in outs]
    # every planned run was trained by exactly one of the two processes
    assert ran(outs[0][1]) + ran(outs[1][1]) == PLANNED
    assert_each_planned_run_stored_once(results)
    assert not list(results.glob(".tmp-*"))


def test_random_sigkills_then_resume_lose_nothing_and_count_nothing_twice(tmp_path):
    results = tmp_path / "results"
    rng = random.Random(0)
    for _ in range(4):
        proc = start(results)
        time.sleep(rng.uniform(2.0, 8.0))
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=60)
    # a write killed between its fsync and its rename leaves a complete temporary: never read
    docs = sorted(results.glob("[0-9a-f]*.json"))
    if docs:
        (results / ".tmp-4194311-killed.json").write_bytes(docs[0].read_bytes())
    proc = start(results)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-2000:]
    assert_each_planned_run_stored_once(results)
    assert not list(results.glob(".tmp-*")), "temporaries of dead writers are removed"


def test_a_full_disk_keeps_every_earlier_result_and_says_so(tmp_path, capsys, monkeypatch):
    results = tmp_path / "results"
    real_fsync, calls = os.fsync, []

    def fsync(fd):
        calls.append(fd)
        if len(calls) > 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr("clbench.results.os.fsync", fsync)
    code = cli.main(["run", "--scenario", "split-digits", "--strategy", "naive", "--seeds",
                     "0-9", "--budget", "smoke", "--device", "cpu", "--results", str(results)])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2 and "Traceback" not in err
    assert "is full" in err and "run the same command again to resume" in err
    kept = documents(results)
    assert len(kept) == 3 and all(d["status"] == "ok" for d in kept)
    assert not list(results.glob(".tmp-*"))

    # the rest runs once there is space again
    monkeypatch.setattr("clbench.results.os.fsync", real_fsync)
    code = cli.main(["run", "--scenario", "split-digits", "--strategy", "naive", "--seeds",
                     "0-9", "--budget", "smoke", "--device", "cpu", "--results", str(results)])
    assert code == 0
    assert len(documents(results)) == 10


def test_a_report_onto_a_full_disk_leaves_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "board.md"
    target.write_text("yesterday's board\n")

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("clbench.files.os.fsync", full)
    with pytest.raises(api.ConfigError, match="No space left"):
        api.report(REPO / "tests" / "golden" / "results", {"markdown": target})
    assert target.read_text() == "yesterday's board\n"
    assert [p.name for p in tmp_path.iterdir()] == ["board.md"]


@pytest.mark.parametrize("dry", [False, True], ids=["run", "dry-run"])
def test_an_unwritable_results_directory_is_refused_before_training(tmp_path, capsys, dry):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    started = time.perf_counter()
    code = cli.main(["run", "--scenario", "split-mnist", "--strategy", "naive", "--budget",
                     "smoke", "--device", "cpu", "--results", str(blocker / "results"),
                     *(["--dry-run"] if dry else [])])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2 and "cannot write results to" in err and "--results" in err
    assert "Traceback" not in err
    assert time.perf_counter() - started < 30  # no dataset was loaded, nothing trained


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_a_read_only_results_directory_is_refused(tmp_path, capsys):
    results = tmp_path / "ro"
    results.mkdir(mode=0o555)
    code = cli.main(["run", "--scenario", "split-digits", "--strategy", "naive", "--budget",
                     "smoke", "--device", "cpu", "--results", str(results)])
    assert code == 2 and "cannot write results" in capsys.readouterr().err


def test_a_result_that_cannot_be_stored_fails_its_run_and_the_suite_goes_on(tmp_path, capsys,
                                                                          monkeypatch):
    """A writer's bug for one run (here: every result of joint fails validation) is that run's
    failure; the other groups still run and are stored."""
    import clbench.results as results_module

    real = results_module.validate
    monkeypatch.setattr(results_module, "validate",
                        lambda doc: "broken" if doc["spec"]["strategy"] == "joint" else real(doc))
    results = tmp_path / "results"
    code = cli.main(["run", "--scenario", "split-digits", "--strategy", "joint", "--strategy",
                     "naive", "--budget", "smoke", "--device", "cpu", "--results", str(results)])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 1 and "refusing to store an invalid result" in err
    assert [d["spec"]["strategy"] for d in documents(results)] == ["naive"]


def test_a_report_file_gets_the_usual_permissions(tmp_path):
    """Atomic writes go through a private temporary; the report must still be readable by
    others (a web server publishing it), as a plain write under the umask makes it."""
    target = tmp_path / "board.html"
    umask = os.umask(0o022)
    try:
        api.report(REPO / "tests" / "golden" / "results", {"html": target})
    finally:
        os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o644
