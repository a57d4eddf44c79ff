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
