"""MLflow: one run per clbench run in the experiment ``clbench`` of the tracking store TARGET
(a URI: ``sqlite:///path/mlflow.db`` offline, or a tracking server), written with
``mlflow.MlflowClient`` (``pip install 'clbench[mlflow]'``: mlflow-skinny, and SQLAlchemy for
a SQLite store). Parameters: the spec's hyperparameters; metrics ``train.loss`` (every
optimiser step), ``accuracy.task_J`` (every continual-evaluation point) and ``final.METRIC``;
tags: the spec hash, scenario, strategy and the run's status.

Metrics are buffered and written in batches (at each evaluation point and at the end), so a
store is not written once per step. A server that does not answer fails fast: unless set,
``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` is 0 and ``MLFLOW_HTTP_REQUEST_TIMEOUT`` 10 seconds."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

from clbench.registry import TRACKERS
from clbench.schema import RunResult
from clbench.spec import RunSpec
from clbench.trackers.base import Tracker, final_metrics, hyperparameters

EXPERIMENT = "clbench"
BATCH = 1000  # MLflow's limit of metrics per log_batch call


@TRACKERS.register("mlflow")
class MlflowTracker(Tracker):
    description = "MLflow runs in a tracking store (MlflowClient; sqlite:///FILE offline)"
    target_help = "a tracking URI, e.g. sqlite:///mlflow.db or http://host:5000"
    modules = ("mlflow", "sqlalchemy")
    install = "pip install 'clbench[mlflow]'"

    def start(self, specs: Sequence[RunSpec]) -> None:
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
        from mlflow import MlflowClient
        from mlflow.entities import Param

        self.client = MlflowClient(tracking_uri=self.target)
        experiment = self.client.get_experiment_by_name(EXPERIMENT)
        experiment_id = experiment.experiment_id if experiment is not None else \
            self.client.create_experiment(EXPERIMENT)
        self.run_ids = []
        self.pending: list[list[Any]] = []
        self.step = 0
        for spec in specs:
            run = self.client.create_run(experiment_id, run_name=spec.label(), tags={
                "clbench.spec_hash": spec.hash, "clbench.scenario": spec.scenario,
                "clbench.strategy": spec.strategy, "clbench.seed": str(spec.seed)})
            self.run_ids.append(run.info.run_id)
            self.pending.append([])
            params = [Param(k, str(v)) for k, v in hyperparameters(spec).items()]
            for i in range(0, len(params), 100):  # MLflow's limit of params per batch
                self.client.log_batch(run.info.run_id, params=params[i:i + 100])

    def _add(self, member: int, key: str, value: float, step: int) -> None:
        from mlflow.entities import Metric

        self.pending[member].append(Metric(key, float(value), int(time.time() * 1000), step))

    def _flush(self) -> None:
        for run_id, metrics in zip(self.run_ids, self.pending):
            for i in range(0, len(metrics), BATCH):
                self.client.log_batch(run_id, metrics=metrics[i:i + BATCH])
            metrics.clear()

    def log_loss(self, step: int, losses: Sequence[float]) -> None:
        self.step = step
        for member, loss in enumerate(losses):
            self._add(member, "train.loss", loss, step)

    def log_point(self, step: int, accuracy: Sequence[Sequence[float | None]]) -> None:
        for member, row in enumerate(accuracy):
            for task, value in enumerate(row):
                if value is not None:
                    self._add(member, f"accuracy.task_{task + 1}", value, step)
        self._flush()

    def finish(self, results: Sequence[RunResult]) -> None:
        for member, result in enumerate(results):
            for key, value in final_metrics(result).items():
                self._add(member, f"final.{key}", value, self.step)
        self._flush()
        for run_id, result in zip(self.run_ids, results):
            self.client.set_tag(run_id, "clbench.status", result.status)
            self.client.set_terminated(run_id, "FAILED" if result.status == "failed"
                                       else "FINISHED")
