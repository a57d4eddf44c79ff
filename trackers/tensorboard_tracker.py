"""TensorBoard: one event directory per run, ``TARGET/<spec hash>``, written with
``torch.utils.tensorboard`` (needs the ``tensorboard`` package: ``pip install
'clbench[tensorboard]'``). Scalars ``train/loss`` (every optimiser step), ``accuracy/task_J``
(every continual-evaluation point) and ``final/METRIC``; the hyperparameters as the text
``hyperparameters`` at the start and, with the final metrics, in TensorBoard's HParams view."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from clbench.registry import TRACKERS
from clbench.schema import RunResult
from clbench.spec import RunSpec
from clbench.trackers.base import Tracker, final_metrics, hyperparameters


@TRACKERS.register("tensorboard")
class TensorBoardTracker(Tracker):
    description = "TensorBoard event files, one directory per run (torch.utils.tensorboard)"
    target_help = "a directory (one subdirectory per run, named by its spec hash)"
    modules = ("tensorboard",)
    install = "pip install 'clbench[tensorboard]'"

    def start(self, specs: Sequence[RunSpec]) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writers = [SummaryWriter(log_dir=str(Path(self.target) / spec.hash))
                        for spec in specs]
        self.params = [hyperparameters(spec) for spec in specs]
        self.step = 0
        for writer, params, spec in zip(self.writers, self.params, specs):
            table = "\n".join(f"| {k} | {v} |" for k, v in params.items())
            writer.add_text("hyperparameters", f"{spec.label()}\n\n| parameter | value |\n"
                            f"|---|---|\n{table}", global_step=0)

    def log_loss(self, step: int, losses: Sequence[float]) -> None:
        self.step = step
        for writer, loss in zip(self.writers, losses):
            writer.add_scalar("train/loss", loss, global_step=step)

    def log_point(self, step: int, accuracy: Sequence[Sequence[float | None]]) -> None:
        for writer, row in zip(self.writers, accuracy):
            for task, value in enumerate(row):
                if value is not None:
                    writer.add_scalar(f"accuracy/task_{task + 1}", value, global_step=step)

    def finish(self, results: Sequence[RunResult]) -> None:
        for writer, params, result in zip(self.writers, self.params, results):
            metrics = final_metrics(result)
            for key, value in metrics.items():
                writer.add_scalar(f"final/{key}", value, global_step=self.step)
            writer.add_text("status", result.status, global_step=self.step)
            writer.add_hparams({k: _hparam(v) for k, v in params.items()},
                               {f"final/{k}": v for k, v in metrics.items()}, run_name=".",
                               global_step=self.step)
            writer.close()


def _hparam(value: Any) -> Any:
    """TensorBoard's HParams take numbers, text and booleans: None becomes "null"."""
    return "null" if value is None else value
