"""Where the benchmarks read their datasets: ``$CLBENCH_DATA`` when set (a lent GPU machine
carries its own copy, ``reference/gpu-rows.sh``), else ``../shared/data`` beside the checkout."""

from __future__ import annotations

import os
from pathlib import Path

DATA = Path(os.environ.get("CLBENCH_DATA")
            or Path(__file__).resolve().parents[2] / "shared" / "data")
