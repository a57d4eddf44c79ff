"""The results store: one JSON document per run in a directory, safe for several writers.

* **Atomic writes.** A document is written to a temporary file in the same directory (named
  ``.tmp-<pid>-*.json``), fsynced and renamed over ``<spec hash>.json``, as each run finishes:
  an interrupted suite loses at most the runs in progress, and a reader never sees half a
  document. A writer removes the temporaries of processes that no longer exist.
* **Runs not run for missing data** leave a small record, ``not-run/<spec hash>.json`` (the
  spec and the message), so that ``clbench report`` can list them; a stored result of the same
  spec supersedes it (and the writer removes it).
* **Readers take only ``<spec hash>.json``** (20 hex digits), only regular files (a FIFO never
  blocks a report) of at most :data:`MAX_DOCUMENT_BYTES`, and each spec once: a leftover
  temporary, a lock file or a second copy of a run is never counted. Other visible files (a
  report saved into the store, notes) are ignored and listed in ``LoadedResults.ignored``.
* **One run, one writer.** Before running, a process takes the run's lock (``.<hash>.lock``,
  an ``fcntl`` lock through the ``filelock`` package); a run whose lock another process holds
  is left to it. The kernel releases the lock when its process dies, even by SIGKILL, so a lock
  never outlives its owner. Lock files stay (empty, hidden): deleting one that another process
  has opened would let two processes hold "the" lock.

The file name is a lookup key only: the document holds the spec, the run identity and every
raw observation, in :mod:`clbench.schema`'s shape. Documents of older schemas are migrated in
memory (their files are never rewritten).
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clbench import files
from clbench.errors import ConfigError, ResultsError
from clbench.schema import RunResult, parse, validate

DOCUMENT_NAME = re.compile(r"^[0-9a-f]{20}\.json$")
STRAY_NAME = re.compile(r"^[^.].*\.json$")  # visible .json files: results, or misplaced
TEMPORARY_NAME = re.compile(r"^\.tmp-(?:(\d+)-)?.*\.json$")
MAX_DOCUMENT_BYTES = 64 * 2**20  # a result is a few KiB; far larger is not one
LEGACY_TEMPORARY_AGE_S = 600  # temporaries without a pid (older clbench): stale after this


class InvalidResultError(ResultsError):
    """A result the writer refused because it would not read back: a bug, not a full disk."""


NOT_RUN_DIR = "not-run"
NOT_RUN_KIND = "clbench-not-run"
MAX_NOT_RUN_BYTES = 2**20


@dataclass(frozen=True)
class NotRun:
    """A planned run that did not run because its dataset is missing (``not-run/<hash>.json``)."""

    spec_hash: str
    spec: dict[str, Any]  # RunSpec.to_json()
    reason: str  # "data missing"
    message: str  # the DataError's text: which files were expected where
    recorded_at: str

    def to_json(self) -> dict[str, Any]:
        return {"kind": NOT_RUN_KIND, "spec_hash": self.spec_hash, "spec": self.spec,
                "reason": self.reason, "message": self.message,
                "recorded_at": self.recorded_at}


def _parse_not_run(doc: Any) -> NotRun | None:
    """A not-run record, or None when ``doc`` is not one (untrusted input: checked field by
    field)."""
    if not isinstance(doc, dict) or doc.get("kind") != NOT_RUN_KIND:
        return None
    spec = doc.get("spec")
    texts = [doc.get(k) for k in ("spec_hash", "reason", "message", "recorded_at")]
    if not isinstance(spec, dict) or not all(isinstance(t, str) for t in texts):
        return None
    needed = {"scenario": str, "strategy": str, "budget": str, "scenario_params": dict}
    if any(not isinstance(spec.get(k), t) for k, t in needed.items()):
        return None
    if not DOCUMENT_NAME.match(f"{texts[0]}.json"):
        return None
    return NotRun(texts[0], spec, texts[1], texts[2], texts[3])


@dataclass
class LoadedResults:
    runs: list[RunResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # "path: what is wrong"
    not_run: list[NotRun] = field(default_factory=list)  # missing data, no result since
    # visible files not named like a result (a report.json saved into the store, notes): not
    # results, so not problems either; readers mention them once
    ignored: list[Path] = field(default_factory=list)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def write_atomically(folder: Path, target: Path, text: str) -> None:
    """``text`` into ``target`` through a fsynced temporary in ``folder`` (``.tmp-<pid>-*``,
    removed by a later writer if this process dies) and a rename: a reader sees the old file
    or all of the new one, never a part. The document follows the umask (a store shared by a
    group stays readable by it). Raises OSError."""
    folder.mkdir(parents=True, exist_ok=True)
    files.write_atomically(target, text, prefix=f".tmp-{os.getpid()}-", suffix=".json")


def write_output(path: str | Path, text: str) -> None:
    """A report (or any output file) as :func:`clbench.files.write_output` writes it: a regular
    file atomically (a full disk leaves the old file, or none, never a part), a device or FIFO
    straight into it, a symlink's target through the link. ``-`` writes nothing: the caller
    prints the text."""
    if str(path) == "-":
        return
    target = Path(path)
    try:
        files.write_output(target, text)
    except OSError as exc:
        raise ConfigError(f"cannot write {target}: {exc.strerror or exc}",
                          hint="choose a writable path with free space") from exc


class ResultsStore:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    def path(self, spec_hash: str) -> Path:
        return self.root / f"{spec_hash}.json"

    # -- writing -------------------------------------------------------------------------------

    def check_writable(self, create: bool = True) -> None:
        """ResultsError, before anything runs, if results cannot be written here. ``create``:
        make the directory and write a probe file (the real check); else only look at the
        nearest existing folder (a dry run writes nothing)."""
        hint = "choose a writable directory with --results"
        if self.root.exists() and not self.root.is_dir():
            raise ResultsError(f"cannot write results to {self.root}: it is not a directory",
                               hint=hint)
        if not create:
            existing = next((p for p in (self.root, *self.root.parents) if p.exists()), None)
            if existing is None or not existing.is_dir() \
                    or not os.access(existing, os.W_OK | os.X_OK):
                raise ResultsError(f"cannot write results to {self.root}: {existing} is not "
                                   "a writable directory", hint=hint)
            return
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=self.root):
                pass
        except OSError as exc:
            raise ResultsError(f"cannot write results to {self.root}: {exc.strerror or exc}",
                               hint=hint) from exc

    def write(self, result: RunResult) -> Path:
        doc = result.to_json()
        problem = validate(doc)
        if problem:  # a bug of the writer: never store what cannot be read back
            raise InvalidResultError(f"refusing to store an invalid result for "
                                     f"{result.spec.label()}: {problem}")
        try:
            text = json.dumps(doc, indent=1, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InvalidResultError(f"cannot serialise the result of {result.spec.label()}: "
                                     f"{exc}") from exc
        target = self.path(result.spec_hash)
        try:
            write_atomically(self.root, target, text)
            self.clear_not_run(result.spec_hash)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise ResultsError(
                    f"the disk holding {self.root} is full: the result of "
                    f"{result.spec.label()} was not stored (every earlier result is)",
                    hint="free some space, then run the same command again to resume") from exc
            raise ResultsError(f"cannot write results to {self.root}: {exc}",
                               hint="choose a writable directory with --results") from exc
        return target

    def record_not_run(self, spec: Any, message: str, recorded_at: str) -> Path:
        """Record that ``spec`` (a RunSpec) did not run because its data is missing, written
        atomically like a result."""
        record = NotRun(spec.hash, spec.to_json(), "data missing", message, recorded_at)
        folder = self.root / NOT_RUN_DIR
        target = folder / f"{spec.hash}.json"
        try:
            write_atomically(folder, target, json.dumps(record.to_json(), indent=1, default=str))
        except OSError as exc:
            raise ResultsError(f"cannot write results to {self.root}: {exc}",
                               hint="choose a writable directory with --results") from exc
        return target

    def clear_not_run(self, spec_hash: str) -> None:
        """Drop the not-run record of a run that has now run."""
        with_record = self.root / NOT_RUN_DIR / f"{spec_hash}.json"
        try:
            with_record.unlink(missing_ok=True)
        except OSError:  # a record left behind is superseded by the result anyway
            pass

    def _load_not_run(self, out: LoadedResults, stored: set[str]) -> None:
        folder = self.root / NOT_RUN_DIR
        if not folder.is_dir():
            return
        for path in ResultsStore(folder)._entries(DOCUMENT_NAME):
            try:
                info = os.stat(path)
                if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_NOT_RUN_BYTES:
                    raise ValueError("not a small regular file")
                with open(path, "rb") as f:
                    record = _parse_not_run(json.loads(f.read().decode("utf-8")))
            except (OSError, ValueError, UnicodeDecodeError, RecursionError):
                record = None
            if record is None or record.spec_hash != path.stem:
                out.problems.append(f"{path}: not a clbench not-run record")
                continue
            if record.spec_hash not in stored:
                out.not_run.append(record)

    def remove_stale_temporaries(self) -> int:
        """Remove the temporary files of writers that died mid-write; how many."""
        removed = 0
        for path in self._entries(TEMPORARY_NAME):
            pid = TEMPORARY_NAME.match(path.name).group(1)
            try:
                stale = (not _alive(int(pid))) if pid else \
                    time.time() - path.stat().st_mtime > LEGACY_TEMPORARY_AGE_S
                if stale:
                    path.unlink()
                    removed += 1
            except OSError:  # gone already, or not ours to remove
                continue
        return removed

    def lock(self, spec_hash: str):
        """The run's lock (``filelock.FileLock``, not yet acquired)."""
        from filelock import FileLock

        return FileLock(self.root / f".{spec_hash}.lock")

    # -- reading -------------------------------------------------------------------------------

    def _entries(self, pattern: re.Pattern) -> Iterator[Path]:
        try:
            names = sorted(os.listdir(self.root))
        except FileNotFoundError:
            return
        except OSError as exc:
            raise ResultsError(f"cannot list {self.root}: {exc}") from exc
        for name in names:
            if pattern.match(name):
                yield self.root / name

    def read(self, path: Path) -> RunResult:
        """One document; ResultsError naming the file if it is unreadable or invalid."""
        try:
            info = os.stat(path)
        except OSError as exc:
            raise ResultsError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
        if not stat.S_ISREG(info.st_mode):
            raise ResultsError(f"{path}: not a regular file")
        if info.st_size > MAX_DOCUMENT_BYTES:
            raise ResultsError(f"{path}: {info.st_size:,} bytes is too large for a result")
        try:
            with open(path, "rb") as f:
                doc = json.loads(f.read().decode("utf-8"))
        except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
            # ValueError: bad JSON, or an integer of thousands of digits
            kind = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:200]
            raise ResultsError(f"{path}: not a readable JSON document ({kind})") from exc
        try:
            return parse(doc)
        except ResultsError as exc:
            raise ResultsError(f"{path}: {exc.message}", hint=exc.hint) from None
        except RecursionError:
            raise ResultsError(f"{path}: not a clbench result (nested too deeply)") from None

    def completed(self, spec_hash: str) -> bool:
        """True when a valid result exists that need not run again (ok or diverged: a failed
        run is retried, a corrupt file is rerun and replaced). A document migrated from an
        older schema counts under its recomputed hash, whatever its file is named."""
        return self.stored(spec_hash) or spec_hash in self.completed_hashes()

    def stored(self, spec_hash: str) -> bool:
        """True when ``<spec_hash>.json`` holds a valid result that need not run again: one
        file read (what a writer checks after taking a run's lock)."""
        path = self.path(spec_hash)
        if not path.exists():
            return False
        try:
            result = self.read(path)
        except ResultsError:
            return False
        return result.spec_hash == spec_hash and result.status != "failed"

    def completed_hashes(self) -> set[str]:
        """The spec hashes of every result that need not run again, from one pass over the
        store (what a run checks its plan against): file names are not trusted, since a
        schema-1 document is named by the hash of a spec without component versions."""
        if not self.root.is_dir():
            return set()
        return {r.spec_hash for r in self.load().runs if r.status != "failed"}

    def load(self) -> LoadedResults:
        """Every valid document, one per spec; each unreadable one is listed in ``problems``
        by name. Of two documents of one spec (a schema-1 file beside its rerun), the one
        named by its own hash wins, else the later finished one."""
        if not self.root.is_dir():
            raise ResultsError(
                f"no results directory at {self.root}",
                hint="run `clbench run ...` first, or point --results at a results directory",
            )
        out = LoadedResults()
        for path in self._entries(STRAY_NAME):  # mentioned, not silently passed over
            if not DOCUMENT_NAME.match(path.name):
                out.ignored.append(path)
        by_spec: dict[str, tuple[tuple[bool, str], RunResult]] = {}
        for path in self._entries(DOCUMENT_NAME):
            try:
                result = self.read(path)
            except ResultsError as exc:
                out.problems.append(exc.message)
                continue
            rank = (path.name == f"{result.spec_hash}.json", result.finished_at or "")
            kept = by_spec.get(result.spec_hash)
            if kept is None or rank > kept[0]:
                by_spec[result.spec_hash] = (rank, result)
        out.runs = [result for _, result in by_spec.values()]
        self._load_not_run(out, set(by_spec))
        return out
