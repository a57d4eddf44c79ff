"""A plugin executor: trains like ``local`` (one group after another in this process) and
appends a line per finished group to a journal file (``--executor journal --journal FILE``).

Registered by the entry point ``journal`` in the group ``clbench.executors``; its ``options``
become ``clbench run``'s and ``clbench tune``'s ``--journal``."""

from __future__ import annotations

from pathlib import Path

from clbench.app.executors import LocalExecutor, Option
from clbench.errors import DataError


class JournalExecutor(LocalExecutor):
    description = "local, with a line per finished group appended to a journal file"
    options = (Option("--journal", "journal", str, "FILE",
                      "the journal file (default clbench-journal.txt)"),)

    def __init__(self, journal: str = "clbench-journal.txt"):
        super().__init__()
        self.journal = Path(journal)

    def execute(self, groups, progress=None):
        for group, outcome in super().execute(groups, progress):
            seeds = ",".join(str(s.seed) for s in group)
            what = ("not run: data missing" if isinstance(outcome, DataError)
                    else "/".join(sorted({r.status for r in outcome})))
            with self.journal.open("a") as f:
                f.write(f"{group[0].strategy} on {group[0].scenario} [seeds {seeds}]: {what}\n")
            yield group, outcome
