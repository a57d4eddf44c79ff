"""The executor seam without Ray (tests/test_ray.py runs the Ray executor), the suites worth
scaling, and the dry run's estimate."""

from __future__ import annotations

import pytest

from clbench import api, cli
from clbench.app.executors import LocalExecutor, make_executor
from clbench.app.suite import load_suite
from clbench.errors import ConfigError
from clbench.registry import STRATEGIES
from clbench.results import ResultsStore


def test_local_is_the_default_and_ray_options_need_ray():
    assert isinstance(make_executor(), LocalExecutor)
    assert isinstance(make_executor("local", address=None, cpus_per_group=None), LocalExecutor)
    with pytest.raises(ConfigError, match=r"address does not apply to --executor local "
                       r"\(only to --executor ray\)"):
        make_executor("local", address="auto")
    with pytest.raises(ConfigError, match="unknown executor 'dask'"):
        make_executor("dask")


@pytest.mark.parametrize("options, words", [
    ({"cpus_per_group": 0}, "--cpus-per-group must be a positive number"),
    ({"gpus_per_group": -1}, "--gpus-per-group must be 0 or more"),
    ({"gpus_per_group": 1.5}, "above 1 Ray takes whole GPUs only"),
    ({"max_retries": -1}, "--max-retries must be 0 or more"),
])
def test_ray_options_are_checked_before_ray_is_touched(options, words):
    with pytest.raises(ConfigError, match=words):
        make_executor("ray", **options)


@pytest.mark.parametrize("device, options, words", [
    ("cuda:1", {}, "Ray assigns each task its GPUs"),
    ("cpu", {"gpus_per_group": 0.25}, "--device cpu with --gpus-per-group"),
    ("cuda", {}, "needs --gpus-per-group"),
])
def test_ray_devices(device, options, words):
    with pytest.raises(ConfigError, match=words):
        make_executor("ray", **options).check_device(device)


def builtin_strategies() -> list[str]:
    """Every strategy clbench registers (a plugin that ran, ``module:Class``, is listed too)."""
    return [n for n in STRATEGIES.names() if ":" not in n]


def test_standard_is_every_strategy_on_every_scenario_where_defined():
    suite = load_suite("standard")
    specs = suite.expand()
    assert {s.budget for s in specs} == {"paper"}
    assert {s.seed for s in specs} == {0, 1, 2, 3, 4}
    assert {s.strategy for s in specs} == set(builtin_strategies())
    assert {s.scenario for s in specs} == {"permuted-mnist", "split-mnist", "split-cifar10",
                                           "split-cifar100"}
    for note in suite.notes:  # a left-out pair is one the strategy does not define
        assert "defined for" in note or "supports the" in note, note


def test_nightly_is_the_default_budget_on_mnist_and_split_cifar10():
    specs = load_suite("nightly").expand()
    assert {s.budget for s in specs} == {"default"}
    assert {s.scenario for s in specs} == {"permuted-mnist", "split-mnist", "split-cifar10"}
    natives = {n for n in builtin_strategies() if not n.startswith("avalanche.")}
    assert natives <= {s.strategy for s in specs}
    assert {"avalanche.naive", "avalanche.ewc", "avalanche.replay"} <= {s.strategy
                                                                         for s in specs}


def test_the_estimate_comes_from_stored_wall_times(tmp_path, capsys):
    results = tmp_path / "r"
    stored, _ = api.plan(None, ["split-digits"], ["naive"], [0, 1], "smoke")
    api.run(stored, results, device="cpu")
    wall = ResultsStore(results).load().runs[0].times.wall_s
    specs, _ = api.plan(None, ["split-digits"], ["naive", "ewc"], [0, 1, 2, 3], "smoke")
    estimate = api.estimate(specs, results, group_size=2)
    assert (estimate.runs, estimate.groups, estimate.measured_groups) == (8, 4, 2)
    assert estimate.seconds == pytest.approx(2 * wall)
    assert "2 group(s) have no stored measurement and are not counted" in estimate.line()
    code = cli.main(["run", "--scenario", "split-digits", "--strategy", "naive", "--seeds",
                     "0-3", "--budget", "smoke", "--results", str(results), "--dry-run"])
    out, err = capsys.readouterr()
    assert code == 0
    assert len(out.splitlines()) == 4  # the plan: one line per run
    assert "4 runs in 1 groups; estimate" in err and "median wall time of stored runs" in err
    assert api.estimate(specs, tmp_path / "empty").line().endswith(
        "(run a few seeds first, then --dry-run again)")
