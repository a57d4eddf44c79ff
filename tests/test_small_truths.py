"""What a new user meets first: the README's main command keeps its report out of the repo
root, and `clbench list` shows the per-scenario defaults a run actually resolves."""

from __future__ import annotations

import json
import re
from pathlib import Path

from clbench import cli
from clbench.spec import make_specs

REPO = Path(__file__).resolve().parents[1]


def main_command() -> str:
    readme = (REPO / "README.md").read_text()
    section = readme.split("Run the main job", 1)[1]
    return re.search(r"```\n(.*?)\n```", section, re.S).group(1)


def test_the_main_job_writes_its_reports_into_an_ignored_folder():
    """Not the repository root (git ignores the folder), and not the results store either
    (tests/test_faults.py: a report inside the store once broke the next `report`)."""
    command = main_command()
    outputs = re.findall(r"--(?:json|markdown|html|csv|latex) (\S+)", command)
    assert outputs, command
    ignored = (REPO / ".gitignore").read_text().split()
    for path in outputs:
        top = path.split("/", 1)[0] + "/"
        assert "/" in path and top in ignored, f"{path} would land in the repo root"


def test_list_shows_the_per_scenario_defaults(capsys):
    assert cli.main(["list", "strategies"]) == 0
    out = capsys.readouterr().out
    ewc = out[out.index("\n  ewc "):out.index("\n  generative-replay")]
    assert "ewc_lambda (float) = 300.0" in ewc
    assert "permuted-mnist / *: ewc_lambda=30.0" in ewc
    assert "permuted-mnist / default: ewc_lambda=10.0" in ewc
    # and that is what runs resolve
    (spec,) = make_specs("permuted-mnist", "ewc", [0], "default")
    assert dict(spec.strategy_params)["ewc_lambda"] == 10.0
    (spec,) = make_specs("permuted-mnist", "ewc", [0], "paper")
    assert dict(spec.strategy_params)["ewc_lambda"] == 30.0


def test_list_json_carries_the_per_scenario_defaults(capsys):
    assert cli.main(["list", "strategies", "--json"]) == 0
    (ewc,) = [s for s in json.loads(capsys.readouterr().out)["strategies"] if s["name"] == "ewc"]
    assert {"scenario": "permuted-mnist", "budget": "*", "values": {"ewc_lambda": 30.0}} \
        in ewc["scenario_defaults"]


def test_the_smoke_suite_keeps_ewc_fisher_small():
    """The EWC Fisher's per-sample gradients dominated the smoke suite (150 of 222 s for the
    split-cifar10 group on a loaded 2-core CPU): smoke computes it from few samples."""
    from clbench import api

    specs, _ = api.plan("smoke")
    ewc = [s for s in specs if s.strategy in ("ewc", "online-ewc")]
    assert ewc and all(dict(s.strategy_params)["fisher_samples"] <= 32 for s in ewc)
