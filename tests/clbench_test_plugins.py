"""Strategies used by tests/test_cli.py through ``--strategy clbench_test_plugins:Name``, and
reporters used by tests/test_reports.py as ``clbench_test_plugins:Name`` (``tests/`` must be on
``sys.path``: pytest puts it there)."""

from __future__ import annotations

import dataclasses
import sys

from clbench.experience import Experience
from clbench.reports.base import Reporter
from clbench.strategies.base import SGDParams
from clbench.strategies.naive import Naive


class Boom(Naive):
    """Naive fine-tuning that crashes when it is given the second task."""

    description = "naive, but train raises RuntimeError('boom') on the second task"

    def train(self, experience: Experience) -> None:
        if experience.task.index == 1:
            raise RuntimeError("boom")
        super().train(experience)


# --- hostile and broken plugins (tests/test_bad_input.py) -------------------------------------

class NotADataclassParams(Naive):
    """A strategy whose Params is a plain class: refused as a plugin error."""

    class Params:
        lr = 0.1


class BadDefault(Naive):
    """A strategy whose Params default fails its own validation."""

    @dataclasses.dataclass(frozen=True)
    class Params(SGDParams):
        lr: float = -1.0


class ExitZero(Naive):
    """``sys.exit(0)`` inside train: a failed run, never the end of the suite."""

    def train(self, experience: Experience) -> None:
        sys.exit(0)


class ExitThree(Naive):
    def train(self, experience: Experience) -> None:
        sys.exit(3)


class ShortLogits(Naive):
    """Predicts fewer outputs than the scenario has classes."""

    def predict(self, x, task_ids):
        return super().predict(x, task_ids)[..., :3]


class NaNLogits(Naive):
    """Predicts NaN after the first task."""

    def predict(self, x, task_ids):
        out = super().predict(x, task_ids)
        return out * float("nan") if self.trained else out

    def train(self, experience: Experience) -> None:
        super().train(experience)
        self.trained = True

    def setup(self, *args) -> None:
        super().setup(*args)
        self.trained = False


class OwnName(Naive):
    """A plugin that names itself: still runnable by its path."""

    name = "my-own-name"
class StoreSizeReporter(Reporter):
    """A plugin reporter as the contract asks: the number of runs, and the frozen date."""

    description = "number of runs"

    def render(self, loaded) -> str:
        return f"{len(loaded.runs)} runs, {self.generated_at}"


class BrokenReporter(Reporter):
    """A reporter whose constructor has a bug (a TypeError) once it is given a report date;
    built without options it would work, so a fallback to ``cls()`` would hide the bug."""

    description = "raises TypeError while it is built with generated_at"

    def __init__(self, *, generated_at=None, metadata=None):
        super().__init__(generated_at=generated_at, metadata=metadata)
        if generated_at is not None:
            self.year = generated_at[:4] + 1  # the bug: str + int

    def render(self, loaded) -> str:
        return "never"


class OldStyleReporter:
    """A reporter that takes no options: refused by the registry, with the fix."""

    description = "no generated_at / metadata"

    def render(self, loaded) -> str:
        return "old"


# --- Ray faults (tests/test_ray.py) ------------------------------------------------------------
# A Ray worker inherits its environment from the Ray instance, which the test session starts
# with CLBENCH_TEST_SIGNALS set: a folder where these strategies and the test talk by files.


class WaitForSignal(Naive):
    """Naive, but the first attempt of its group writes its process id to ``<signals>/<name>/pid``
    and waits (up to two minutes) until the test kills it or writes ``<signals>/<name>/go``; a
    later attempt (another process: the retry) trains at once."""

    signal_folder = "worker"

    def train(self, experience: Experience) -> None:
        import os
        import time
        from pathlib import Path

        folder = Path(os.environ["CLBENCH_TEST_SIGNALS"]) / self.signal_folder
        folder.mkdir(parents=True, exist_ok=True)
        pid_file, go = folder / "pid", folder / "go"
        if experience.task.index == 0 and not go.exists() and not pid_file.exists():
            pid_file.write_text(str(os.getpid()))
            deadline = time.monotonic() + 120
            while not go.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
        super().train(experience)


class WaitForSignalDriver(WaitForSignal):
    signal_folder = "driver"


class AlwaysDies(Naive):
    """Kills its own process (as the kernel's OOM killer would): every attempt dies."""

    def train(self, experience: Experience) -> None:
        import os
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


class WaitForSignalInterrupt(WaitForSignal):
    signal_folder = "interrupt"


# --- plugins that change what later runs share (tests/test_faults_runtime.py) -----------------


class WritesItsImages(Naive):
    """Inverts its training images in place (the dataset cache every run shares), then trains."""

    def train(self, experience: Experience) -> None:
        images = experience.train.images
        images.copy_(255 - images)
        super().train(experience)


class WritesItsImagesThroughData(Naive):
    """The same through ``.data``, which bypasses torch's version counter."""

    def train(self, experience: Experience) -> None:
        experience.train.images.data[:10] = 0
        super().train(experience)


def _changes_after_training(change):
    """A Naive subclass that trains, then calls ``change()``: global state it leaves behind."""

    class Changes(Naive):
        def train(self, experience: Experience) -> None:
            super().train(experience)
            change()

    return Changes


def _torch():
    import torch

    return torch


SetsDefaultDtype = _changes_after_training(
    lambda: _torch().set_default_dtype(_torch().float64))
DisablesGrad = _changes_after_training(lambda: _torch().set_grad_enabled(False))
SetsDefaultDevice = _changes_after_training(lambda: _torch().set_default_device("meta"))
UsesDeterministicAlgorithms = _changes_after_training(
    lambda: _torch().use_deterministic_algorithms(True))
SetsThreads = _changes_after_training(
    lambda: _torch().set_num_threads(_torch().get_num_threads() + 1))
SetsMatmulPrecision = _changes_after_training(
    lambda: _torch().set_float32_matmul_precision("medium"))
EnablesAnomalyDetection = _changes_after_training(lambda: _torch().set_anomaly_enabled(True))
ChangesDirectory = _changes_after_training(lambda: __import__("os").chdir("/"))


# --- plugins that hang (tests/test_faults_runtime.py) ------------------------------------------


class SleepsForever(Naive):
    """``train`` never returns."""

    def train(self, experience: Experience) -> None:
        import time

        while True:
            time.sleep(3600)


class LeavesAThread(Naive):
    """Trains, and leaves a non-daemon thread running that never ends."""

    def train(self, experience: Experience) -> None:
        import threading
        import time

        super().train(experience)
        if experience.task.index == 0:
            threading.Thread(target=lambda: time.sleep(10**6), name="plugin-forever",
                             daemon=False).start()


class SlowNaive(Naive):
    """Naive that first waits 3 s (two searches on one store then overlap for sure)."""

    def train(self, experience: Experience) -> None:
        import time

        if experience.task.index == 0:
            time.sleep(3)
        super().train(experience)
