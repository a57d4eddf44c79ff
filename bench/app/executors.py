"""Executors: where the groups of a run train. :mod:`clbench.app.orchestrate` plans the groups,
takes each run's lock and writes every finished group's results itself (the process that owns
the store is its only writer); an executor only trains groups and hands back what each
produced.

Executors are registered in :data:`EXECUTORS` (``@EXECUTORS.register("name")``, or an entry point
in the group ``clbench.executors``); each declares its command-line options in ``options``
(:class:`Option`), which ``clbench run`` and ``clbench tune`` offer.

* :class:`LocalExecutor` (``--executor local``, the default) trains them one after another in
  this process, as ``clbench run`` always did. It never imports Ray.
* :class:`RayExecutor` (``--executor ray``) makes each group one Ray Core task with its CPUs and
  GPUs, on a local Ray instance or a cluster. Ray schedules, places and retries (a worker or
  node that dies); clbench schedules nothing itself. Every task runs the same
  :func:`clbench.app.runner.execute_group` as the local executor and returns plain JSON documents,
  which the driver validates before writing them.

Both yield ``(group, outcome)`` as groups finish: ``outcome`` is the group's list of
:class:`clbench.schema.RunResult`, or the :class:`clbench.errors.DataError` that kept it from
running.
"""

from __future__ import annotations

import dataclasses
import math
import os
import platform
import socket
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from clbench.errors import ClbenchError, ConfigError, DataError, ResultsError
from clbench.identity import git_state, run_identity
from clbench.numbers import NON_NEGATIVE, NON_NEGATIVE_INT, POSITIVE
from clbench.registry import Registry
from clbench.schema import GitState, RunError, RunResult, parse
from clbench.spec import RunSpec

if TYPE_CHECKING:
    import torch

    from clbench.app.runner import Progress

Outcome = list[RunResult] | DataError
RAY_CONNECT_TIMEOUT_S = 5.0  # an unreachable --ray-address is named, never waited on


@dataclasses.dataclass(frozen=True)
class Job:
    """What every group of a run needs besides its specs: the device and the data options, as
    given (a Ray worker resolves them on its own node)."""

    device: str = "auto"
    data_dir: str | None = None
    download: bool | None = None
    run_timeout: float | None = None  # seconds a group may take; None: no limit
    logs: tuple[str, ...] = ()  # --log NAME:TARGET trackers, built where each group trains


@dataclasses.dataclass(frozen=True)
class Option:
    """One command-line option of an executor: ``--flag VALUE`` passes ``keyword=type(VALUE)``
    to its constructor (left out, the constructor's default applies)."""

    flag: str  # "--ray-address"
    keyword: str  # "address"
    type: Callable[[str], Any] = str
    metavar: str = "VALUE"
    help: str = ""


class Executor(Protocol):
    name: str
    description: str
    options: ClassVar[tuple[Option, ...]]  # its command-line options (may be empty)

    def check_device(self, device: str) -> torch.device | None:
        """ConfigError for a device this executor cannot run on (before anything starts);
        else the device this process trains on, or None where workers resolve it."""

    def open(self, job: Job) -> None:
        """Start (or join) what runs the groups; ConfigError when it cannot."""

    def execute(self, groups: Iterable[list[RunSpec]], progress: Progress | None = None
                ) -> Iterator[tuple[list[RunSpec], Outcome]]:
        """Train ``groups`` (pulled lazily), yielding each as it finishes."""

    def close(self) -> None:
        """Stop what ``open`` started."""


EXECUTORS: Registry = Registry(
    "executor",
    "clbench.executors",
    "clbench.app.executors",  # this module: it registers the built-ins below
    required=("check_device", "open", "execute", "close"),
)


@EXECUTORS.register("local")
class LocalExecutor:
    """Each group in this process, one after another (the next group is pulled, and its locks
    taken, only after the previous one was handed back). With a run timeout (``Job.run_timeout``)
    each group runs in a child process instead (:class:`_GroupProcess`, started with ``spawn``
    and kept for the next group), which is killed when the group overruns: the group is recorded
    ``failed`` with error type ``timeout`` and the suite goes on in a fresh child."""

    description = "groups one after another in this process (the default)"
    options: ClassVar[tuple[Option, ...]] = ()

    def __init__(self) -> None:
        self.ctx = None
        self.job = None
        self.child: _GroupProcess | None = None

    def check_device(self, device: str) -> torch.device:
        from clbench.app.runner import resolve_device

        return resolve_device(device)

    def open(self, job: Job) -> None:
        from clbench.app.runner import RunContext, resolve_device
        from clbench.scenarios.data import DataConfig

        self.ctx = RunContext(resolve_device(job.device),
                              DataConfig.from_options(job.data_dir, job.download),
                              executor=self.name,  # a subclass's own name (a plugin's)
                              logs=tuple(job.logs))
        self.job = job

    def execute(self, groups, progress=None):
        from clbench.app.runner import execute_group

        if self.job.run_timeout is not None:
            yield from self._execute_in_child(groups, progress)
            return
        for group in groups:
            try:
                results = execute_group(group, self.ctx, progress)
            except DataError as exc:
                yield group, exc
                continue
            yield group, results

    def _execute_in_child(self, groups, progress):
        for group in groups:
            if self.child is None:
                self.child = _GroupProcess(self.job, self.name)
            try:
                reply = self.child.run(group, self.job.run_timeout)
            except _ChildLost as exc:
                self.child.stop()
                self.child = None
                outcome = _failed_group(group, exc.error, self.ctx.device, self.name)
            else:
                outcome = _from_reply(reply)
            if progress and not isinstance(outcome, DataError):
                progress.group_done(group, outcome)
            yield group, outcome

    def close(self) -> None:
        if self.child is not None:
            self.child.stop()
            self.child = None
        self.ctx = None


class _ChildLost(Exception):
    """The group's child process overran the run timeout or died: ``error`` says which."""

    def __init__(self, error: RunError):
        super().__init__(error.message)
        self.error = error


class _GroupProcess:
    """A child process (``spawn``: nothing of this process's state is inherited) that trains
    the groups it is sent, one at a time, with :func:`clbench.app.runner.execute_group`, and answers
    as a Ray task does (:func:`_group_reply`). Ctrl-C reaches this process only: the child
    ignores SIGINT and is killed when the executor closes."""

    # Not counted in a group's time: importing torch, and the process's one-time set-up for a
    # scenario (clbench.app.warmup: decoding, even downloading, its data; first kernels).
    BOOT_TIMEOUT_S = 300.0
    WARMUP_TIMEOUT_S = 1800.0

    def __init__(self, job: Job, executor: str = "local"):
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        self.conn, child_end = context.Pipe()
        self.process = context.Process(target=_group_process_main,
                                       args=(child_end, {**dataclasses.asdict(job),
                                                         "executor": executor}),
                                       name="clbench-group", daemon=True)
        self.process.start()
        child_end.close()
        self.ready = False

    def run(self, group: list[RunSpec], timeout: float) -> dict[str, Any]:
        """The child's reply for ``group``; _ChildLost when it overruns ``timeout`` seconds
        (counted from when the child starts on the group) or dies."""
        try:
            if not self.ready:
                if not self.conn.poll(self.BOOT_TIMEOUT_S):
                    raise _ChildLost(RunError(
                        type="WorkerDied", message="the group's process did not start within "
                        f"{self.BOOT_TIMEOUT_S:g} s", traceback=""))
                self.conn.recv()  # "ready"
                self.ready = True
            self.conn.send([s.to_json() for s in group])
            if not self.conn.poll(self.WARMUP_TIMEOUT_S):
                raise _ChildLost(RunError(
                    type="timeout", message="the process's set-up for the group (its data, "
                    f"first kernels) did not finish within {self.WARMUP_TIMEOUT_S:g} s: its "
                    "process was killed", traceback=""))
            first = self.conn.recv()
            if first != "started":  # bad input found while setting up: the reply
                return first
            if not self.conn.poll(timeout):
                raise _ChildLost(RunError(
                    type="timeout", message=f"the group did not finish within --run-timeout "
                    f"{timeout:g} s: its process was killed", traceback=""))
            return self.conn.recv()
        except (EOFError, OSError):
            self.process.join(timeout=5)
            raise _ChildLost(RunError(
                type="WorkerDied", message=f"the group's process died (exit code "
                f"{self.process.exitcode})", traceback="")) from None

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=30)
        self.conn.close()


def _group_process_main(conn, job: dict[str, Any]) -> None:
    """The body of a :class:`_GroupProcess`."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and kills us
    from clbench.app.runner import RunContext, resolve_device
    from clbench.scenarios.data import DataConfig

    ctx = RunContext(resolve_device(job["device"]),
                     DataConfig.from_options(job["data_dir"], job["download"]),
                     executor=job.get("executor", "local"), logs=tuple(job.get("logs", ())))
    conn.send("ready")
    while True:
        try:
            spec_docs = conn.recv()
        except EOFError:  # the parent closed: done
            return
        conn.send(_group_reply(spec_docs, ctx, lambda: conn.send("started")))


def _group_reply(spec_docs: list[dict[str, Any]], ctx, started) -> dict[str, Any]:
    """One group run by :func:`clbench.app.runner.execute_group` as plain JSON: ``{"results":
    [document, ...]}`` or, for bad input, ``{"error": class name, "message": ..., "hint":
    ...}``. ``started()`` is called once the process's set-up is done, as the group starts."""
    from clbench.app.runner import execute_group
    from clbench.app.warmup import warm_up

    try:
        specs = [RunSpec.from_json(doc) for doc in spec_docs]
        warm_up(specs[0], len(specs), ctx.device, ctx.data)
        started()
        results = execute_group(specs, ctx)
    except ClbenchError as exc:
        return {"error": type(exc).__name__, "message": exc.message, "hint": exc.hint}
    return {"results": [result.to_json() for result in results]}


def _from_reply(reply: dict[str, Any]) -> Outcome:
    """The outcome of a group from a child's or a Ray task's reply: its validated results, or
    the DataError that kept it from running (other bad input is raised: it concerns the whole
    run)."""
    if "error" in reply:
        kind = DataError if reply["error"] == "DataError" else ConfigError
        exc = kind(reply["message"], hint=reply.get("hint"))
        if kind is DataError:
            return exc
        raise exc  # bad input the driver could not see (a plugin missing on the node)
    results = []
    for doc in reply["results"]:
        try:
            results.append(parse(doc))
        except ResultsError as exc:
            raise ResultsError(f"a worker returned an invalid result: {exc.message}",
                               hint="the workers run another clbench than the driver? "
                               "install the same version on every node") from None
    return results


def _failed_group(group: list[RunSpec], error: RunError, device, executor: str
                  ) -> list[RunResult]:
    """``failed`` results of a group that never reported (timed out, or its process died)."""
    from clbench.app.runner import lost_group_results

    return lost_group_results(group, error, run_identity(device, executor))


def make_executor(name: str = "local", **options: Any) -> Executor:
    """The executor registered as ``name`` (``local``, ``ray`` or a plugin's), built with
    ``options``: keywords of its :class:`Option` s; None stands for left out."""
    cls = EXECUTORS.get(name)
    given = {k: v for k, v in options.items() if v is not None}
    own = {o.keyword for o in getattr(cls, "options", ())}
    foreign = [k for k in given if k not in own]
    if foreign:
        owners = sorted({n for n, c in EXECUTORS.items() for k in foreign
                         if k in {o.keyword for o in getattr(c, "options", ())}} - {name})
        raise ConfigError(
            f"{', '.join(foreign)} {'does' if len(foreign) == 1 else 'do'} not apply to "
            f"--executor {name}" + (f" (only to --executor {' or '.join(owners)})"
                                    if owners else ""),
            hint=f"--executor {name} takes "
            + (", ".join(sorted(own)) if own else "no options") + "; leave the others out")
    return cls(**given)


# --- Ray ------------------------------------------------------------------------------------


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ConfigError("--executor ray needs Ray, which is not installed here",
                          hint="pip install 'clbench[ray]'") from None
    return ray


def _check_reachable(address: str) -> None:
    """ConfigError naming ``address`` unless something accepts TCP connections there within
    ``RAY_CONNECT_TIMEOUT_S`` (ray.init would otherwise retry for a long time)."""
    hostport = address.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"cannot read --ray-address {address!r}",
                          hint="give auto or HOST:PORT (the head node's GCS port, 6379 by "
                          "default)")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), RAY_CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        raise ConfigError(f"cannot reach a Ray cluster at {address}: "
                          f"{exc.strerror or exc}",
                          hint="start it with `ray start --head` on that machine, check the "
                          "address and port, or leave out --ray-address to run on a local "
                          "Ray instance") from None


@EXECUTORS.register("ray")
class RayExecutor:
    """Each group one Ray task (``num_cpus``/``num_gpus`` from the options). Tasks whose worker
    dies are retried by Ray ``max_retries`` times, then the group is recorded ``failed`` with
    the cause; an exception of the strategy is a result (``failed``) and never retried."""

    description = "each group a Ray task, in parallel, on a local Ray instance or a cluster"
    options: ClassVar[tuple[Option, ...]] = (
        Option("--ray-address", "address", str, "auto|HOST:PORT",
               "join a running Ray cluster (default: start a local Ray instance)"),
        Option("--cpus-per-group", "cpus_per_group", POSITIVE, "N",
               "CPUs (and torch threads) per group (default 1)"),
        Option("--gpus-per-group", "gpus_per_group", NON_NEGATIVE, "N",
               "GPUs per group; fractions pack groups on a GPU (default 0)"),
        Option("--max-retries", "max_retries", NON_NEGATIVE_INT, "N",
               "retries of a group whose worker died (default 2)"),
    )

    def __init__(self, address: str | None = None, cpus_per_group: float = 1.0,
                 gpus_per_group: float = 0.0, max_retries: int = 2):
        if not (isinstance(cpus_per_group, int | float) and cpus_per_group > 0):
            raise ConfigError(f"--cpus-per-group must be a positive number, got "
                              f"{cpus_per_group!r}")
        if not (isinstance(gpus_per_group, int | float) and gpus_per_group >= 0):
            raise ConfigError(f"--gpus-per-group must be 0 or more, got {gpus_per_group!r}")
        if gpus_per_group > 1 and gpus_per_group != int(gpus_per_group):
            raise ConfigError(f"--gpus-per-group {gpus_per_group}: above 1 Ray takes whole "
                              "GPUs only", hint="give a fraction up to 1, or a whole number")
        if not (isinstance(max_retries, int) and max_retries >= 0):
            raise ConfigError(f"--max-retries must be 0 or more, got {max_retries!r}")
        self.address, self.max_retries = address, max_retries
        self.cpus, self.gpus = float(cpus_per_group), float(gpus_per_group)
        self.ray = None
        self.started = False  # this executor started (or joined) Ray, so it disconnects
        self.concurrency = 1

    def check_device(self, device: str) -> None:
        text = (device or "auto").strip().lower()
        if text not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"--device {device} with --executor ray: Ray assigns each task "
                              "its GPUs", hint="use --device auto, cpu or cuda with "
                              "--gpus-per-group")
        if text == "cpu" and self.gpus > 0:
            raise ConfigError("--device cpu with --gpus-per-group > 0",
                              hint="leave out one of them")
        if text == "cuda" and self.gpus == 0:
            raise ConfigError("--device cuda with --executor ray needs --gpus-per-group",
                              hint="e.g. --gpus-per-group 1 (0.25 packs four groups per GPU)")

    def open(self, job: Job) -> None:
        ray = self.ray = _import_ray()
        self.job = job
        where = self.address or "a local Ray instance"
        if ray.is_initialized():  # joined by the caller (a script, a test): theirs to stop
            where = "the connected Ray cluster"
        elif self.address:
            if self.address != "auto":
                _check_reachable(self.address)
            try:
                ray.init(address=self.address, include_dashboard=False, log_to_driver=False,
                         configure_logging=False)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise ConfigError(f"cannot join the Ray cluster at {self.address}: {exc}",
                                  hint="start one with `ray start --head`, or leave out "
                                  "--ray-address to run on a local Ray instance") from None
            self.started = True
        else:
            # sized to the machine (its CPUs and GPUs); no dashboard: nothing to serve
            ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
            self.started = True
        try:
            self._check_resources(where)
        except ConfigError:
            self.close()
            raise

    def _check_resources(self, where: str) -> None:
        """ConfigError before anything is submitted when no node can hold one group (Ray
        would wait for it forever); the groups that fit at once set the submission window."""
        nodes = [n.get("Resources", {}) for n in self.ray.nodes() if n.get("Alive")]
        gpus = sum(n.get("GPU", 0) for n in nodes)
        if self.gpus > 0 and not gpus:
            raise ConfigError(f"--gpus-per-group {self.gpus:g}: {where} has no GPU",
                              hint="leave out --gpus-per-group to train on CPUs, or join a "
                              "cluster with GPUs")
        fits = [min(math.floor(n.get("CPU", 0) / self.cpus + 1e-9),
                    math.floor(n.get("GPU", 0) / self.gpus + 1e-9) if self.gpus else 1 << 30)
                for n in nodes]
        if not any(fits):
            most_cpu = max((n.get("CPU", 0) for n in nodes), default=0)
            most_gpu = max((n.get("GPU", 0) for n in nodes), default=0)
            raise ConfigError(
                f"no node of {where} has {self.cpus:g} CPUs and {self.gpus:g} GPUs for a "
                f"group (the largest has {most_cpu:g} CPUs, {most_gpu:g} GPUs)",
                hint="lower --cpus-per-group / --gpus-per-group")
        self.concurrency = sum(fits)

    def execute(self, groups, progress=None):
        ray = self.ray
        task = ray.remote(_ray_task).options(
            num_cpus=self.cpus, num_gpus=self.gpus, max_retries=self.max_retries,
            retry_exceptions=False)
        job = dataclasses.asdict(self.job) | {"cpus": self.cpus, "gpus": self.gpus,
                                              "git": git_state(os.getcwd())}
        window = 2 * self.concurrency  # queued beyond the running ones: no idle gap between
        in_flight: dict[Any, list[RunSpec]] = {}
        started: dict[Any, float] = {}  # when each group's clock of --run-timeout started
        limit = self.job.run_timeout
        pending = iter(groups)
        more = True
        try:
            while True:
                while more and len(in_flight) < window:
                    group = next(pending, None)
                    if group is None:
                        more = False
                        break
                    in_flight[task.remote([s.to_json() for s in group], job,
                                          sys.argv[1:])] = group
                if not in_flight:
                    return
                timeout = None
                if limit is not None:
                    # The oldest groups that fit at once are taken to be running (Ray starts
                    # tasks in submission order as resources free up): their clocks run.
                    now = time.monotonic()
                    for ref in list(in_flight)[:self.concurrency]:
                        started.setdefault(ref, now)
                    timeout = max(0.0, min(started[r] + limit for r in started) - now)
                ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=timeout)
                if ready:
                    (ref,) = ready
                    group = in_flight.pop(ref)
                    started.pop(ref, None)
                    outcome = self._outcome(ref, group)
                else:  # the oldest running group overran --run-timeout: stop it
                    ref = min(started, key=started.get)
                    group = in_flight.pop(ref)
                    started.pop(ref)
                    ray.cancel(ref, force=True)
                    outcome = self._lost(group, RunError(
                        type="timeout", message=f"the group did not finish within "
                        f"--run-timeout {limit:g} s: its Ray task was cancelled (force=True)",
                        traceback=""))
                if progress and not isinstance(outcome, DataError):
                    progress.group_done(group, outcome)
                yield group, outcome
        finally:  # Ctrl-C, an error, or the caller stopped: nothing is left running
            if in_flight:
                # Cancel only what has not finished: force-cancelling a task whose reply is
                # arriving trips a fatal check in Ray 2.60's task manager ("Tried to complete
                # task that was not pending"), which kills the driver.
                _, unfinished = ray.wait(list(in_flight), num_returns=len(in_flight),
                                         timeout=0)
                for ref in unfinished:
                    ray.cancel(ref, force=True)

    def _outcome(self, ref, group: list[RunSpec]) -> Outcome:
        ray = self.ray
        try:
            reply = ray.get(ref)
        except ray.exceptions.RayError as exc:  # the worker or node died, retries spent
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            return self._lost(group, RunError(
                type=type(exc).__name__,
                message=f"the Ray task of this group died (tried {self.max_retries + 1} "
                        f"time(s)): {first}",
                traceback=str(exc)[-4000:]))
        return _from_reply(reply)

    def _lost(self, group: list[RunSpec], error: RunError) -> list[RunResult]:
        """``failed`` results of a group whose task never reported: where it ran is unknown."""
        from clbench.app.runner import lost_group_results

        identity = dataclasses.replace(
            run_identity(_cpu(), "ray"), cpu=None, cpu_count=None, torch_threads=None,
            device=None, device_name=None, host=None)
        return lost_group_results(group, error, identity)

    def close(self) -> None:
        if self.started and self.ray is not None:
            self.ray.shutdown()
        self.started = False


def _cpu():
    import torch

    return torch.device("cpu")


def _node() -> str:
    try:
        import ray

        ip = ray.util.get_node_ip_address()
    except Exception:  # the name of the node is a courtesy: never fail over it
        ip = None
    return f"{platform.node()} ({ip})" if ip else platform.node()


def _ray_task(spec_docs: list[dict[str, Any]], job: dict[str, Any],
              argv: list[str]) -> dict[str, Any]:
    """One group on a Ray worker: the same ``execute_group`` as the local executor, without the
    store. Returns ``{"results": [document, ...]}`` or, for bad input on this node (its data
    missing), ``{"error": class name, "message": ..., "hint": ...}`` naming the node."""
    import torch

    from clbench.app.runner import RunContext, execute_group, resolve_device
    from clbench.scenarios.data import DataConfig

    torch.set_num_threads(max(1, int(job["cpus"])))
    device = job["device"].strip().lower()
    if device == "auto":
        device = "cuda" if job["gpus"] > 0 else "cpu"
    try:
        specs = [RunSpec.from_json(doc) for doc in spec_docs]
        ctx = RunContext(resolve_device(device),
                         DataConfig.from_options(job["data_dir"], job["download"]),
                         executor="ray", logs=tuple(job.get("logs", ())))
        results = execute_group(specs, ctx)
    except ClbenchError as exc:
        return {"error": type(exc).__name__, "message": f"{exc.message} (on Ray node "
                f"{_node()})", "hint": exc.hint}
    # The command and the code's checkout are the driver's (what was run); the rest is this
    # worker's (where it ran).
    git = GitState(**job["git"])
    return {"results": [
        dataclasses.replace(result, identity=dataclasses.replace(
            result.identity, argv=tuple(argv), git=git)).to_json()
        for result in results]}
