#!/usr/bin/env bash
# The accuracy tier's GPU rows (bench/reference.toml rows over 30 CPU-minutes), for a lent GPU
# machine: the machine is bare and offline, so clbench installs from this checkout with no
# dependencies (its image holds torch, torchvision, pandas, jinja2, scipy, matplotlib, filelock,
# rich and pytest) and the data travels with the command.
#
#   here:   mkdir -p .data && cp -r ../shared/data/MNIST ../shared/data/cifar-10-subset-bin .data/
#           (.data is ignored by git; carry it)
#   there:  bash reference/gpu-rows.sh .data SECONDS        (e.g. 540 inside a 600 s call)
#   back:   tar -xzf results.tar.gz -C reference/ && commit, as after any tier row;
#           continual-cost.json: continual evaluation's cost on this GPU (README)
#
# Each row runs through the tier itself (pytest -m accuracy), into a copy of the committed
# store, so it resumes and is judged exactly as on the CPU. The rows go cheapest first; a row
# cut off by the time limit keeps its finished seeds (one seed per group) for the next call.
# Rows that need avalanche-lib are left out unless it imports (carry its wheels for those).
set -u
data=${1:?usage: gpu-rows.sh DATA_DIR SECONDS}
seconds=${2:?usage: gpu-rows.sh DATA_DIR SECONDS}
out=${OUT:-$(mktemp -d)}
work=$(mktemp -d)
py=${PYTHON:-python3}  # the image's python3 holds torch
$py -m pip install -q --no-deps --no-build-isolation --no-index -e . || exit 1
cp -rp reference/results "$work/"
mkdir -p "$work/probes"; cp -rp reference/probes/. "$work/probes/" 2>/dev/null
touch "$work/.start"
export CLBENCH_OFFLINE=1 CLBENCH_DATA=$data CLBENCH_DEVICE=cuda CLBENCH_ACCURACY_REFERENCE=$work
ids=$($py - <<'EOF'
import importlib.util
from clbench.reference import load_targets
avalanche = importlib.util.find_spec("avalanche") is not None
rows = [r for r in load_targets() if r.needs_gpu]
rows = [r for r in rows if avalanche or not r.strategy_name.startswith("avalanche.")]
print(" ".join(r.id for r in sorted(rows, key=lambda r: r.cpu_minutes)))
EOF
)
end=$((SECONDS + seconds))
# issue 23's cost figure on this device first (about a minute): the continual-evaluation group
# against the plain one (benchmarks/test_bench_continual.py; pytest-benchmark is not needed)
timeout 240 $py - <<'EOF' 2>&1 | tail -1 | tee "$out/continual-cost.json"
import json, sys
sys.path.insert(0, "benchmarks")
from test_bench_continual import cost
print(json.dumps(cost()))
EOF
echo "GPU rows, cheapest first: $ids"
for id in $ids; do
  left=$((end - SECONDS))
  [ "$left" -le 30 ] && { echo "out of time before $id"; break; }
  echo "=== $id ($left s left)"
  timeout "$left" $py -m pytest -q -p no:cacheprovider -m accuracy tests/test_accuracy.py \
    -k "test_reaches_published_figure and [$id]" 2>&1 | tail -4
done
# only the documents this call wrote travel back (at most 8 files come back: one archive)
(cd "$work" && find results probes -newer .start -name '*.json' -print0 2>/dev/null \
  | tar -czf "$out/results.tar.gz" --null -T -)
tar -tzf "$out/results.tar.gz" | sed 's/^/new: /'
