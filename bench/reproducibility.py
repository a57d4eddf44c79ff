"""REPRODUCIBILITY.md, generated: every row of the reference table (``bench/reference.toml``)
with what the committed reference store (``reference/results/``) holds for it.

``python -m clbench.reproducibility`` writes the file from the table and the store; nothing in
it is typed by hand. ``--check`` exits 1 when the committed file differs from what the command
writes (the default test run does the same). The accuracy tier (``pytest -m accuracy``) judges
its rows with :func:`outcome`, so the tier and the file can never disagree.

A row counts only runs at the current component versions (its specs' hashes). Runs of the same
row at other versions are listed as stale, never counted as met.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from clbench.errors import ClbenchError
from clbench.reference import (
    GPU_MINUTES,
    ONE_SEED_MINUTES,
    PROBES,
    SPREAD_WIDTH,
    ReferenceTarget,
    load_targets,
)
from clbench.results import ResultsStore, write_atomically
from clbench.schema import RunResult
from clbench.spec import RunSpec

SEEDS = (0, 1, 2)  # the seeds behind every published figure
REFERENCE = Path("reference")  # at the repository root: results/ and probes/, committed
OUTPUT = Path("REPRODUCIBILITY.md")

MET, MISSED, EXPECTED_MISS, NOT_RUN, GPU_ONLY, FAILED = (
    "met", "missed", "missed (known, not reproduced)", "not run yet",
    "not run here (gpu)", "failed")


def _versionless(spec: RunSpec) -> str:
    """A spec's identity without its component versions: the same row at another version."""
    doc = {k: v for k, v in spec.to_json().items() if not k.endswith("_version")}
    return json.dumps(doc, sort_keys=True)


@dataclass
class StoreIndex:
    """The runs of a results store by spec hash and by versionless spec."""

    by_hash: dict[str, RunResult] = field(default_factory=dict)
    by_row: dict[str, list[RunResult]] = field(default_factory=dict)

    @classmethod
    def load(cls, results: str | Path) -> StoreIndex:
        index = cls()
        if not Path(results).is_dir():
            return index
        loaded = ResultsStore(results).load()
        if loaded.problems:
            raise ClbenchError(f"{results}: unreadable result documents: "
                               + "; ".join(loaded.problems[:5]),
                               hint="restore them from git (git checkout -- reference/)")
        for run in loaded.runs:
            index.by_hash[run.spec_hash] = run
            index.by_row.setdefault(_versionless(run.spec), []).append(run)
        return index


def probe_path(probes: Path, row: ReferenceTarget) -> Path:
    return Path(probes) / f"{row.id}.json"


def write_probe(probes: Path, row: ReferenceTarget, specs: Sequence[RunSpec],
                values: Sequence[float], baseline_specs: Sequence[RunSpec],
                baseline_values: Sequence[float], device: str) -> None:
    """A probe's measurement (not a run of the store), kept beside the store with the hashes
    of the specs it measured, so that a change of version makes it stale."""
    doc = {"row": row.id, "metric": row.metric,
           "spec_hashes": [s.hash for s in specs], "values": list(values),
           "baseline_spec_hashes": [s.hash for s in baseline_specs],
           "baseline_values": list(baseline_values), "device": device}
    path = probe_path(probes, row)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path.parent, path, json.dumps(doc, indent=1) + "\n")


@dataclass
class RowOutcome:
    row: ReferenceTarget
    status: str
    values: list[float] = field(default_factory=list)  # per seed: the row's metric
    baseline_values: list[float] = field(default_factory=list)
    device: str = ""
    wall_s: float | None = None  # the row's and its baseline's groups, summed
    stale: list[str] = field(default_factory=list)  # what is stored at other versions

    @property
    def checked(self) -> list[float]:
        """The checked values: the metric, or its margin over the baseline seed by seed."""
        if self.row.versus_baseline:
            return [v - b for v, b in zip(self.values, self.baseline_values)]
        return self.values

    @property
    def mean(self) -> float:
        return statistics.fmean(self.checked) if self.checked else math.nan

    @property
    def sd(self) -> float:
        return statistics.stdev(self.checked) if len(self.checked) > 1 else math.nan

    @property
    def baseline_mean(self) -> float:
        return statistics.fmean(self.baseline_values) if self.baseline_values else math.nan

    @property
    def baseline_misses(self) -> bool | None:
        """Whether the measured baseline misses the row's window (None: not measured, or a
        claim, whose check is the margin itself)."""
        if not self.baseline_values or self.row.versus_baseline:
            return None
        return not self.row.reached(self.baseline_mean)


def _device(run: RunResult) -> str:
    ident = run.identity
    if ident.device == "cpu":
        return f"{ident.device_name} CPU"
    return str(ident.device_name)


def _wall(runs: Sequence[RunResult]) -> float | None:
    groups = {}
    for r in runs:  # a batched group's wall time is the group's, once
        key = (r.group.seeds if r.group else (r.spec.seed,), r.spec.strategy,
               json.dumps(r.spec.strategy_params, sort_keys=True))
        groups[key] = r.times.wall_s
    known = [w for w in groups.values() if w is not None]
    return sum(known) if known else None


def _values(row: ReferenceTarget, runs: Sequence[RunResult]) -> list[float]:
    return [row.value(r.accuracy_matrix) if r.status == "ok" else math.nan for r in runs]


def outcome(row: ReferenceTarget, index: StoreIndex, probes: Path,
            seeds: Sequence[int] = SEEDS, gpu: bool = False) -> RowOutcome:
    """What the store holds for ``row`` at the current versions, judged. ``gpu``: whether
    this machine could run a row marked for a GPU (only changes what a missing row says)."""
    specs, base_specs = row.specs(seeds), row.baseline_specs(seeds)
    missing = NOT_RUN if gpu or not row.needs_gpu else GPU_ONLY
    if row.is_probe:
        path = probe_path(probes, row)
        doc = json.loads(path.read_text()) if path.is_file() else None
        if doc is None:
            return RowOutcome(row, missing)
        if (doc["spec_hashes"] != [s.hash for s in specs]
                or doc["baseline_spec_hashes"] != [s.hash for s in base_specs]):
            return RowOutcome(row, missing, stale=[f"{path.name}: measured at other versions"])
        result = RowOutcome(row, "", doc["values"], doc["baseline_values"], doc["device"])
    else:
        runs = [index.by_hash.get(s.hash) for s in specs]
        base = [index.by_hash.get(s.hash) for s in base_specs]
        stale = sorted({f"{r.spec.strategy} v{r.spec.strategy_version}, {r.spec.scenario} "
                        f"v{r.spec.scenario_version}"
                        for s in specs + base_specs
                        for r in index.by_row.get(_versionless(s), []) if r.spec_hash != s.hash})
        if any(r is None for r in runs + base):
            return RowOutcome(row, missing, stale=stale)
        result = RowOutcome(row, "", _values(row, runs), _values(row, base),
                            _device(runs[0]), _wall(runs + base), stale)
        if any(r.status == "failed" for r in runs + base):
            result.status = FAILED
            return result
    reached = row.reached(result.mean)
    if row.discrimination == "measured" and result.baseline_misses is False:
        reached = False  # the ablation passes too: the row shows nothing
    if row.not_reproduced:
        result.status = MET if reached else EXPECTED_MISS
    else:
        result.status = MET if reached else MISSED
    return result


def _f(x: float, digits: int = 3) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _reached(o: RowOutcome) -> str:
    if not o.values:
        return ""
    if all(v == 0 for v in o.checked) and o.row.metric == "bwt":
        return "0 exactly, every seed"
    sd = f" ± {_f(o.sd)}" if len(o.checked) > 1 else ""
    return f"{_f(o.mean)}{sd}"


def _baseline(o: RowOutcome) -> str:
    row = o.row
    parts = [f"`{row.baseline_strategy}`"]
    if row.baseline_target is not None:
        parts.append(f"published {_f(row.baseline_target)}")
    if o.baseline_values:
        sd = (f" ± {_f(statistics.stdev(o.baseline_values))}" if len(o.baseline_values) > 1
              else "")
        parts.append(f"reached {_f(o.baseline_mean)}{sd}")
    return ", ".join(parts)


def _told_apart(o: RowOutcome) -> str:
    kind = o.row.discrimination
    if not kind:
        return "no (equals fine-tuning by design)" if o.row.baseline_target is not None \
            else "no"
    text = {"published": "yes: the window leaves out the published baseline",
            "margin": "yes: a margin over the baseline",
            "measured": "yes: the measured baseline must miss the window"}[kind]
    if o.baseline_misses is False:
        text += "; **the measured baseline is inside the window too**"
    return text


def render(rows: Sequence[ReferenceTarget], outcomes: Sequence[RowOutcome]) -> str:
    cpu_rows = [o for o in outcomes if not o.row.needs_gpu]
    judged = (MET, MISSED, EXPECTED_MISS, FAILED)
    ran = [o for o in cpu_rows if o.status in judged]
    gpu_ran = [o for o in outcomes if o.row.needs_gpu and o.status in judged]
    met = [o for o in ran if o.status == MET]
    lines = [
        "# Reproducibility: the accuracy tier",
        "",
        "<!-- Generated by `python -m clbench.reproducibility` from bench/reference.toml and "
        "the committed store in reference/. Do not edit: a test fails when this file differs "
        "from what the command writes. -->",
        "",
        "`bench/reference.toml` holds one row per figure that clbench states about itself: the "
        "clbench run (scenario, strategy with any hyperparameters changed to the source's, "
        "budget), the metric, the target and its window, the source and its kind, the "
        "fine-tuning baseline, and how our setup differs from the source's. `pytest -m "
        "accuracy` (or `tox -e accuracy`) runs every row that is not in the committed store "
        f"yet with seeds {', '.join(map(str, SEEDS))}, writes the results into "
        "`reference/results/` (an ordinary clbench results store, committed; `clbench report "
        "--results reference/results` renders it) and fails a row that misses its target. "
        "Commit the store after each row; then `python -m clbench.reproducibility` rewrites "
        "this file.",
        "",
        "**Windows.** A row from a paper's table is met within "
        f"{SPREAD_WIDTH} sd of the source's runs plus a written allowance for each protocol "
        "difference (listed under the table). A row from a reproducibility suite uses that "
        "suite's own one-sided delta. A claim's margin is ours, and its source says how it was "
        "set.",
        "",
        "**Told apart from fine-tuning.** Every row runs its baseline (fine-tuning, `naive`, "
        "with the row's training parameters, or the ablation it names) beside it. A row tells "
        "its method apart when its window leaves out the source's fine-tuning figure, when it "
        "is a claim with a positive margin over the baseline, or when the tier requires the "
        "measured baseline to miss the window. Rows where a method equals fine-tuning by "
        "design (EWC in class-IL) stay, marked; they never count as their strategy's check.",
        "",
        f"**Cost.** Rows over {GPU_MINUTES} minutes for 3 seeds on the 2-core development CPU "
        "are marked for a GPU and listed as not run here on a CPU. Rows over "
        f"{ONE_SEED_MINUTES} minutes train one seed per group, so each finished seed is kept. "
        "`reference/gpu-rows.sh` runs the GPU rows on a lent GPU machine, cheapest first, "
        "within a time limit, and brings back the new documents (its header says how); "
        "`CLBENCH_GPU_ROWS_ON_CPU=1` runs them on a CPU instead, a seed at a time.",
        "",
        "Only runs at the current component versions count; runs at other versions are listed "
        "as stale.",
        "",
        "## Summary",
        "",
        f"- CPU rows: {len(cpu_rows)}; run at the current versions: {len(ran)}; met: "
        f"{len(met)}"
        + (f" ({100 * len(met) / len(ran):.0f}% of those run)" if ran else "") + ".",
        f"- GPU rows: {len(outcomes) - len(cpu_rows)}; run: {len(gpu_ran)}; met: "
        f"{sum(o.status == MET for o in gpu_ran)}.",
        "",
        "## Rows",
        "",
        "| id | kind | metric | target | reached: mean ± sd (3 seeds) | met | baseline | "
        "told apart | device | wall (min) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        row = o.row
        wall = "" if o.wall_s is None else f"{o.wall_s / 60:.1f}"
        status = o.status if o.status != MISSED else "**missed**"
        lines.append("| " + " | ".join(_cell(c) for c in (
            f"`{row.id}`", row.source_kind, row.metric, row.target_text(), _reached(o), status,
            _baseline(o), _told_apart(o), o.device, wall)) + " |")
    lines += ["", "## Each row", ""]
    for o in outcomes:
        row = o.row
        lines += [f"### `{row.id}`", "",
                  f"- run: `{row.strategy}` on `{row.scenario}`, {row.budget} budget; "
                  f"metric {row.metric}"
                  + (f" ({PROBES[row.metric]})" if row.is_probe else "")
                  + ("; checked: its margin over the baseline, seed by seed"
                     if row.versus_baseline else ""),
                  f"- source ({row.source_kind}): {row.source}"]
        if row.baseline_target is not None:
            lines.append(f"- baseline's published figure: {row.baseline_source}")
        if row.sd is not None:
            allow = "".join(f" + {a.points:g} ({a.why})" for a in row.allowances)
            lines.append(f"- window: {SPREAD_WIDTH} x sd {row.sd:g}{allow} = "
                         f"{row.tolerance:.4g}")
        lines.append(f"- differences: {row.differences}")
        if row.not_reproduced:
            lines.append(f"- not reproduced: {row.not_reproduced}")
        if o.values:
            seeds = ", ".join(_f(v, 4) for v in o.checked)
            lines.append(f"- per seed: {seeds}")
        for s in o.stale:
            lines.append(f"- stale (not counted): {s}")
        lines.append("")
    return "\n".join(lines)


def generate(table: str | Path | None = None, reference: str | Path = REFERENCE,
             gpu: bool = False) -> str:
    rows = load_targets(table)
    reference = Path(reference)
    index = StoreIndex.load(reference / "results")
    return render(rows, [outcome(r, index, reference / "probes", gpu=gpu) for r in rows])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m clbench.reproducibility",
        description="Write REPRODUCIBILITY.md from bench/reference.toml and the committed "
                    "reference store.")
    parser.add_argument("--reference", default=str(REFERENCE),
                        help="folder with results/ and probes/ (default: reference)")
    parser.add_argument("--output", default=str(OUTPUT), help="default: REPRODUCIBILITY.md")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if the file differs from what would be "
                             "written")
    args = parser.parse_args(argv)
    try:
        text = generate(reference=args.reference)
    except ClbenchError as exc:
        print(f"error: {exc.message}" + (f"\nhint: {exc.hint}" if exc.hint else ""),
              file=sys.stderr)
        return 2
    out = Path(args.output)
    if args.check:
        current = out.read_text() if out.is_file() else ""
        if current != text:
            print(f"{out} is out of date: run `python -m clbench.reproducibility`",
                  file=sys.stderr)
            return 1
        return 0
    write_atomically(out.parent if str(out.parent) else Path("."), out, text)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

