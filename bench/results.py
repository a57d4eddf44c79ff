"""The results store: one JSON document per run in a directory.

Documents are written atomically (a temporary file in the same directory, fsync, rename), as
each run finishes, so an interrupted suite loses at most the runs in progress. The file name is
the run spec's hash, which is only a lookup key: the document itself holds the spec, the run
identity and every raw observation. The document's shape is :mod:`clbench.schema`'s: the store
writes ``RunResult.to_json()`` and reads through ``schema.parse``, which migrates documents of
older schemas in memory (their files are never rewritten).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from clbench.errors import ResultsError
from clbench.schema import RunResult, parse, validate


@dataclass
class LoadedResults:
    runs: list[RunResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # "path: what is wrong"


class ResultsStore:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    def path(self, spec_hash: str) -> Path:
        return self.root / f"{spec_hash}.json"

    def write(self, result: RunResult) -> Path:
        doc = result.to_json()
        problem = validate(doc)
        if problem:  # a bug of the writer: never store what cannot be read back
            raise ResultsError(f"refusing to store an invalid result for "
                               f"{result.spec.label()}: {problem}")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            target = self.path(result.spec_hash)
            fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-", suffix=".json")
            try:
                with os.fdopen(fd, "w") as f:
                    json.dump(doc, f, indent=1, allow_nan=False)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise ResultsError(
                f"cannot write results to {self.root}: {exc}",
                hint="choose a writable directory with --results",
            ) from exc
        return target

    def read(self, path: Path) -> RunResult:
        """One document; ResultsError naming the file if it is unreadable or invalid."""
        try:
            doc = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ResultsError(f"{path}: not a readable JSON document ({exc})") from exc
        try:
            return parse(doc)
        except ResultsError as exc:
            raise ResultsError(f"{path}: {exc.message}", hint=exc.hint) from None

    def completed(self, spec_hash: str) -> bool:
        """True when a valid result exists that need not run again (ok or diverged: a failed
        run is retried, a corrupt file is rerun and replaced). A document migrated from an
        older schema counts under its recomputed hash, whatever its file is named."""
        path = self.path(spec_hash)
        if path.exists():
            try:
                result = self.read(path)
            except ResultsError:
                result = None
            if result is not None and result.spec_hash == spec_hash \
                    and result.status != "failed":
                return True
        return spec_hash in self.completed_hashes()

    def completed_hashes(self) -> set[str]:
        """The spec hashes of every result that need not run again, from one pass over the
        store (what a run checks its plan against): file names are not trusted, since a
        schema-1 document is named by the hash of a spec without component versions."""
        if not self.root.is_dir():
            return set()
        done = set()
        for path in sorted(self.root.glob("*.json")):
            try:
                result = self.read(path)
            except ResultsError:
                continue
            if result.status != "failed":
                done.add(result.spec_hash)
        return done

    def load(self) -> LoadedResults:
        """Every valid document; each unreadable one is listed in ``problems`` by name."""
        out = LoadedResults()
        if not self.root.is_dir():
            raise ResultsError(
                f"no results directory at {self.root}",
                hint="run `clbench run ...` first, or point --results at a results directory",
            )
        for path in sorted(self.root.glob("*.json")):
            try:
                out.runs.append(self.read(path))
            except ResultsError as exc:
                out.problems.append(exc.message)
        return out
