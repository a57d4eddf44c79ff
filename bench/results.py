"""The results store: one JSON document per run in a directory.

Documents are written atomically (a temporary file in the same directory, fsync, rename), as
each run finishes, so an interrupted suite loses at most the runs in progress. The file name is
the run spec's hash, which is only a lookup key: the document itself holds the spec, the run
identity and every raw observation. ``schema_version`` is checked on load.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clbench.errors import ResultsError

SCHEMA_VERSION = 1
STATUSES = ("ok", "diverged", "failed")
REQUIRED_KEYS = ("schema_version", "spec", "spec_hash", "status", "accuracy_matrix",
                 "param_counts", "identity", "scenario")


@dataclass
class LoadedResults:
    runs: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # "path: what is wrong"


class ResultsStore:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    def path(self, spec_hash: str) -> Path:
        return self.root / f"{spec_hash}.json"

    def write(self, doc: dict[str, Any]) -> Path:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            target = self.path(doc["spec_hash"])
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

    def read(self, path: Path) -> dict[str, Any]:
        """One document; ResultsError naming the file if it is unreadable or invalid."""
        try:
            doc = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ResultsError(f"{path}: not a readable JSON document ({exc})") from exc
        problem = validate(doc)
        if problem:
            raise ResultsError(f"{path}: {problem}")
        return doc

    def completed(self, spec_hash: str) -> bool:
        """True when a valid result exists that need not run again (ok or diverged: a failed
        run is retried, a corrupt file is rerun and replaced)."""
        path = self.path(spec_hash)
        if not path.exists():
            return False
        try:
            return self.read(path)["status"] != "failed"
        except ResultsError:
            return False

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


def validate(doc: Any) -> str | None:
    """What is wrong with a result document, or None."""
    if not isinstance(doc, dict):
        return "not a clbench result (expected a JSON object)"
    version = doc.get("schema_version")
    if version != SCHEMA_VERSION:
        return (f"schema_version {version!r} is not supported (this clbench reads "
                f"{SCHEMA_VERSION}); rerun with this version or use a matching clbench")
    missing = [k for k in REQUIRED_KEYS if k not in doc]
    if missing:
        return f"missing keys {', '.join(missing)}"
    for key, kind in (("spec", dict), ("scenario", dict), ("identity", dict),
                      ("param_counts", list), ("spec_hash", str)):
        if not isinstance(doc[key], kind):
            return f"{key!r} must be a JSON {'object' if kind is dict else kind.__name__}"
    if doc["status"] not in STATUSES:
        return f"unknown status {doc['status']!r}"
    R = doc["accuracy_matrix"]
    if (not isinstance(R, list) or len(R) < 2
            or any(not isinstance(r, list) or len(r) != len(R) - 1 for r in R)):
        return "accuracy_matrix must be a list of T + 1 rows of T entries"
    if any(v is not None and not isinstance(v, (int, float)) for r in R for v in r):
        return "accuracy_matrix entries must be numbers or null"
    return None
