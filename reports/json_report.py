"""JSON report: every run with its spec, accuracy matrix and the metrics computed from it, plus
the aggregated leaderboards (see :mod:`clbench.reports.tables`)."""

from __future__ import annotations

import json
from typing import Any

from clbench.identity import clbench_version
from clbench.metrics import run_metrics
from clbench.registry import REPORTERS
from clbench.reports.base import Reporter
from clbench.reports.table_model import Leaderboard
from clbench.results import LoadedResults
from clbench.schema import RunResult

# The JSON report's own format. Its run summaries still carry every key they had when it was
# the result schema's version (2); result documents dropped their derivable keys in schema 3,
# the report derives them, so its format and version stay.
REPORT_SCHEMA_VERSION = 2


def run_summary(run: RunResult) -> dict[str, Any]:
    """One run as reported: raw observations plus metrics computed now, never stored."""
    sc = run.scenario
    return {
        "spec_hash": run.spec_hash,
        "spec": run.spec.to_json(),
        "status": run.status,
        "error": None if run.error is None else f"{run.error.type}: {run.error.message}",
        "scenario": {"name": run.spec.scenario, "version": run.spec.scenario_version,
                     "setting": sc.setting, "n_tasks": sc.n_tasks, "backbone": run.spec.backbone,
                     "data": sc.data},
        "hyperparameters": run.hyperparameters,
        "accuracy_matrix": [list(row) for row in run.accuracy_matrix],
        "param_counts": list(run.param_counts),
        "metrics": run_metrics(run),
        "curve": None if run.curve is None else run.curve.to_json(),  # --eval-every
        "wall_time_s": run.times.wall_s,
        "train_time_s": list(run.times.train_s),
        "peak_host_memory_bytes": run.memory.host_bytes,
        "peak_device_memory_bytes": run.memory.device_bytes,
        "group": None if run.group is None else {"size": run.group.size,
                                                 **run.group.to_json()},
        "identity": run.identity.to_json(),
        "finished_at": run.finished_at,
        "migrated_from": run.migrated_from,
    }


def across_json(lb: Leaderboard) -> dict[str, Any] | None:
    """The Friedman test over the scenarios (clbench.reports.friedman), or why there is none."""
    from clbench.reports.friedman import NotTested, across_scenarios

    if not lb.overall:
        return None
    r = across_scenarios(lb.scenarios)
    if isinstance(r, NotTested):
        return {"tested": False, "reason": r.reason}
    return {"tested": True, "test": "Friedman, Iman-Davenport; Nemenyi critical difference",
            "scenarios": r.scenarios, "mean_ranks": dict(zip(r.methods, r.mean_ranks)),
            "chi2_f": r.chi2, "p_chi2": r.p_chi2, "f_f": r.f_stat, "p_value": r.p_value,
            "alpha": r.alpha, "critical_difference": r.cd, "left_out": r.left_out,
            "summary": r.summary()}


@REPORTERS.register("json")
class JsonReporter(Reporter):
    description = ("every run with its spec, accuracy matrix and computed metrics, and the "
                   "aggregated leaderboards")

    def render(self, loaded: LoadedResults) -> str:
        leaderboard = self.leaderboard(loaded)
        return json.dumps(
            {
                "schema_version": REPORT_SCHEMA_VERSION,
                "generated_at": leaderboard.metadata["generated_at"],
                "clbench_version": clbench_version(),
                "runs": [run_summary(d) for d in loaded.runs],
                "leaderboards": leaderboard.to_json(),
                "across_scenarios": across_json(leaderboard),
                "problems": loaded.problems,
            },
            indent=1,
        )
