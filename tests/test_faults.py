"""Faults found by trying clbench as a hostile user or a failing machine would (issue 25): each
ends in the right result or a one-line error with a distinct exit status, never lost data, a
traceback or a silent pass."""

from __future__ import annotations

import json
import os
import shutil
import stat
import threading
from pathlib import Path

import pytest
from cli_run import clbench

from clbench import cli, numbers

TESTS_DIR = Path(__file__).parent
GOLDEN = TESTS_DIR / "golden" / "results"




# --- output paths that are not regular files: written into, never replaced ---------------------
# every command option that writes a file, with the words its text must hold
WRITERS = {
    "report --json": (["report", "--results", GOLDEN, "--json"], '"runs"'),
    "report --markdown": (["report", "--results", GOLDEN, "--markdown"], "|"),
    "report --html": (["report", "--results", GOLDEN, "--html"], "<html"),
    "report --csv": (["report", "--results", GOLDEN, "--csv"], "strategy"),
    "report --latex": (["report", "--results", GOLDEN, "--latex"], "\\begin"),
    "compare --markdown": (["compare", "--candidate", "joint", "--results", GOLDEN,
                            "--markdown"], "joint"),
    "compare --html": (["compare", "--candidate", "joint", "--results", GOLDEN, "--html"],
                       "<html"),
    "gate --markdown": (["gate", "--baseline", GOLDEN, "--current", GOLDEN, "--markdown"],
                        "gate"),
}


def _writer_ids():
    return [pytest.param(args, words, id=name) for name, (args, words) in WRITERS.items()]


@pytest.mark.parametrize("args, words", _writer_ids())
def test_output_through_a_symlink_reaches_its_target(args, words, tmp_path, capsys):
    target = tmp_path / "real.txt"
    target.write_text("old")
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    code, out, err = clbench(capsys, *args, link)
    assert code == 0, err
    assert link.is_symlink() and link.resolve() == target.resolve()
    assert words.lower() in target.read_text().lower()


@pytest.mark.parametrize("args, words", _writer_ids())
def test_output_into_a_fifo_is_streamed_not_replaced(args, words, tmp_path, capsys):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(Path(fifo).read_text()), daemon=True)
    reader.start()
    code, out, err = clbench(capsys, *args, fifo)
    reader.join(60)
    if reader.is_alive():  # unblock the reader if nothing ever opened the FIFO for writing
        with open(fifo, "w"):
            pass
        reader.join(5)
    assert code == 0, err
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode), "the FIFO was replaced by a file"
    assert got and words.lower() in got[0].lower()


@pytest.fixture
def null_device(tmp_path) -> Path:
    """A character device to write reports into. As root (where a regression would replace
    the machine's /dev/null for everyone), a private null device node in ``tmp_path``; else
    /dev/null itself, which a non-root user cannot replace."""
    if os.geteuid() != 0:
        return Path("/dev/null")
    node = tmp_path / "null"
    try:
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except OSError as exc:  # a container without CAP_MKNOD
        pytest.skip(f"cannot make a device node here ({exc.strerror}); never risk /dev/null")
    return node


@pytest.mark.parametrize("args, words", _writer_ids())
def test_a_device_stays_a_device(args, words, null_device, tmp_path, capsys):
    code, out, err = clbench(capsys, *args, null_device)
    assert code == 0, err
    assert stat.S_ISCHR(os.stat(null_device).st_mode)
    # and a link to it in a folder of ours stays a link to a device
    link = tmp_path / "link-to-null"
    link.symlink_to(null_device)
    code, out, err = clbench(capsys, *args, link)
    assert code == 0, err
    assert link.is_symlink() and stat.S_ISCHR(os.stat(link).st_mode)


def test_output_writer_on_every_kind_of_path(tmp_path):
    """The one writer every command uses: new path, regular file (replaced atomically, mode
    from the umask), dangling symlink (its target created), directory (refused)."""
    from clbench.files import write_output

    new = tmp_path / "sub" / "new.md"
    write_output(new, "a")
    assert new.read_text() == "a"
    old = os.umask(0o022)
    try:
        write_output(new, "b")
    finally:
        os.umask(old)
    assert new.read_text() == "b" and stat.S_IMODE(new.stat().st_mode) == 0o644
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "made.md")
    write_output(dangling, "c")
    assert dangling.is_symlink() and (tmp_path / "made.md").read_text() == "c"
    with pytest.raises(IsADirectoryError):
        write_output(tmp_path, "d")
    assert not list(tmp_path.glob(".*.tmp")), "a temporary was left behind"


def test_tune_outputs_follow_symlinks(tmp_path, capsys):
    md, js = tmp_path / "real.md", tmp_path / "real.json"
    (tmp_path / "md").symlink_to(md)
    (tmp_path / "js").symlink_to(js)
    code, out, err = clbench(capsys, "tune", "--scenario", "split-digits", "--strategy",
                             "naive", "--space", "lr=0.05", "--budget", "smoke", "--device",
                             "cpu", "--results", tmp_path / "r", "--markdown", tmp_path / "md",
                             "--json", tmp_path / "js")
    assert code == 0, err
    assert (tmp_path / "md").is_symlink() and (tmp_path / "js").is_symlink()
    assert "lr" in md.read_text() and json.loads(js.read_text())


def test_result_documents_follow_the_umask(tmp_path, capsys):
    old = os.umask(0o022)
    try:
        code, out, err = clbench(capsys, "run", "--scenario", "split-digits", "--strategy",
                                 "naive", "--budget", "smoke", "--device", "cpu", "--results",
                                 tmp_path / "r")
    finally:
        os.umask(old)
    assert code == 0, err
    docs = list((tmp_path / "r").glob("*.json"))
    assert docs and all(stat.S_IMODE(d.stat().st_mode) == 0o644 for d in docs)


# --- every number option of every command: checked the same way --------------------------------
# the least arguments each subcommand parses with (parsing fails before anything runs)
MINIMAL = {
    "run": ["--scenario", "split-digits", "--strategy", "naive", "--dry-run"],
    "tune": ["--scenario", "split-digits", "--strategy", "naive", "--space", "lr=0.1"],
    "compare": ["--candidate", "joint", "--results", GOLDEN],
    "gate": ["--baseline", GOLDEN, "--current", GOLDEN],
    "report": ["--results", GOLDEN, "--json", "-"],
    "list": [],
}


def _subparsers():
    parser = cli.build_parser()
    (sub,) = [a for a in parser._actions if a.choices and isinstance(a.choices, dict)]
    return sub.choices


def _number_options():
    for command, p in _subparsers().items():
        for action in p._actions:
            if isinstance(action.type, numbers.Number):
                yield command, action.option_strings[-1], action.type


def _outside(number: numbers.Number) -> list[str]:
    """Values each number option must refuse: not finite, not a number, past each bound."""
    bad = ["nan", "inf", "-inf", "NaN", "x", ""]
    if number.low is not None:
        bad.append(str(number.low if number.open_low else number.low - 1))
    if number.high is not None:
        bad += [str(number.high if number.open_high else number.high + 1), "5"]
    if number.kind is int:
        bad.append("1.5")
    return bad


def test_every_number_option_of_every_command_is_range_checked():
    """A number option added with a bare type=int/float would take NaN, inf or -3."""
    for command, p in _subparsers().items():
        for action in p._actions:
            assert action.type in (None, str) or isinstance(action.type, numbers.Number), \
                f"clbench {command} {action.option_strings}: type {action.type!r} is not a " \
                "range-checked clbench.numbers.Number"
    assert len(list(_number_options())) >= 12


@pytest.mark.parametrize("command, option, value", [
    pytest.param(c, o, v, id=f"{c} {o} {v!r}") for c, o, n in _number_options()
    for v in _outside(n)])
def test_number_options_refuse_non_finite_and_out_of_range(command, option, value, capsys):
    number = {(c, o): n for c, o, n in _number_options()}[command, option]
    code, out, err = clbench(capsys, command, *MINIMAL[command], f"{option}={value}")
    text = " ".join(err.split())
    assert code == 2 and "Traceback" not in text, text
    assert f"argument {option}" in text and number.range in text, text


def test_alpha_is_checked_by_the_api_too():
    from clbench import api
    from clbench.errors import ConfigError

    for alpha in (5, float("nan"), 0, 1, -0.1):
        with pytest.raises(ConfigError, match=r"alpha must be a number in \(0, 1\)"):
            api.compare("joint", [], GOLDEN, alpha=alpha)


# --- ambiguous input: the same key twice is an error, never "the last one wins" ----------------
AMBIGUOUS = {
    "run --strategy": ["run", "--scenario", "split-digits", "--strategy",
                       "naive:lr=0.1,lr=0.2", "--dry-run"],
    "run --scenario": ["run", "--scenario", "split-digits:setting=task,setting=class",
                       "--strategy", "naive", "--dry-run"],
    "tune --strategy": ["tune", "--scenario", "split-digits", "--strategy",
                        "naive:epochs=1,epochs=2", "--space", "lr=0.1"],
    "tune --scenario": ["tune", "--scenario", "split-digits:setting=task,setting=class",
                        "--strategy", "naive", "--space", "lr=0.1"],
    "tune --space twice": ["tune", "--scenario", "split-digits", "--strategy", "naive",
                           "--space", "lr=0.1", "--space", "lr=0.2"],
    "tune fixed and searched": ["tune", "--scenario", "split-digits", "--strategy",
                                "naive:lr=0.1", "--space", "lr=0.2"],
}


@pytest.mark.parametrize("args", [pytest.param(a, id=n) for n, a in AMBIGUOUS.items()])
def test_a_key_given_twice_is_an_error(args, tmp_path, capsys):
    code, out, err = clbench(capsys, *args, "--results", tmp_path / "r")
    text = " ".join(err.split())
    assert code == 2 and "Traceback" not in text, text
    assert "twice" in text or "both fixed and searched" in text, text
    assert not (tmp_path / "r").exists() or not list((tmp_path / "r").glob("*.json"))


# --- unknown names, in every command: a clear error that lists the choices ---------------------
UNKNOWN = {
    "run --strategy": (["run", "--scenario", "split-digits", "--strategy", "nave", "--dry-run"],
                       ["'nave'", "naive"]),
    "run --scenario": (["run", "--scenario", "split-dgits", "--strategy", "naive",
                        "--dry-run"], ["'split-dgits'", "split-digits"]),
    "run --suite": (["run", "--suite", "dmeo", "--dry-run"], ["dmeo", "demo"]),
    "run --budget": (["run", "--scenario", "split-digits", "--strategy", "naive", "--budget",
                      "big", "--dry-run"], ["'big'", "smoke"]),
    "run --executor": (["run", "--scenario", "split-digits", "--strategy", "naive",
                        "--executor", "slurm", "--dry-run"], ["'slurm'", "local"]),
    "tune --strategy": (["tune", "--scenario", "split-digits", "--strategy", "nave", "--space",
                         "lr=0.1"], ["'nave'", "naive"]),
    "tune --space": (["tune", "--scenario", "split-digits", "--strategy", "naive", "--space",
                      "lrr=0.1"], ["'lrr'", "lr"]),
    "tune --metric": (["tune", "--scenario", "split-digits", "--strategy", "naive", "--space",
                       "lr=0.1", "--metric", "speed"], ["'speed'", "acc"]),
    "tune --sampler": (["tune", "--scenario", "split-digits", "--strategy", "naive", "--space",
                        "lr=0.1", "--sampler", "bayes"], ["'bayes'", "grid"]),
    "compare --candidate": (["compare", "--candidate", "nope", "--results", GOLDEN],
                            ["'nope'", "joint"]),
    "compare --baselines": (["compare", "--candidate", "joint", "--baselines", "naive,nope",
                             "--results", GOLDEN], ["'nope'", "naive"]),
    "gate --metric": (["gate", "--baseline", GOLDEN, "--current", GOLDEN, "--metric", "speed"],
                      ["'speed'", "acc"]),
    "list": (["list", "everything"], ["'everything'", "strategies"]),
}


@pytest.mark.parametrize("args, words", [pytest.param(a, w, id=n)
                                         for n, (a, w) in UNKNOWN.items()])
def test_unknown_names_in_every_command_list_the_choices(args, words, tmp_path, capsys):
    code, out, err = clbench(capsys, *args)
    text = " ".join(err.split())
    assert code == 2 and "Traceback" not in text, text
    for word in words:
        assert word in text, (word, text)


# --- a strategy's failure stays in its run, whatever it raises ---------------------------------
FAULTY_PLUGINS = '''
from clbench.errors import ConfigError
from clbench.strategies.naive import Naive


class Unprintable(Exception):
    def __str__(self):
        raise RuntimeError("my __str__ is broken too")


class UnprintableError(Naive):
    def train(self, experience):
        raise Unprintable()


class ConfigErrorInTrain(Naive):
    def train(self, experience):
        raise ConfigError("lr schedule 'cosine' needs warmup", hint="set warmup")


class HugeMessage(Naive):
    def train(self, experience):
        raise RuntimeError("x" * 3_000_000)
'''


@pytest.fixture
def faulty_plugins(tmp_path, monkeypatch):
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "clbench_faulty_plugins.py").write_text(FAULTY_PLUGINS)
    monkeypatch.syspath_prepend(str(folder))
    yield "clbench_faulty_plugins"


@pytest.mark.parametrize("plugin, words", [
    ("UnprintableError", ["Unprintable", "could not be turned into text"]),
    ("ConfigErrorInTrain", ["ConfigError", "lr schedule 'cosine' needs warmup"]),
    ("HugeMessage", ["RuntimeError", "characters cut by clbench"]),
])
def test_a_strategy_failure_stays_in_its_run(plugin, words, faulty_plugins, tmp_path, capsys):
    """The plugin first, then a good run: the plugin's run is recorded failed (its message
    kept, cut to 64 KiB), the next one still runs, and the store reports."""
    from clbench.app.runner import MAX_ERROR_CHARS

    results = tmp_path / "r"
    name = f"{faulty_plugins}:{plugin}"
    code, out, err = clbench(capsys, "run", "--scenario", "split-digits", "--strategy", name,
                             "--strategy", "naive", "--budget", "smoke", "--device", "cpu",
                             "--results", results)
    text = " ".join(err.split())
    assert code == 1 and "Traceback" not in text, text
    assert "2 planned: 2 ran" in text and f"failed: {name}" in text
    assert len(err) < 5000, "the summary line of a failure is cut; the document keeps more"
    docs = {d["spec"]["strategy"]: d for d in
            (json.loads(p.read_text()) for p in results.glob("*.json"))}
    assert docs["naive"]["status"] == "ok"
    failed = docs[name]
    assert failed["status"] == "failed"
    message = failed["error"]["type"] + ": " + failed["error"]["message"]
    for word in words:
        assert word in message, message[:300]
    assert len(failed["error"]["message"]) <= MAX_ERROR_CHARS + 100
    assert len(failed["error"]["traceback"]) <= MAX_ERROR_CHARS + 100
    code, out, err = clbench(capsys, "report", "--results", results, "--json", "-")
    assert code == 0, err


# --- a machine that fails under clbench: one line and exit 2, never a traceback ----------------
@pytest.mark.parametrize("args", [
    ["gate", "--baseline", GOLDEN, "--current", GOLDEN],
    ["report", "--results", GOLDEN, "--json", "-"],
    ["compare", "--candidate", "joint", "--results", GOLDEN],
    ["list"],
    ["run", "--scenario", "split-digits", "--strategy", "naive", "--dry-run"],
], ids=lambda a: " ".join(map(str, a[:2])))
def test_stdout_on_a_full_device_is_one_error_line_and_exit_2(args):
    """``> /dev/full``: exit 1 would read as "regression" to a CI gate."""
    import subprocess
    import sys

    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "clbench.cli", *map(str, args)],
                              stdout=full, stderr=subprocess.PIPE, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr
    assert "error: cannot write to standard output: No space left on device" in proc.stderr


@pytest.mark.parametrize("errno_", ["ENOSPC", "EDQUOT", "EACCES"])
def test_a_lock_file_that_cannot_be_created_is_a_clear_error(errno_, tmp_path, capsys,
                                                             monkeypatch):
    import errno

    import filelock

    def refuse(self, *args, **kwargs):
        raise OSError(getattr(errno, errno_), os.strerror(getattr(errno, errno_)))

    monkeypatch.setattr(filelock.FileLock, "acquire", refuse)
    code, out, err = clbench(capsys, "run", "--scenario", "split-digits", "--strategy",
                             "naive", "--budget", "smoke", "--device", "cpu", "--results",
                             tmp_path / "r")
    text = " ".join(err.split())
    assert code == 2 and "Traceback" not in text, text
    assert "error: cannot create the lock file of naive on split-digits" in text, text
    assert os.strerror(getattr(errno, errno_)) in text


# --- found before anything trains ---------------------------------------------------------------
TUNE = ["tune", "--budget", "smoke", "--device", "cpu", "--strategy", "naive"]
BEFORE_TRAINING = {
    "metric undefined on one task": (
        ["--scenario", "split-digits:n_tasks=1", "--space", "lr=0.1", "--metric", "bwt"],
        ["metric 'bwt' is undefined", "1 task(s)"]),
    "forgetting on one task": (
        ["--scenario", "permuted-digits:n_tasks=1", "--space", "lr=0.1", "--metric",
         "forgetting"], ["metric 'forgetting' is undefined"]),
    "bad value last in a list": (
        ["--scenario", "split-digits", "--space", "lr=0.1,0.2,abc"], ["'lr'", "'abc'"]),
    "bad value in a second dimension": (
        ["--scenario", "split-digits", "--space", "lr=0.1", "--space", "epochs=1,-x"],
        ["'epochs'", "'-x'"]),
    "empty list": (["--scenario", "split-digits", "--space", "lr=,"], ["no values to search"]),
    "huge grid": (["--scenario", "split-digits", *[a for name in ("lr", "momentum",
                                                                  "weight_decay")
                                                   for a in ("--space", name + "=" + ",".join(
                                                       str((i + 1) / 1000) for i in range(60)))]],
                  ["216,000 configurations", "--trials N"]),
}


@pytest.mark.parametrize("args, words", [pytest.param(a, w, id=n)
                                         for n, (a, w) in BEFORE_TRAINING.items()])
def test_tune_finds_bad_input_before_training(args, words, tmp_path, capsys):
    code, out, err = clbench(capsys, *TUNE, *args, "--results", tmp_path / "r")
    text = " ".join(err.split())
    assert code == 2 and "Traceback" not in text, text
    for word in words:
        assert word in text, (word, text)
    assert not list((tmp_path / "r").glob("*.json")), "a trial trained before the error"


def test_tune_with_nothing_run_exits_2(tmp_path, capsys):
    """Every trial's data is missing: nothing ran, which is not a failed strategy (exit 1)."""
    (tmp_path / "empty").mkdir()
    code, out, err = clbench(capsys, *TUNE, "--scenario", "split-mnist", "--space", "lr=0.1",
                             "--data-dir", tmp_path / "empty", "--no-download", "--results",
                             tmp_path / "r")
    text = " ".join(err.split())
    assert code == 2 and "Traceback" not in text, text
    assert "nothing ran" in text


def test_a_huge_plan_is_refused_at_once(capsys):
    import time

    many = [a for i in range(10) for a in ("--scenario", f"split-digits:n_tasks={i + 2}")]
    strategies = [a for i in range(10) for a in ("--strategy", f"naive:lr=0.0{i + 1}")]
    started = time.perf_counter()
    code, out, err = clbench(capsys, "run", "--seeds", "0-9999", *many, *strategies,
                             "--dry-run")
    assert time.perf_counter() - started < 10
    text = " ".join(err.split())
    assert code == 2 and "the plan has 1,000,000 runs" in text and "more than 100,000" in text


# --- a newcomer's first hour --------------------------------------------------------------------
README = TESTS_DIR.parent / "README.md"


def _main_job() -> str:
    text = README.read_text()
    block = text.split("Run the main job", 1)[1].split("```", 2)[1]
    return " ".join(block.split())


def test_the_main_job_writes_its_reports_beside_the_store_and_the_html_leaderboard():
    import shlex

    job = shlex.split(_main_job())
    run = job.index("run")
    results = job[job.index("--results", run) + 1] if "--results" in job else "clbench-results"
    report = job.index("report")
    outputs = [job[i + 1] for i in range(report, len(job) - 1)
               if job[i] in ("--json", "--markdown", "--html", "--csv", "--latex")]
    assert outputs and any(o.endswith(".html") for o in job if o in outputs)
    for out in outputs:
        assert not Path(out).is_relative_to(results), f"{out} is inside the store {results}"


def test_a_report_saved_into_the_store_is_ignored_with_a_note(tmp_path, capsys):
    """What the README's main job once did: `report --json clbench-results/report.json`; the
    next report must not call the store broken."""
    store = tmp_path / "clbench-results"
    shutil.copytree(GOLDEN, store)
    code, out, err = clbench(capsys, "report", "--results", store, "--json",
                             store / "report.json", "--html", tmp_path / "board.html")
    assert code == 0, err
    code, out, err = clbench(capsys, "report", "--results", store, "--json", "-")
    text = " ".join(err.split())
    assert code == 0, text
    assert "ignored 1 file(s)" in text and "report.json" in text and "skipped" not in text
    assert len(json.loads(out)["runs"]) == 18
    code, out, err = clbench(capsys, "report", "--results", store, "--html",
                             tmp_path / "board.html")
    assert f"open {(tmp_path / 'board.html').resolve().as_uri()}" in " ".join(err.split())


def test_the_demo_shows_every_native_strategy_the_digits_scenarios_support():
    from clbench.app.suite import load_suite
    from clbench.errors import UnsupportedError
    from clbench.registry import STRATEGIES
    from clbench.spec import make_specs

    supported = set()
    for name in (n for n, cls in STRATEGIES.items() if "." not in n and ":" not in n
                 and cls.__module__.startswith("clbench.strategies.")):
        for scenario in ("split-digits:setting=class", "split-digits:setting=task",
                         "permuted-digits"):
            try:
                make_specs(scenario, name, [0], "smoke")
            except UnsupportedError:
                continue
            supported.add(name)
    shown = {spec.strategy for spec in load_suite("demo").expand()}
    assert supported and supported <= shown, sorted(supported - shown)


# --- special files as inputs: refused by name, never read, never a hang -------------------------
def _special(kind: str, tmp_path: Path) -> Path:
    path = tmp_path / f"special-{kind}"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        return Path("/dev/zero")
    elif kind == "link to a device":
        path.symlink_to("/dev/zero")
    elif kind == "directory":
        path.mkdir()
    return path


INPUTS = {
    "run --suite": (lambda p: ["run", "--suite", p, "--dry-run"],
                    ["not a regular file"], ["directory"]),
    "run --results": (lambda p: ["run", "--scenario", "split-digits", "--strategy", "naive",
                                 "--dry-run", "--results", p], ["not a directory"], []),
    "report --results": (lambda p: ["report", "--results", p, "--json", "-"],
                         ["no results directory"], ["directory"]),
    "compare --results": (lambda p: ["compare", "--candidate", "joint", "--results", p],
                          ["no results directory"], ["directory"]),
    "gate --baseline": (lambda p: ["gate", "--baseline", p, "--current", GOLDEN],
                        ["no results directory"], ["directory"]),
}


@pytest.mark.parametrize("kind", ["fifo", "device", "link to a device", "directory"])
@pytest.mark.parametrize("option", list(INPUTS))
def test_special_files_as_inputs_are_refused_by_name(option, kind, tmp_path, capsys):
    import signal

    make_args, words, not_for = INPUTS[option]
    if kind in not_for:
        pytest.skip(f"a {kind} is a valid {option}")
    path = _special(kind, tmp_path)
    signal.alarm(60)  # a blocking open fails the test instead of hanging it
    try:
        code, out, err = clbench(capsys, *make_args(path))
    finally:
        signal.alarm(0)
    text = " ".join(err.split())
    assert "Traceback" not in text, text
    if kind == "directory" and option == "run --results":
        return
    assert code == 2, text
    assert str(path) in text and all(w in text for w in words), text
