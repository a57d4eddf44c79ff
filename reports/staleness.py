"""Which component versions in a results store are current, and which results are stale.

A leaderboard cell holds one version of each component (scenario, strategy, backbone): two
versions are never pooled. The leaderboard shows the cells at the *current* versions only:

* for clbench's own components, the version in ``versions.json`` (:func:`clbench.versions.
  recorded`): the code this clbench runs;
* for any other component (a plugin, ``module:Class``), the newest version in the store:
  numerically when the versions are digit strings, otherwise the one whose latest run finished
  last (a fingerprint version, ``src-...``, has no order of its own).

Cells at any other version are *stale*: every renderer lists them with the fix (rerun with
``clbench run``), none ranks them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from clbench import versions
from clbench.schema import RunResult

KINDS = ("scenario", "strategy", "backbone")
STALE_FIX = "rerun with `clbench run`"


def components(run: RunResult) -> dict[str, tuple[str, str]]:
    """kind -> (name, version) of the run's scenario, strategy and backbone."""
    spec = run.spec
    return {"scenario": (spec.scenario, spec.scenario_version),
            "strategy": (spec.strategy, spec.strategy_version),
            "backbone": (spec.backbone, spec.backbone_version)}


def newest(seen: Mapping[str, str]) -> str:
    """The newest of several versions (version -> its latest run's finish time)."""
    if all(v.isdigit() for v in seen):
        return max(seen, key=int)
    return max(seen, key=lambda v: (seen[v], v))


def current_versions(runs: Iterable[RunResult]) -> dict[tuple[str, str], str]:
    """(kind, name) -> the current version of every component the runs use."""
    record = versions.recorded()
    seen: dict[tuple[str, str], dict[str, str]] = {}
    for run in runs:
        for kind, (name, version) in components(run).items():
            finished = seen.setdefault((kind, name), {})
            finished[version] = max(finished.get(version, ""), run.finished_at or "")
    out = {}
    for (kind, name), found in seen.items():
        entry = record[kind].get(name)
        out[(kind, name)] = entry["version"] if entry and entry["version"] else newest(found)
    return out


def stale_components(parts: Mapping[str, tuple[str, str]],
                     current: Mapping[tuple[str, str], str]) -> dict[str, tuple[str, str, str]]:
    """kind -> (name, stored version, current version) for each of ``parts`` (kind -> (name,
    version), see :func:`components`) not at its current version (empty: all current)."""
    return {kind: (name, version, current[(kind, name)])
            for kind, (name, version) in parts.items() if current[(kind, name)] != version}


def describe(kind: str, name: str, version: str) -> str:
    return f"{kind} {name} {version}"
