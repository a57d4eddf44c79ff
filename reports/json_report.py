"""JSON report: every run with its spec, accuracy matrix and the metrics computed from it, plus
the aggregated leaderboards (see :mod:`clbench.reports.aggregate`)."""

from __future__ import annotations

import json
from typing import Any

from clbench.identity import clbench_version
from clbench.metrics import all_metrics
from clbench.registry import REPORTERS
from clbench.reports.aggregate import leaderboard_for
from clbench.results import SCHEMA_VERSION, LoadedResults


def run_summary(doc: dict[str, Any]) -> dict[str, Any]:
    """One run as reported: raw observations plus metrics computed now, never stored."""
    error = doc.get("error")
    return {
        "spec_hash": doc["spec_hash"],
        "spec": doc["spec"],
        "status": doc["status"],
        "error": None if not error else f"{error.get('type')}: {error.get('message')}",
        "scenario": {k: doc["scenario"].get(k)
                     for k in ("name", "version", "setting", "n_tasks", "backbone", "data")},
        "hyperparameters": doc.get("hyperparameters"),
        "accuracy_matrix": doc["accuracy_matrix"],
        "param_counts": doc["param_counts"],
        "metrics": all_metrics(doc["accuracy_matrix"], doc["param_counts"]),
        "wall_time_s": doc.get("wall_time_s"),
        "train_time_s": doc.get("train_time_s"),
        "peak_host_memory_bytes": doc.get("peak_host_memory_bytes"),
        "peak_device_memory_bytes": doc.get("peak_device_memory_bytes"),
        "group": doc.get("group"),
        "identity": doc["identity"],
        "finished_at": doc.get("finished_at"),
    }


@REPORTERS.register("json")
class JsonReporter:
    description = ("every run with its spec, accuracy matrix and computed metrics, and the "
                   "aggregated leaderboards")

    def __init__(self, generated_at: str | None = None,
                 metadata: dict[str, Any] | None = None):
        self.generated_at = generated_at
        self.metadata = metadata

    def render(self, loaded: LoadedResults) -> str:
        leaderboard = leaderboard_for(loaded, self.generated_at, self.metadata)
        return json.dumps(
            {
                "schema_version": SCHEMA_VERSION,
                "generated_at": leaderboard.metadata["generated_at"],
                "clbench_version": clbench_version(),
                "runs": [run_summary(d) for d in loaded.runs],
                "leaderboards": leaderboard.to_json(),
                "problems": loaded.problems,
            },
            indent=1,
        )
