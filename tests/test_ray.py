"""The Ray executor on a real local Ray instance (2 CPUs, started once per test session):
the same matrices as the local executor, faults that lose nothing, and bad input named.

The suites are the offline digits scenarios at the smoke budget (a group trains in well under a
second): what takes time here is Ray starting its workers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import ray

from clbench import api, cli
from clbench.app.executors import make_executor
from clbench.results import ResultsStore

TESTS = Path(__file__).resolve().parent
SMOKE = ["--budget", "smoke", "--seeds", "0-1"]
DIGITS = ["--scenario", "split-digits", "--scenario", "permuted-digits:n_tasks=3"]


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory):
    """The session's Ray instance; yields (GCS address, signals folder). Its workers inherit
    this environment: tests/ on the path (the test plugins), CLBENCH_TEST_SIGNALS."""
    signals = tmp_path_factory.mktemp("signals")
    os.environ["CLBENCH_TEST_SIGNALS"] = str(signals)
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(TESTS), *filter(None, [os.environ.get("PYTHONPATH")])])
    # Ray starts its workers at niceness 15 so that they yield to other work: on a machine
    # already busy (a benchmark beside the tests) a group then waits minutes for the CPU, past
    # these tests' timeouts. The tests' workers run at the niceness of the tests.
    os.environ["RAY_worker_niceness"] = "0"
    # A local instance only (no address given). Ray names its node by the machine's reachable
    # IP even when told 127.0.0.1 (ray._private.services.resolve_ip_for_localhost).
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    yield ray.get_runtime_context().gcs_address, signals
    ray.shutdown()


@pytest.fixture
def clbench_process():
    """Starts ``clbench`` as its own driver process (what a user runs). One still running when
    its test ends is killed: a failed test would otherwise leave a driver holding the session's
    Ray CPUs, and the next test would wait behind it and fail too."""
    started: list[subprocess.Popen] = []

    def start(*args: str) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-m", "clbench.cli", *args],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def result_files(results: Path) -> list[Path]:
    """The result documents (pathlib's glob also matches a writer's ``.tmp-*`` temporary)."""
    return sorted(p for p in results.glob("*.json") if not p.name.startswith("."))


def documents(results: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in result_files(results)]


def wait_for(condition, what: str, timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_ray_and_local_give_bit_identical_matrices(ray_cluster, tmp_path):
    specs, _ = api.plan(None, ["split-digits", "permuted-digits:n_tasks=3",
                               "split-digits:setting=task"],
                        ["naive", "ewc", "replay", "clbench_test_plugins:Boom"], [0, 1, 2],
                        "smoke")
    local = api.run(specs, tmp_path / "local", device="cpu")
    remote = api.run(specs, tmp_path / "ray", device="cpu", executor=make_executor("ray"))
    assert (local.ran, local.failed) == (remote.ran, remote.failed) == (len(specs), 9)
    by_hash = {d["spec_hash"]: d for d in documents(tmp_path / "local")}
    ray_docs = documents(tmp_path / "ray")
    assert sorted(d["spec_hash"] for d in ray_docs) == sorted(by_hash)
    for doc in ray_docs:
        mine = by_hash[doc["spec_hash"]]
        assert doc["accuracy_matrix"] == mine["accuracy_matrix"], doc["spec"]
        assert doc["status"] == mine["status"]
        assert (doc["identity"]["executor"], mine["identity"]["executor"]) == ("ray", "local")
        assert doc["identity"]["host"] == mine["identity"]["host"] == os.uname().nodename
        assert doc["identity"]["torch_threads"] == 1  # --cpus-per-group 1
        assert doc["identity"]["argv"] == mine["identity"]["argv"]  # the driver's command
    # A strategy's exception is a result, as under the local executor: failed, with its error.
    boom = [d for d in ray_docs if d["spec"]["strategy"] == "clbench_test_plugins:Boom"]
    assert {(d["status"], d["error"]["message"]) for d in boom} == {("failed", "boom")}


def test_a_killed_worker_is_retried_and_every_run_stored_once(ray_cluster, clbench_process,
                                                             tmp_path):
    address, signals = ray_cluster
    results = tmp_path / "results"
    proc = clbench_process("run", *DIGITS, "--strategy", "naive", "--strategy",
                           "clbench_test_plugins:WaitForSignal", *SMOKE, "--results",
                           str(results), "--executor", "ray", "--ray-address", address)
    pid = int(wait_for(lambda: _read(signals / "worker" / "pid"), "the group to start"))
    os.kill(pid, signal.SIGKILL)  # the worker dies mid-group: Ray runs the task again
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    docs = documents(results)
    hashes = [d["spec_hash"] for d in docs]
    assert len(hashes) == len(set(hashes)) == 8, err
    assert {d["status"] for d in docs} == {"ok"}
    assert "8 planned: 8 ran" in err
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # that worker really died


def test_a_group_whose_worker_always_dies_is_failed_with_the_cause(ray_cluster, tmp_path):
    address, _ = ray_cluster
    results = tmp_path / "results"
    code = cli.main(["run", "--scenario", "split-digits", "--strategy", "naive", "--strategy",
                     "clbench_test_plugins:AlwaysDies", *SMOKE, "--results", str(results),
                     "--executor", "ray", "--max-retries", "1"])
    assert code == 1
    docs = {d["spec"]["strategy"]: d for d in documents(results)}
    assert docs["naive"]["status"] == "ok"  # every other group's results are kept
    died = docs["clbench_test_plugins:AlwaysDies"]
    assert died["status"] == "failed"
    assert "died (tried 2 time(s))" in died["error"]["message"]
    assert died["error"]["type"] in ("WorkerCrashedError", "NodeDiedError", "RayTaskError")
    # A failed run is run again next time (as any failed run is).
    assert not ResultsStore(results).stored(died["spec_hash"])


def test_killing_the_driver_then_the_same_command_runs_only_what_is_missing(ray_cluster,
                                                                            clbench_process,
                                                                            tmp_path):
    address, signals = ray_cluster
    results = tmp_path / "results"
    args = ["run", *DIGITS, "--strategy", "naive", "--strategy", "ewc", "--strategy",
            "clbench_test_plugins:WaitForSignalDriver", *SMOKE, "--results", str(results),
            "--executor", "ray", "--ray-address", address]
    proc = clbench_process(*args)
    wait_for(lambda: _read(signals / "driver" / "pid"), "the waiting group to start")
    wait_for(lambda: len(result_files(results)) >= 4, "other groups to be stored")
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    stored = {d["spec_hash"] for d in documents(results)}
    assert 4 <= len(stored) < 12
    (signals / "driver" / "go").write_text("")
    again = clbench_process(*args)
    _, err = again.communicate(timeout=180)
    assert again.returncode == 0, err
    assert f"12 planned: {12 - len(stored)} ran, {len(stored)} already done" in err
    docs = documents(results)
    assert len(docs) == len({d["spec_hash"] for d in docs}) == 12
    assert stored <= {d["spec_hash"] for d in docs}


def test_ctrl_c_cancels_what_is_in_flight_and_keeps_what_finished(ray_cluster, clbench_process,
                                                                  tmp_path):
    address, signals = ray_cluster
    results = tmp_path / "results"
    proc = clbench_process("run", *DIGITS, "--strategy", "naive", "--strategy",
                           "clbench_test_plugins:WaitForSignalInterrupt", *SMOKE, "--results",
                           str(results), "--executor", "ray", "--ray-address", address)
    pid = int(wait_for(lambda: _read(signals / "interrupt" / "pid"), "the group to start"))
    wait_for(lambda: len(result_files(results)) >= 4, "the naive groups to be stored")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted: finished runs are saved" in err
    assert "Traceback" not in err
    wait_for(lambda: not _alive(pid), "the waiting task to be cancelled", timeout=30)
    docs = documents(results)
    assert sum(d["spec"]["strategy"] == "naive" for d in docs) == 4  # finished: kept
    assert 4 <= len(docs) < 8  # the cancelled group stored nothing
    assert all(d["status"] == "ok" for d in docs)


def test_missing_data_on_the_worker_is_exit_2_naming_the_node(ray_cluster, tmp_path, capsys):
    code = cli.main(["run", "--scenario", "split-mnist", "--strategy", "naive", *SMOKE,
                     "--results", str(tmp_path / "r"), "--data-dir", str(tmp_path / "none"),
                     "--executor", "ray"])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2, err
    assert "Traceback" not in err
    assert f"on Ray node {os.uname().nodename} ({ray.util.get_node_ip_address()})" in err
    assert str(tmp_path / "none") in err
    assert not list((tmp_path / "r").glob("*.json"))


def test_gpus_on_a_cluster_without_one_is_refused_before_anything_runs(ray_cluster, tmp_path,
                                                                      capsys):
    code = cli.main(["run", "--scenario", "split-digits", "--strategy", "naive", *SMOKE,
                     "--results", str(tmp_path / "r"), "--executor", "ray",
                     "--gpus-per-group", "0.5"])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2, err
    assert "--gpus-per-group 0.5: the connected Ray cluster has no GPU" in err
    assert not list((tmp_path / "r").glob("*.json"))
    assert not list((tmp_path / "r").glob(".*.lock"))  # nothing was even claimed


def test_an_unreachable_ray_address_is_named_quickly(clbench_process, tmp_path):
    start = time.monotonic()
    proc = clbench_process("run", "--scenario", "split-digits", "--strategy", "naive", *SMOKE,
                           "--results", str(tmp_path / "r"), "--executor", "ray",
                           "--ray-address", "127.0.0.1:9")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, err
    assert "cannot reach a Ray cluster at 127.0.0.1:9" in " ".join(err.split())
    assert "Traceback" not in err
    assert time.monotonic() - start < 30


def test_ray_options_need_the_ray_executor(capsys, tmp_path):
    code = cli.main(["run", "--scenario", "split-digits", "--strategy", "naive", *SMOKE,
                     "--results", str(tmp_path / "r"), "--gpus-per-group", "1"])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2
    assert "--gpus-per-group only applies to --executor ray" in err


def test_the_ray_executor_without_ray_names_the_extra(tmp_path):
    # Ray hidden from the import system, as on an install without the extra.
    code = ("import sys; sys.modules['ray'] = None\n"
            "from clbench import cli\n"
            f"sys.exit(cli.main(['run', '--scenario', 'split-digits', '--strategy', 'naive', "
            f"'--budget', 'smoke', '--results', {str(tmp_path / 'r')!r}, "
            "'--executor', 'ray']))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 2, out.stderr
    assert "pip install 'clbench[ray]'" in out.stderr
    assert "Traceback" not in out.stderr


def test_the_local_executor_never_imports_ray(tmp_path):
    code = ("import sys\n"
            "from clbench import cli\n"
            f"code = cli.main(['run', '--scenario', 'split-digits', '--strategy', 'naive', "
            f"'--budget', 'smoke', '--results', {str(tmp_path / 'r')!r}])\n"
            "assert 'ray' not in sys.modules, 'ray was imported'\n"
            "sys.exit(code)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except FileNotFoundError:
        return None


def test_a_group_past_run_timeout_is_cancelled_and_the_rest_runs(ray_cluster, tmp_path):
    """--run-timeout under Ray: the hung group's task is force-cancelled and recorded failed
    (timeout); the other groups run and are stored."""
    specs, _ = api.plan(None, ["split-digits"], ["clbench_test_plugins:SleepsForever", "naive"],
                        [0], "smoke")
    summary = api.run(specs, tmp_path / "r", device="cpu", executor=make_executor("ray"),
                      run_timeout=20)
    assert (summary.ran, summary.failed) == (2, 1)
    docs = {d["spec"]["strategy"]: d for d in documents(tmp_path / "r")}
    hung = docs["clbench_test_plugins:SleepsForever"]
    assert (hung["status"], hung["error"]["type"]) == ("failed", "timeout")
    assert "--run-timeout 20 s" in hung["error"]["message"]
    assert "cancelled" in hung["error"]["message"]
    assert docs["naive"]["status"] == "ok"
