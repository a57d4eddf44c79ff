"""A plugin report format: the number of stored runs per scenario, strategy and status, as
tab-separated text (``clbench report --tally FILE``).

Registered by the entry point ``tally`` in the group ``clbench.reporters``. A reporter never
imports torch: reports start in well under a second."""

from __future__ import annotations

from collections import Counter

from clbench.reports.base import Reporter


class TallyReporter(Reporter):
    description = "runs per scenario, strategy and status, tab-separated"

    def render(self, loaded) -> str:
        counts = Counter((r.spec.scenario, r.spec.strategy, r.status) for r in loaded.runs)
        lines = ["scenario\tstrategy\tstatus\truns"]
        lines += [f"{sc}\t{st}\t{status}\t{n}" for (sc, st, status), n in sorted(counts.items())]
        return "\n".join(lines) + "\n"
