"""Bad input, as a careless or a hostile user gives it: every case ends in a clear message that
names the problem (and, where there is one, the fix) with the right exit status, never in a
traceback, a hang or a silent success.

Each table row is ``(args, exit status, words the message must contain)``. Planning errors are
checked with ``--dry-run`` as well as a real run: nothing is written either way.
"""

from __future__ import annotations

import pytest
from cli_run import clbench

RUN = ["run", "--budget", "smoke", "--device", "cpu"]
DIGITS = ["--scenario", "split-digits"]
NAIVE = ["--strategy", "naive"]
BIG = "9" * 5000




def flat(text: str) -> str:
    return " ".join(text.split())


def assert_clear(code, expected_code, out, err, words):
    text = flat(out + err)
    assert "Traceback" not in text, text
    assert code == expected_code, text
    for word in words:
        assert flat(word) in text, f"{word!r} not in {text!r}"


# --- names ------------------------------------------------------------------------------------
NAMES = {
    "unknown strategy": ([*DIGITS, "--strategy", "nave"],
                         ["unknown strategy 'nave'", "did you mean 'naive'", "known strategies"]),
    "unknown scenario": (["--scenario", "split-mnsit", *NAIVE],
                         ["unknown scenario 'split-mnsit'", "'split-mnist'"]),
    "unknown budget": ([*DIGITS, *NAIVE, "--budget", "huge"], ["unknown budget 'huge'",
                                                               "smoke, default, paper"]),
    "unknown backbone": (["--scenario", "split-mnist:backbone=vgg", *NAIVE],
                         ["unknown backbone 'vgg'", "mlp"]),
    "unknown device": ([*DIGITS, *NAIVE, "--device", "tpu"], ["device 'tpu'", "auto, cpu"]),
    "empty strategy": ([*DIGITS, "--strategy", ""], ["expected NAME"]),
    "blank strategy": ([*DIGITS, "--strategy", "   "], ["expected NAME"]),
    "colon only": ([*DIGITS, "--strategy", ":"], ["cannot import module"]),
    "missing module": ([*DIGITS, "--strategy", "no_such_mod_xyz:Thing"],
                       ["cannot import module 'no_such_mod_xyz'"]),
    "missing attribute": ([*DIGITS, "--strategy", "os:NoSuchThing"],
                          ["has no attribute 'NoSuchThing'"]),
    "not a class": ([*DIGITS, "--strategy", "os:getcwd"], ["is not a class"]),
    "not a strategy": ([*DIGITS, "--strategy", "collections:OrderedDict"],
                       ["is not a strategy", "it lacks"]),
    "scenario as strategy": ([*DIGITS, "--strategy", "clbench.scenarios.split:SplitMNIST"],
                             ["is not a strategy"]),
    "unsupported setting": ([*DIGITS, "--strategy", "pnn"],
                            ["cannot run 'pnn' on 'split-digits'", "task setting"]),
    "unsupported backbone": (["--scenario", "split-cifar10:setting=task", "--strategy",
                              "net2net"], ["cannot run 'net2net'", "mlp backbone"]),
    "nothing to run": ([*DIGITS], ["nothing to run", "--strategy"]),
    "group size 0": ([*DIGITS, *NAIVE, "--group-size", "0"],
                     ["argument --group-size: must be an integer >= 1"]),
    "group size negative": ([*DIGITS, *NAIVE, "--group-size=-3"],
                            ["argument --group-size: must be an integer >= 1"]),
}

# --- parameters -------------------------------------------------------------------------------
PARAMS = {
    "unknown parameter": ([*DIGITS, "--strategy", "naive:lrr=0.1"],
                          ["has no parameter 'lrr'", "did you mean 'lr'"]),
    "not a number": ([*DIGITS, "--strategy", "naive:lr=abc"], ["'lr' must be a number"]),
    "key without value": ([*DIGITS, "--strategy", "naive:lr"],
                          ["cannot read the parameters of 'naive:lr'", "naive:key=value"]),
    "value without key": ([*DIGITS, "--strategy", "naive:=1"], ["cannot read parameter '=1'"]),
    "empty value": ([*DIGITS, "--strategy", "naive:lr="], ["'lr' must be a number"]),
    "zero lr": ([*DIGITS, "--strategy", "naive:lr=0"], ["lr must be > 0"]),
    "negative lr": ([*DIGITS, "--strategy", "naive:lr=-1"], ["lr must be > 0"]),
    "fractional epochs": ([*DIGITS, "--strategy", "naive:epochs=1.5"],
                          ["'epochs' must be an integer"]),
    "negative epochs": ([*DIGITS, "--strategy", "naive:epochs=-1"], ["epochs >= 0"]),
    "zero batch": ([*DIGITS, "--strategy", "naive:batch_size=0"], ["batch_size >= 1"]),
    "negative momentum": ([*DIGITS, "--strategy", "naive:momentum=-5"],
                          ["momentum must be in [0, 1)"]),
    "momentum of one": ([*DIGITS, "--strategy", "avalanche.naive:momentum=1"],
                        ["momentum must be in [0, 1)"]),
    "negative weight decay": ([*DIGITS, "--strategy", "ewc:weight_decay=-10"],
                              ["weight_decay must be >= 0"]),
    "huge integer": ([*DIGITS, "--strategy", f"naive:epochs={BIG}"],
                     ["'epochs' must be an integer"]),
    "huge float": ([*DIGITS, "--strategy", "naive:lr=1e999"], ["must be a finite number"]),
    "bad choice": ([*DIGITS, "--strategy", "naive:optimizer=rmsprop"],
                   ["'optimizer' must be one of", "'sgd', 'adam'"]),
    "bad bool": (["--scenario", "split-digits", "--strategy", "joint:reinit=maybe"],
                 ["'reinit' must be true or false"]),
    "bad setting": (["--scenario", "split-digits:setting=foo", *NAIVE],
                    ["'setting' must be one of"]),
    "split tasks do not divide": (["--scenario", "split-digits:n_tasks=3", *NAIVE],
                                  ["n_tasks must divide the 10 classes"]),
    "zero tasks": (["--scenario", "permuted-digits:n_tasks=0", *NAIVE],
                   ["n_tasks must be between 1 and 100"]),
    "absurd task count": (["--scenario", "permuted-mnist:n_tasks=100000", *NAIVE],
                          ["n_tasks must be between 1 and 100", "100000"]),
    "scenario parameter unknown": (["--scenario", "split-digits:nclasses=3", *NAIVE],
                                   ["has no parameter 'nclasses'"]),
    "negative memory": ([*DIGITS, "--strategy", "replay:memory_size=-1"],
                        ["memory_size must be >= 1"]),
    "negative lambda": ([*DIGITS, "--strategy", "ewc:ewc_lambda=-1"], ["ewc_lambda must be >= 0"]),
    "gamma above one": ([*DIGITS, "--strategy", "online-ewc:gamma=2"], ["gamma must be in [0, 1]"]),
    "pnn zero width": (["--scenario", "split-digits:setting=task", "--strategy",
                        "pnn:column_width=0"], ["column_width must be >= 1"]),
}
# Non-finite values, for every float parameter of every strategy (native and avalanche.*).
NON_FINITE = ["nan", "inf", "-inf", "NaN", "Infinity"]


def _float_params():
    import dataclasses
    import typing

    from clbench.registry import STRATEGIES

    out = []
    for name, cls in STRATEGIES.items():
        hints = typing.get_type_hints(cls.Params)
        for f in dataclasses.fields(cls.Params):
            if hints[f.name] is float or hints[f.name] == float | None:
                out.append((name, f.name))
    return out


FLOAT_PARAMS = _float_params()

# --- seeds ------------------------------------------------------------------------------------
SEEDS = {
    "reversed range": (["--seeds", "5-1"], ["seed range '5-1' is empty", "LOW <= HIGH"]),
    "negative seed": (["--seeds", "-1"], ["cannot read seeds '-1'"]),
    "letters": (["--seeds", "x"], ["cannot read seeds 'x'", "0,1,2 or 0-4"]),
    "empty": (["--seeds", ""], ["seeds must be non-negative integers"]),
    "commas only": (["--seeds", ",,"], ["seeds must be non-negative integers"]),
    "fraction": (["--seeds", "1.5"], ["cannot read seeds '1.5'"]),
    "absurd range": (["--seeds", "0-100000000"], ["more than 10,000 seeds"]),
    "too large": (["--seeds", "99999999999999999999"], ["is too large"]),
    "open range": (["--seeds", "3-"], ["cannot read seeds '3-'"]),
}


def _table(rows, prefix=()):
    return [pytest.param([*prefix, *args], words, id=name) for name, (args, words) in
            rows.items()]


@pytest.mark.parametrize("dry", [True, False], ids=["dry-run", "run"])
@pytest.mark.parametrize("args, words", _table(NAMES) + _table(PARAMS)
                         + _table(SEEDS, [*DIGITS, *NAIVE]))
def test_planning_errors(args, words, dry, tmp_path, capsys):
    results = tmp_path / "results"
    code, out, err = clbench(capsys, *RUN, *args, "--results", results,
                             *(["--dry-run"] if dry else []))
    assert_clear(code, 2, out, err, words)
    assert not results.exists(), "bad input must not write results"


@pytest.mark.parametrize("value", NON_FINITE)
@pytest.mark.parametrize("strategy, param", FLOAT_PARAMS,
                         ids=[f"{s}:{p}" for s, p in FLOAT_PARAMS])
def test_non_finite_floats_are_bad_parameters(strategy, param, value, capsys):
    scenario = "split-digits:setting=task" if strategy in ("pnn", "avalanche.pnn") \
        else "split-digits"
    code, out, err = clbench(capsys, *RUN, "--scenario", scenario, "--strategy",
                             f"{strategy}:{param}={value}", "--dry-run")
    assert_clear(code, 2, out, err, [f"'{param}' must be a finite number"])


def test_every_float_parameter_is_covered():
    assert len(FLOAT_PARAMS) > 20  # lr, momentum, weight_decay of every strategy, and more
    assert ("ewc", "ewc_lambda") in FLOAT_PARAMS
    assert ("avalanche.si", "si_lambda") in FLOAT_PARAMS


# --- suite files ------------------------------------------------------------------------------
GOOD = 'scenarios = ["split-digits"]\nstrategies = ["naive"]\n'
SUITES = {
    "binary": (b"\x89PNG\r\n\x1a\n\x00\xff\xfe", ["is not a TOML file", "not UTF-8"]),
    "invalid toml": ("scenarios = [", ["is not valid TOML"]),
    "unknown key": (GOOD + "sedes = [1]\n", ["unknown keys ['sedes']", "valid keys"]),
    "no strategies": ('scenarios = ["split-digits"]\n', ["needs a non-empty list 'strategies'"]),
    "empty scenarios": ('scenarios = []\nstrategies = ["naive"]\n',
                        ["needs a non-empty list 'scenarios'"]),
    "scenarios not a list": ('scenarios = "split-digits"\nstrategies = ["naive"]\n',
                             ["needs a non-empty list 'scenarios'"]),
    "entry a number": ('scenarios = [3]\nstrategies = ["naive"]\n', ["cannot read entry 3"]),
    "entry extra key": ('scenarios = ["split-digits"]\n'
                        'strategies = [{ name = "naive", parms = { lr = 0.1 } }]\n',
                        ["must be { name = ..., params = { ... } }"]),
    "params not a table": ('scenarios = ["split-digits"]\n'
                           'strategies = [{ name = "naive", params = 3 }]\n',
                           ["must be { name = ..., params = { ... } }"]),
    "param of wrong type": ('scenarios = ["split-digits"]\n'
                            'strategies = [{ name = "naive", params = { lr = "fast" } }]\n',
                            ["'lr' must be a number"]),
    "param nan": ('scenarios = ["split-digits"]\n'
                  'strategies = [{ name = "naive", params = { lr = nan } }]\n',
                  ["'lr' must be a finite number"]),
    "param a table": ('scenarios = ["split-digits"]\n'
                      'strategies = [{ name = "naive", params = { lr = { a = 1 } } }]\n',
                      ["'lr' must be a number"]),
    "seeds text": (GOOD + 'seeds = "x"\n', ["cannot read seeds 'x'"]),
    "seeds bools": (GOOD + "seeds = [true]\n", ["seeds must be non-negative integers"]),
    "seeds a table": (GOOD + "seeds = { a = 1 }\n", ["seeds must be a list of integers"]),
    "seeds a float": (GOOD + "seeds = 1.5\n", ["seeds must be a list of integers"]),
    "seeds absurd": (GOOD + 'seeds = "0-100000000"\n', ["more than 10,000 seeds"]),
    "budget unknown": (GOOD + 'budget = "huge"\n', ["unknown budget 'huge'"]),
    "unknown strategy": ('scenarios = ["split-digits"]\nstrategies = ["nave"]\n',
                         ["unknown strategy 'nave'"]),
}


@pytest.mark.parametrize("content, words", [pytest.param(c, w, id=n)
                                            for n, (c, w) in SUITES.items()])
def test_suite_files(content, words, tmp_path, capsys):
    suite = tmp_path / "suite.toml"
    if isinstance(content, bytes):
        suite.write_bytes(content)
    else:
        suite.write_text(content)
    # no --budget: the suite's own budget is under test too
    code, out, err = clbench(capsys, "run", "--device", "cpu", "--suite", suite, "--results",
                             tmp_path / "r", "--dry-run")
    assert_clear(code, 2, out, err, words)


def test_suite_that_is_a_directory(tmp_path, capsys):
    code, out, err = clbench(capsys, *RUN, "--suite", tmp_path, "--dry-run")
    assert_clear(code, 2, out, err, [f"suite {str(tmp_path)!r} is not a regular file"])


# --- plugins at planning time -----------------------------------------------------------------
PLUGINS = {
    "params not a dataclass": ("NotADataclassParams", ["has unusable Params", "not a dataclass"]),
    "params bad default": ("BadDefault", ["has unusable Params", "lr must be > 0"]),
}


@pytest.mark.parametrize("plugin, words", [pytest.param(p, w, id=n)
                                           for n, (p, w) in PLUGINS.items()])
def test_unusable_plugins(plugin, words, tmp_path, capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(__import__("pathlib").Path(__file__).parent))
    code, out, err = clbench(capsys, *RUN, *DIGITS, "--strategy",
                             f"clbench_test_plugins:{plugin}", "--dry-run")
    assert_clear(code, 2, out, err, words)


def test_a_plugin_with_its_own_name_runs_by_its_path(tmp_path, capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(__import__("pathlib").Path(__file__).parent))
    code, out, err = clbench(capsys, *RUN, *DIGITS, "--strategy",
                             "clbench_test_plugins:OwnName", "--results", tmp_path / "r")
    assert_clear(code, 0, out, err, ["1 planned: 1 ran"])


# --- plugins that misbehave while running: a failed or diverged run, never a silent ok ----------
TESTS_DIR = __import__("pathlib").Path(__file__).parent
RUNTIME = {
    "sys.exit(0) in train": ("ExitZero", 1, "failed", ["the strategy called sys.exit(0)"]),
    "sys.exit(3) in train": ("ExitThree", 1, "failed", ["the strategy called sys.exit(3)"]),
    "too few logits": ("ShortLogits", 1, "failed",
                       ["predict returned logits of shape (1, 64, 3)", "expected (1, 64, 10)"]),
    "NaN logits": ("NaNLogits", 0, "diverged", ["1 diverged"]),
}


@pytest.mark.parametrize("plugin, code_expected, status, words",
                         [pytest.param(*v, id=k) for k, v in RUNTIME.items()])
def test_misbehaving_plugins(plugin, code_expected, status, words, tmp_path, capsys,
                             monkeypatch):
    import json

    monkeypatch.syspath_prepend(str(TESTS_DIR))
    results = tmp_path / "r"
    # the plugin first, then a good run: the suite goes on after the plugin's failure
    code, out, err = clbench(capsys, *RUN, *DIGITS, "--strategy",
                             f"clbench_test_plugins:{plugin}", *NAIVE, "--results", results)
    assert_clear(code, code_expected, out, err, [*words, "2 planned: 2 ran"])
    docs = [json.loads(p.read_text()) for p in results.glob("*.json")]
    by_strategy = {d["spec"]["strategy"]: d for d in docs}
    assert by_strategy[f"clbench_test_plugins:{plugin}"]["status"] == status
    assert by_strategy["naive"]["status"] == "ok"


# --- results documents, as received from elsewhere ---------------------------------------------
GOLDEN = TESTS_DIR / "golden" / "results"


def _golden_doc() -> dict:
    import json

    return json.loads(sorted(GOLDEN.glob("*.json"))[0].read_text())


def _with(path: str, value):
    def change(doc):
        *parents, last = path.split(".")
        node = doc
        for key in parents:
            node = node[key]
        node[last] = value
        return doc
    return change


HOSTILE = {
    "not json": b"this is {not json",
    "empty file": b"",
    "binary": b"\x00\xff\xfe\x80" * 64,
    "nested 10,000 deep": b"[" * 10_000 + b"]" * 10_000,
    "object nested deep": b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
    "5000-digit integer": b'{"schema_version": ' + b"9" * 5000 + b"}",
    "a list": b"[1, 2, 3]",
    "a string": b'"hello"',
    "null": b"null",
    "seed a list": _with("spec.seed", [0, 1]),
    "seed a dict": _with("spec.seed", {"a": 1}),
    "seed a bool": _with("spec.seed", True),
    "scenario params a list": _with("spec.scenario_params", [1, 2]),
    "strategy params a string": _with("spec.strategy_params", "lr=1"),
    "accuracy true": lambda d: {**d, "accuracy_matrix": [[True] * len(r)
                                                         for r in d["accuracy_matrix"]]},
    "accuracy strings": lambda d: {**d, "accuracy_matrix": [["0.5"] * len(r)
                                                            for r in d["accuracy_matrix"]]},
    "accuracy above one": lambda d: {**d, "accuracy_matrix": [[5.0] * len(r)
                                                              for r in d["accuracy_matrix"]]},
    "matrix ragged": lambda d: {**d, "accuracy_matrix": [[0.1], [0.2, 0.3]]},
    "matrix empty": _with("accuracy_matrix", []),
    "unknown status": _with("status", "great"),
    "schema from the future": _with("schema_version", 99),
    "schema a string": _with("schema_version", "2"),
    "hash mismatch": _with("spec_hash", "0" * 20),
    "param counts text": _with("param_counts", "many"),
    "identity a list": _with("identity", [1]),
    "missing spec": lambda d: {k: v for k, v in d.items() if k != "spec"},
}


@pytest.mark.parametrize("content", [pytest.param(v, id=k) for k, v in HOSTILE.items()])
def test_hostile_documents_are_skipped_by_name(content, tmp_path, capsys):
    import json
    import shutil

    results = tmp_path / "r"
    shutil.copytree(GOLDEN, results)
    bad = results / ("e" * 20 + ".json")
    bad.write_bytes(content if isinstance(content, bytes)
                    else json.dumps(content(_golden_doc())).encode())
    code, out, err = clbench(capsys, "report", "--results", results, "--json", "-")
    assert_clear(code, 2, "", err, [f"skipped: {bad}", "1 document(s) skipped"])
    assert len(json.loads(out)["runs"]) == 18  # everything else is still reported


def test_special_files_never_block_or_count(tmp_path, capsys):
    """A FIFO, a directory and a device link named like results, an oversized file, a complete
    temporary left by a killed write and a lock file: the report neither hangs nor counts
    them twice."""
    import json
    import os
    import shutil
    import signal

    results = tmp_path / "r"
    shutil.copytree(GOLDEN, results)
    os.mkfifo(results / ("f" * 20 + ".json"))
    (results / ("a" * 20 + ".json")).mkdir()
    (results / ("9" * 20 + ".json")).symlink_to("/dev/zero")
    with open(results / ("8" * 20 + ".json"), "wb") as f:
        f.truncate(65 * 2**20)  # sparse: 65 MiB of nothing
    first = sorted(GOLDEN.glob("*.json"))[0]
    shutil.copy(first, results / f".tmp-{2**22 + 7}-killed.json")  # a write killed mid-rename
    (results / f"{first.stem}.lock").write_text("")
    signal.alarm(60)  # a blocking read fails the test instead of hanging it
    try:
        code, out, err = clbench(capsys, "report", "--results", results, "--json", "-")
    finally:
        signal.alarm(0)
    assert_clear(code, 2, "", err, ["not a regular file", "is too large for a result",
                                    "4 document(s) skipped"])
    runs = json.loads(out)["runs"]
    assert len(runs) == 18 and len({r["spec_hash"] for r in runs}) == 18


def test_csv_cells_cannot_run_as_formulas(tmp_path, capsys):
    import csv
    import json
    import shutil

    from clbench.schema import parse
    from clbench.spec import RunSpec

    results = tmp_path / "r"
    shutil.copytree(GOLDEN, results)
    payloads = ["=cmd|' /C calc'!A0", "@HYPERLINK(\"http://x\")", "+1+1", "-2+3", "\tx", "\ry"]
    for i, name in enumerate(payloads):
        doc = _golden_doc()
        doc["spec"]["strategy"] = name
        doc["spec_hash"] = RunSpec.from_json(doc["spec"]).hash
        (results / f"{doc['spec_hash']}.json").write_text(json.dumps(doc))
        assert parse(doc).spec.strategy == name, i
    target = tmp_path / "board.csv"  # a file: stdout capture would translate the CR
    code, out, err = clbench(capsys, "report", "--results", results, "--csv", target)
    assert code == 0, err
    with open(target, newline="") as f:
        rows = list(csv.DictReader(f))
    strategies = {r["strategy"] for r in rows}
    for name in payloads:
        assert "'" + name in strategies
    assert not any(v.startswith(("=", "+", "@", "\t", "\r")) for r in rows for v in r.values())
    # numbers are not text: a negative BWT stays a number
    assert any(r["bwt_mean"].startswith("-0.") for r in rows)


def test_report_to_a_closed_pipe_is_quiet(tmp_path):
    """``clbench report --markdown - | head -1``: the reader is gone before the report is
    written (its end of the pipe is closed at once, so the write surely fails)."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "clbench.cli", "report", "--results",
                             str(GOLDEN), "--markdown", "-"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    proc.stdout.close()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0 and "Traceback" not in err and "BrokenPipe" not in err, err


def test_report_compare_and_gate_never_import_torch():
    import subprocess
    import sys

    code = f"""
import sys
from clbench import cli
for argv in (["report", "--results", {str(GOLDEN)!r}, "--markdown", "-", "--csv", "-",
              "--json", "-", "--html", "-"],
             ["compare", "--candidate", "joint", "--results", {str(GOLDEN)!r}],
             ["gate", "--baseline", {str(GOLDEN)!r}, "--current", {str(GOLDEN)!r}],
             ["list", "suites"], ["list", "budgets"]):
    assert cli.main(argv) in (0, 1), argv
assert "torch" not in sys.modules, "torch was imported"
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
