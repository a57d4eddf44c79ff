"""``clbench``: a thin command line over :mod:`clbench.api`.

Exit status: 0 all good; 1 some run failed (``gate``: a significant regression, or a baseline
cell missing now); 2 bad input (unknown names, bad parameters, unreadable results: ``report``
still writes its files from the documents it could read, names each one skipped on stderr and
exits 2; ``gate`` with no cell compared; stdout unwritable, e.g. a full disk), and any run
skipped for missing data, one run or a suite alike, unless ``--allow-missing-data``; 130
interrupted
(finished runs are kept: rerun to resume).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from clbench import api
from clbench.app import tracking
from clbench.app.executors import EXECUTORS, make_executor
from clbench.errors import ClbenchError, ConfigError
from clbench.metrics import MATRIX_METRICS, matrix_metric
from clbench.numbers import (
    COUNT,
    NON_NEGATIVE,
    NON_NEGATIVE_INT,
    POSITIVE,
    PROBABILITY,
    TUNE_VALIDATION,
    VALIDATION,
)
from clbench.registry import REPORTERS

LISTABLE = ("scenarios", "strategies", "backbones", "reporters", "executors", "trackers",
            "suites", "budgets")
err = Console(stderr=True, highlight=False, soft_wrap=True)  # paths stay on one line


class ProgressBar:
    """Runs and tasks done, on stderr: a bar on a terminal; elsewhere (CI logs, pipes) one line
    per finished group: what ran, its seeds, status, mean ACC, time, runs left and an ETA."""

    def __init__(self, total_runs: int):
        self.total, self.finished = total_runs, 0
        self.start = time.monotonic()
        self.group_start = None  # unset when the group ran elsewhere (a Ray worker)
        self.lines = not err.is_terminal
        self.bar = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), console=err, disable=self.lines, transient=False,
        )
        self.runs = self.bar.add_task("runs", total=total_runs)
        self.tasks = self.bar.add_task("tasks", total=1, visible=False)

    def __enter__(self):
        self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        return self.bar.__exit__(*exc)

    def group_started(self, specs, n_tasks):
        self.group_start = time.monotonic()
        self.bar.reset(self.tasks, total=n_tasks, visible=True,
                       description=f"  {_group_label(specs)}")

    def task_done(self, specs, task):
        self.bar.advance(self.tasks)

    def group_done(self, specs, results):
        self.bar.advance(self.runs, len(specs))
        self.finished += len(specs)
        if not self.lines:
            return
        statuses = sorted({r.status for r in results})
        finals = [r.accuracy_matrix[-1] for r in results if r.status == "ok"]
        accs = [sum(row) / len(row) for row in finals if row and None not in row]
        acc = f"ACC {sum(accs) / len(accs):.3f}" if accs else "ACC n/a"
        elapsed = time.monotonic() - self.start
        left = self.total - self.finished
        eta = f", ETA {_duration(elapsed / self.finished * left)}" if left else ""
        took = time.monotonic() - self.group_start if self.group_start is not None \
            else (results[0].times.wall_s or 0.0) if results else 0.0
        self.group_start = None
        err.print(f"{_group_label(specs)}: {'/'.join(statuses)}, {acc}, "
                  f"{_duration(took)}; {self.finished}/"
                  f"{self.total} runs done, {left} left{eta}", markup=False)


def _group_label(specs) -> str:
    first = specs[0]
    seeds = ",".join(str(s.seed) for s in specs)
    return f"{first.strategy} on {first.scenario} [seeds {seeds}]"


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{seconds:.1f}s"




class StdoutError(ClbenchError):
    """Standard output cannot be written (a full disk, ``> /dev/full``): exit 2, not a
    traceback, and never 1 (``gate``'s "regression")."""


def emit(text: str = "", end: str = "\n") -> None:
    """``print`` to stdout; StdoutError when stdout cannot take it (a reader that left is a
    BrokenPipeError, handled by :func:`main`)."""
    with _stdout_errors():
        print(text, end=end)


def _flush_stdout() -> None:
    with _stdout_errors():
        sys.stdout.flush()


@contextlib.contextmanager
def _stdout_errors():
    """An OSError writing stdout (a full disk) as StdoutError; a reader that left stays a
    BrokenPipeError, handled by :func:`main`."""
    try:
        yield
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise StdoutError(f"cannot write to standard output: {exc.strerror or exc}",
                          hint="redirect it to a file on a disk with free space") from exc


def _silence_stdout() -> None:
    """Point stdout at devnull, so that the interpreter's final flush stays quiet."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def _add_run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--suite",
                   help="built-in suite name (smoke, demo, standard, nightly) or a TOML file")
    p.add_argument("--scenario", action="append", default=[], metavar="NAME[:k=v,...]",
                   help="scenario, repeatable (with --suite: replaces the suite's list)")
    p.add_argument("--strategy", action="append", default=[], metavar="NAME[:k=v,...]",
                   help="strategy or module:Class, repeatable")
    p.add_argument("--seeds", help="e.g. 0,1,2 or 0-4 (default: the suite's, else 0)")
    p.add_argument("--budget", help="smoke, default or paper (default: the suite's, else default)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--data-dir", help="dataset folder (default: $CLBENCH_DATA or the user cache)")
    p.add_argument("--no-download", action="store_true",
                   help="never download missing datasets (also: CLBENCH_OFFLINE=1)")
    p.add_argument("--results", default=api.DEFAULT_RESULTS, help="results directory")
    p.add_argument("--rerun", action="store_true", help="run again even if results exist")
    p.add_argument("--group-size", type=COUNT, help="most seeds trained together as one model")
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan, its run count and a time estimate; run nothing")
    p.add_argument("--validation", type=VALIDATION, default=0.0, metavar="FRACTION",
                   help="evaluate on this fraction of each task's training data, held out, "
                        "instead of the test split (default 0: the test split)")
    p.add_argument("--eval-every", type=NON_NEGATIVE_INT, default=0, metavar="N",
                   help="continual evaluation: also score every task seen so far and the next "
                        "every N optimiser steps (a curve in each result; default 0: off)")
    p.add_argument("--eval-subset", type=NON_NEGATIVE_INT, default=0, metavar="K",
                   help="with --eval-every: K fixed, seeded samples per task (default 0: all)")
    p.add_argument("--log", action="append", default=[], metavar="NAME:TARGET",
                   help="stream each run's hyperparameters, loss, curve and final metrics to "
                        "an experiment tracker, repeatable: tensorboard:DIR or mlflow:URI "
                        "(e.g. mlflow:sqlite:///mlflow.db)")
    p.add_argument("--allow-missing-data", action="store_true",
                   help="exit 0 even if runs were skipped because their data is missing")
    _add_executor_args(p)


def _help(text: str) -> str:
    """A plugin's text as argparse help: its ``%`` are not format fields ("95% CI")."""
    return text.replace("%", "%%")


def _add_timeout_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run-timeout", type=POSITIVE, metavar="SECONDS",
                   help="stop a group that runs longer and record it failed (timeout); the "
                   "suite goes on (default: no limit; see README: Time limits)")


def _add_executor_args(p: argparse.ArgumentParser) -> None:
    """--executor and every registered executor's own options (clbench.app.executors.Option)."""
    ex = p.add_argument_group("executor (see README: More than one machine)")
    executors = EXECUTORS.items()
    ex.add_argument("--executor", choices=[name for name, _ in executors], default="local",
                    help=_help("; ".join(f"{name}: {getattr(cls, 'description', '')}"
                                         for name, cls in executors)))
    seen: dict[str, str] = {}
    for name, cls in executors:
        for option in getattr(cls, "options", ()):
            if option.flag in seen:
                raise ConfigError(f"the executors {seen[option.flag]!r} and {name!r} both "
                                  f"declare {option.flag}",
                                  hint="rename the option of one of them")
            seen[option.flag] = name
            try:
                ex.add_argument(option.flag, type=option.type, metavar=option.metavar,
                                dest=_dest(option),
                                help=_help(f"{name}: {option.help}" if option.help else name))
            except argparse.ArgumentError:
                raise ConfigError(f"the executor {name!r} declares {option.flag}, an option "
                                  f"clbench {p.prog.split()[-1]} has already",
                                  hint="rename the executor's option") from None


def _dest(option) -> str:
    """Where argparse keeps an executor option's value: apart from every other option's."""
    return f"executor:{option.flag}"


def _executor(args):
    """The executor ``--executor`` names, built from its own options; an option of another
    executor is refused (it would be ignored)."""
    chosen = EXECUTORS.get(args.executor)
    own = {o.flag for o in getattr(chosen, "options", ())}
    for name, cls in EXECUTORS.items():
        for option in getattr(cls, "options", ()):
            if option.flag not in own and getattr(args, _dest(option), None) is not None:
                raise ConfigError(f"{option.flag} only applies to --executor {name}",
                                  hint=f"add --executor {name}, or leave {option.flag} out")
    return make_executor(args.executor, **{o.keyword: getattr(args, _dest(o))
                                           for o in getattr(chosen, "options", ())})


# report's options that are not formats
REPORT_OPTIONS = ("results", "figures", "table", "metrics", "baseline", "appendix")


def _add_format_args(p: argparse.ArgumentParser) -> None:
    """One --NAME FILE option per registered reporter (a plugin's included)."""
    for name, cls in REPORTERS.items():
        if name.replace("-", "_") in REPORT_OPTIONS:
            raise ConfigError(f"the reporter {name!r} ({cls.__module__}) would hide "
                              f"clbench report's --{name}", hint="register it under another name")
        try:
            p.add_argument(f"--{name}", metavar="FILE", dest=f"format:{name}",
                           help=_help(f"{getattr(cls, 'description', name)} (- for stdout)"))
        except argparse.ArgumentError:
            raise ConfigError(f"the reporter {name!r} ({cls.__module__}) has the name of an "
                              "option clbench report has already",
                              hint="register it under another name") from None


def _requested_formats(args) -> dict[str, str]:
    return {name: getattr(args, f"format:{name}") for name in REPORTERS.names()
            if getattr(args, f"format:{name}", None)}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clbench", description="Continual-learning benchmarks: run, keep, report.")
    sub = parser.add_subparsers(dest="command", required=True)
    lst = sub.add_parser("list",
                         help="list scenarios, strategies, backbones, reporters, executors, "
                         "trackers, suites or budgets")
    lst.add_argument("what", nargs="?", default="all",
                     choices=["all", *LISTABLE])
    lst.add_argument("--json", action="store_true", help="machine-readable output")
    run = sub.add_parser("run", help="run a suite or a scenario x strategy grid")
    _add_run_args(run)
    _add_timeout_arg(run)
    tun = sub.add_parser("tune", help="search a strategy's parameters on the validation split")
    tun.add_argument("--scenario", required=True, metavar="NAME[:k=v,...]")
    tun.add_argument("--strategy", required=True, metavar="NAME[:k=v,...]",
                     help="the strategy, with any parameters held fixed")
    tun.add_argument("--space", action="append", default=[], required=True,
                     metavar="NAME=a,b,c|NAME=low:high|NAME=log:low:high",
                     help="one searched parameter, repeatable")
    tun.add_argument("--sampler", default="grid", choices=["grid", "random", "tpe"],
                     help="grid (every combination), random, or tpe (Optuna, if installed)")
    tun.add_argument("--trials", type=COUNT, help="configurations to try (random, tpe; "
                                                "with grid: the first N)")
    tun.add_argument("--seeds", default="0", help="seeds of every trial (default 0)")
    tun.add_argument("--budget", default="default", help="smoke, default or paper")
    tun.add_argument("--validation", type=TUNE_VALIDATION, default=0.1, metavar="FRACTION",
                     help="held-out fraction of each task's training data (default 0.1)")
    tun.add_argument("--tune-tasks", dest="tasks", type=NON_NEGATIVE_INT, default=0,
                     metavar="K",
                     help="train and score on the scenario's first K tasks only (the A-GEM "
                          "protocol; default: all tasks)")
    tun.add_argument("--metric", default="acc", help=f"{', '.join(MATRIX_METRICS)} (default acc)")
    tun.add_argument("--search-seed", type=NON_NEGATIVE_INT, default=0,
                     help="seed of the random/tpe sampler")
    tun.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    tun.add_argument("--data-dir", help="dataset folder")
    tun.add_argument("--no-download", action="store_true", help="never download datasets")
    tun.add_argument("--results", default=api.DEFAULT_RESULTS, help="results directory")
    tun.add_argument("--group-size", type=COUNT, help="most seeds trained together as one model")
    tun.add_argument("--markdown", metavar="FILE", help="write the search report (- stdout)")
    tun.add_argument("--json", metavar="FILE", help="write the search as JSON (- stdout)")
    _add_executor_args(tun)
    _add_timeout_arg(tun)
    rep = sub.add_parser("report", help="render the results store")
    rep.add_argument("--results", default=api.DEFAULT_RESULTS, help="results directory")
    _add_format_args(rep.add_argument_group("formats (one per registered reporter)"))
    rep.add_argument("--figures", metavar="DIR",
                     help="write heatmaps, accuracy curves, stability-gap plots (runs with "
                          "--eval-every) and parameter growth as SVG and PDF")
    tab = rep.add_argument_group("tables (LaTeX, Markdown, HTML)")
    tab.add_argument("--table", choices=("paper", "detail"),
                     help="paper: strategies x scenarios, the chosen metrics as mean ± sd, "
                          "marks against --baseline (LaTeX's default; Markdown and HTML put it "
                          "first); detail: one table per scenario (Markdown's and HTML's)")
    tab.add_argument("--metrics", metavar="M1,M2", default="acc",
                     help="the paper table's metrics (default acc)")
    tab.add_argument("--baseline", metavar="STRATEGY",
                     help="mark the paper table's cells significantly better (+) or worse (-) "
                          "than this strategy (paired by seed, Holm over the table)")
    tab.add_argument("--appendix", action="store_true",
                     help="the per-scenario detail tables after the paper table (LaTeX)")
    cmp = sub.add_parser("compare", help="a candidate strategy against baselines, per scenario")
    cmp.add_argument("--candidate", required=True, metavar="STRATEGY",
                     help="strategy name or leaderboard label")
    cmp.add_argument("--baselines", metavar="S1,S2",
                     help="comma-separated strategies (default: every other strategy)")
    cmp.add_argument("--results", default=api.DEFAULT_RESULTS, help="results directory")
    cmp.add_argument("--markdown", metavar="FILE", help="write the Markdown comparison")
    cmp.add_argument("--html", metavar="FILE", help="write the HTML comparison")
    cmp.add_argument("--alpha", type=PROBABILITY, default=0.05,
                     help="significance level, in (0, 1) (default 0.05)")
    cmp.add_argument("--test", choices=("paired-t", "wilcoxon", "welch"), default="paired-t",
                     help="paired by seed (paired-t, the default, or wilcoxon's signed-rank "
                          "test) or welch (unpaired); a paired test falls back to welch, "
                          "said in the output, where the two cells' seeds differ")
    _add_adjust_arg(cmp)
    gat = sub.add_parser("gate", help="fail (exit 1) when a cell regressed against a baseline")
    gat.add_argument("--baseline", required=True, metavar="OLD_RESULTS",
                     help="results directory to compare against")
    gat.add_argument("--current", required=True, metavar="NEW_RESULTS",
                     help="results directory under test")
    gat.add_argument("--metric", default="acc",
                     help=f"{', '.join(MATRIX_METRICS)} (default acc)")
    gat.add_argument("--max-drop", type=NON_NEGATIVE, default=0.01,
                     help="largest tolerated worsening of the metric's mean (default 0.01)")
    gat.add_argument("--alpha", type=PROBABILITY, default=0.05,
                     help="significance level, in (0, 1) (default 0.05): paired t-test by "
                          "seed where both stores ran the same seeds, else Welch's")
    _add_adjust_arg(gat)
    gat.add_argument("--markdown", metavar="FILE", help="also write the summary to FILE")
    return parser


def _add_adjust_arg(parser) -> None:
    parser.add_argument("--adjust", choices=("holm", "bh", "none"), default="holm",
                        help="adjustment of the p-values for multiple tests, all tests of the "
                             "output being one family: holm (family-wise error, the default), "
                             "bh (Benjamini-Hochberg false discovery rate) or none")


def cmd_list(args) -> int:
    kinds = list(LISTABLE) if args.what == "all" else [args.what]
    listing = {k: api.describe_registered(k) for k in kinds}
    if args.json:
        emit(json.dumps(listing, indent=1, default=str))
        return 0
    for kind, items in listing.items():
        emit(f"{kind}:")
        for item in items:
            version = f" (version {item['version']})" if "version" in item else ""
            emit(f"  {item['name']:<18} {item['description']}{version}")
            if item.get("missing"):
                emit(f"      not installed: {item['missing']}")
            for name, type_, default in item.get("params", []):
                emit(f"      {name} ({type_}) = {default!r}")
            for option in item.get("options", []):
                emit(f"      {option['flag']} {option['metavar']}: {option['help']}")
            overrides = item.get("scenario_defaults")
            if overrides:
                emit("      defaults per scenario and budget (in order; later entries win):")
                for o in overrides:
                    values = ", ".join(f"{k}={v!r}" for k, v in o["values"].items())
                    emit(f"        {o['scenario']} / {o['budget']}: {values}")
    return 0


def cmd_run(args) -> int:
    specs, notes = api.plan(args.suite, args.scenario, args.strategy, args.seeds, args.budget,
                            args.validation, eval_every=args.eval_every,
                            eval_subset=args.eval_subset)
    for note in notes:
        err.print(f"note: {note}")
    executor = _executor(args)
    api.check_run_options(args.device, args.group_size, args.results, dry_run=args.dry_run,
                          executor=executor, run_timeout=args.run_timeout)
    tracking.check_logs(args.log)
    if args.dry_run:
        for spec in specs:
            emit(f"{spec.hash}  {spec.label()}")
        estimate = api.estimate(specs, args.results, args.group_size)
        print(estimate.line(), file=sys.stderr)
        return 0
    with ProgressBar(len(specs)) as bar:
        summary = api.run(specs, args.results, args.device, args.data_dir,
                          False if args.no_download else None, args.rerun, args.group_size, bar,
                          executor, allow_missing_data=args.allow_missing_data,
                          run_timeout=args.run_timeout, logs=args.log)
    for message in summary.not_run:
        err.print(f"not run, data missing: {message}", markup=False)
    for failure in summary.failures:
        err.print(f"failed: {failure}", markup=False)
    err.print(
        f"{summary.planned} planned: {summary.ran} ran, {summary.skipped} already done, "
        f"{summary.failed} failed, {summary.diverged} diverged"
        + (f", {summary.without_data} without data" if summary.without_data else "")
        + (f", {summary.elsewhere} running in another process" if summary.elsewhere else "")
        + f"; results in {args.results}", markup=False)
    if summary.without_data and not args.allow_missing_data:
        err.print(f"{summary.without_data} run(s) skipped because their data is missing: exit "
                  "status 2 (provide the data, or pass --allow-missing-data to exit 0; the "
                  "report lists them as not run)", markup=False)
    return summary.exit_code


def cmd_tune(args) -> int:
    outputs = {k: getattr(args, k) for k in ("markdown", "json") if getattr(args, k)}
    result, rendered = api.tune(
        args.scenario, args.strategy, args.space, sampler=args.sampler, trials=args.trials,
        seeds=args.seeds, budget=args.budget, validation=args.validation, metric=args.metric,
        search_seed=args.search_seed, tasks=args.tasks, results=args.results,
        outputs=outputs or {"markdown": "-"}, device=args.device, data_dir=args.data_dir,
        download=False if args.no_download else None, group_size=args.group_size,
        executor=_executor(args), run_timeout=args.run_timeout)
    for name, path in (outputs or {"markdown": "-"}).items():
        if path == "-":
            emit(rendered[name], end="")
        else:
            err.print(f"wrote the {name} search report to {path}", markup=False)
    best = result.best
    if best is None and all(t.status == "not run" for t in result.trials):
        # nothing ran (no configuration, data missing, each run held elsewhere): not a failure
        # of the strategy, so not exit 1
        err.print(f"error: nothing ran: {len(result.trials)} trial(s), none with a stored run "
                  "(its data is missing, or another process holds each run)", markup=False)
        return 2
    if best is None:
        err.print("no trial has a score (every trial failed or diverged)", markup=False)
        return 1
    scored = sum(t.score is not None for t in result.trials)
    unscored = len(result.trials) - scored
    err.print(f"best of {scored} scored trial(s)"
              + (f" ({unscored} without a score)" if unscored else "")
              + f": {best.resolved()} "
              f"(validation {args.metric} {best.score:.4f}); runs in {args.results}",
              markup=False)
    return 0


def cmd_report(args) -> int:
    outputs = _requested_formats(args)
    if not outputs and not args.figures:
        flags = [f"--{name}" for name in REPORTERS.names()]
        raise ClbenchError("no output requested",
                           hint=f"add {', '.join(flags[:-1])} or {flags[-1]} FILE (- for "
                                "stdout), or --figures DIR")
    skipped: list[str] = []
    from clbench.reports.paper_table import TableOptions

    table = TableOptions(args.table, tuple(m.strip() for m in args.metrics.split(",")
                                           if m.strip()), args.baseline, args.appendix)
    rendered = api.report(args.results, outputs,
                          warn=lambda line: err.print(line, markup=False),
                          skipped=skipped.append, table=table)
    if args.figures:
        written = api.figures(args.results, args.figures)
        err.print(f"wrote {len(written)} figure files to {args.figures}", markup=False)
    for name, path in outputs.items():
        if path == "-":
            emit(rendered[name])
        elif name == "html":
            err.print(f"wrote the HTML leaderboard to {path}: open "
                      f"{Path(path).resolve().as_uri()} in a browser", markup=False)
        else:
            err.print(f"wrote {name} report to {path}", markup=False)
    for problem in skipped:
        err.print(f"skipped: {problem}", markup=False)
    if skipped:
        # The report is written without them; the exit status says the store needs a look.
        err.print(f"{len(skipped)} document(s) skipped: rerun them with `clbench run` (they "
                  "are rerun and replaced) or remove them", markup=False)
        return 2
    return 0


def cmd_compare(args) -> int:
    baselines = [b.strip() for b in (args.baselines or "").split(",") if b.strip()]
    outputs = {k: getattr(args, k) for k in ("markdown", "html") if getattr(args, k)}
    rendered = api.compare(args.candidate, baselines, args.results, outputs, args.alpha,
                           test=args.test, adjust=args.adjust)
    if "markdown" not in outputs or outputs["markdown"] == "-":
        emit(rendered["markdown"])
    for name, path in outputs.items():
        if path != "-":
            err.print(f"wrote {name} comparison to {path}", markup=False)
    return 0


def cmd_gate(args) -> int:
    matrix_metric(args.metric)  # a typo is named before any store is read
    outputs = {"markdown": args.markdown} if args.markdown else {}
    result, text = api.gate(args.baseline, args.current, args.metric, args.max_drop, args.alpha,
                            outputs, adjust=args.adjust)
    emit(text)
    for row in result.missing:
        err.print(f"gate: missing from {args.current}: {row.scenario} / {row.strategy}",
                  markup=False)
    if not result.compared:
        err.print(f"error: gate compared no cell: none of the {len(result.rows)} cell(s) is in "
                  f"both {args.baseline} and {args.current} with values in the baseline\n"
                  "  hint: gate stores of the same suite and budget", markup=False)
    else:
        err.print(f"gate: {len(result.regressions)} regression(s), {len(result.missing)} "
                  f"missing, in {len(result.compared)} of {len(result.rows)} cell(s) compared",
                  markup=False)
    return result.exit_code


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: ``argv`` (default ``sys.argv[1:]``) -> exit status. Run as the
    program (``argv`` None), it never waits for threads a plugin left running."""
    code = _main(argv)
    if argv is None:
        _exit_despite_threads(code)
    return code


def _exit_despite_threads(code: int) -> None:
    """Python waits at exit for every non-daemon thread: one that a strategy started and never
    stopped would keep the finished command alive forever. Name them, then exit at once (the
    results are written and the summary printed)."""
    import threading

    left = [t for t in threading.enumerate()
            if t is not threading.main_thread() and not t.daemon and t.is_alive()]
    if not left:
        return
    err.print(f"warning: {len(left)} thread(s) left running by a strategy: "
              f"{', '.join(repr(t.name) for t in left)}; exiting without waiting for them",
              markup=False)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _main(argv: Sequence[str] | None) -> int:
    try:
        # the parser reads its choices from the registries: a broken plugin is named here
        args = build_parser().parse_args(argv)
        handler = {"list": cmd_list, "run": cmd_run, "tune": cmd_tune, "report": cmd_report,
                   "compare": cmd_compare, "gate": cmd_gate}[args.command]
        code = handler(args)
        _flush_stdout()  # a full disk shows here when the output was small
        return code
    except ClbenchError as exc:
        err.print(f"error: {exc}", markup=False)
        if isinstance(exc, StdoutError):
            _silence_stdout()
        return 2
    except KeyboardInterrupt:
        err.print("interrupted: finished runs are saved; run the same command again to resume",
                  markup=False)
        return 130
    except BrokenPipeError:
        # the reader of stdout left (`clbench report --markdown - | head -1`): not an error;
        _silence_stdout()
        return 0


if __name__ == "__main__":
    sys.exit(main())
