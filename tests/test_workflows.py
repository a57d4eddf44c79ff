"""Every GitHub workflow parses as YAML and has the shape GitHub runs: a trigger, jobs whose
steps each either run a command or use an action. (A workflow that does not parse is silently
never run by GitHub.)"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

WORKFLOWS = sorted((Path(__file__).resolve().parents[1] / ".github" / "workflows").glob("*.yml"))


def test_there_are_workflows():
    assert WORKFLOWS


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_parses_and_has_the_shape_of_one(path):
    doc = yaml.safe_load(path.read_text())
    assert isinstance(doc, dict), "a workflow is a mapping"
    # YAML 1.1 reads the key `on` as True
    assert "on" in doc or True in doc, "no trigger (on:)"
    jobs = doc.get("jobs")
    assert isinstance(jobs, dict) and jobs, "no jobs"
    for name, job in jobs.items():
        assert isinstance(job, dict) and "runs-on" in job, f"job {name!r} has no runs-on"
        steps = job.get("steps")
        assert isinstance(steps, list) and steps, f"job {name!r} has no steps"
        for i, step in enumerate(steps):
            assert isinstance(step, dict), f"{name} step {i} is not a mapping"
            assert ("run" in step) != ("uses" in step), \
                f"{name} step {i} ({step.get('name')!r}) needs exactly one of run/uses"
            if "run" in step:
                assert isinstance(step["run"], str) and step["run"].strip()


NIGHTLY = Path(__file__).resolve().parents[1] / ".github" / "workflows" / "nightly.yml"
MAIN_AVALANCHE = {"avalanche.naive", "avalanche.ewc", "avalanche.si", "avalanche.lwf",
                  "avalanche.replay", "avalanche.agem", "avalanche.der"}


def _default_suite() -> str:
    import re

    doc = yaml.safe_load(NIGHTLY.read_text())
    (default,) = re.findall(r"\|\|\s*'([^']+)'", doc["env"]["SUITE"])
    trigger = doc.get("on", doc.get(True))
    assert trigger["workflow_dispatch"]["inputs"]["suite"]["default"] == default
    return default


def test_the_nightly_default_suite_runs_every_native_strategy_and_the_main_avalanche_ones():
    """A regression in any registered strategy must be caught by the nightly job: each native
    strategy (a new one too) runs in at least one scenario of the workflow's default suite."""
    from clbench.app.suite import load_suite
    from clbench.registry import STRATEGIES

    suite = load_suite(_default_suite())
    ran = {spec.strategy for spec in suite.expand()}
    # registered by clbench itself (a plugin used by path registers under "module:Class")
    native = {name for name, cls in STRATEGIES.items()
              if "." not in name and ":" not in name
              and cls.__module__.startswith("clbench.strategies.")}
    assert native and native <= ran, f"not in the nightly suite: {sorted(native - ran)}"
    assert MAIN_AVALANCHE <= ran, sorted(MAIN_AVALANCHE - ran)


def test_the_nightly_job_installs_cpu_torch_wheels_and_the_avalanche_extra():
    doc = yaml.safe_load(NIGHTLY.read_text())
    steps = [s for job in doc["jobs"].values() for s in job["steps"]]
    install = next(s["run"] for s in steps if s.get("name") == "Install")
    assert "--index-url https://download.pytorch.org/whl/cpu" in install
    assert ".[avalanche]" in install
