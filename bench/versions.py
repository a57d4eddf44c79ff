"""Versions of the components whose code defines a result: strategies, scenarios, backbones.

Every run spec carries the version of its strategy, scenario and backbone, so its hash (the
result's name in the store) changes when their code changes: a suite rerun after a change to
EWC reruns EWC, and a leaderboard never pools two versions in one cell (asv's per-benchmark
``version`` plays the same part).

* A component declares ``version = "N"`` in its own class body, and bumps it in every commit
  that changes its results.
* A class that declares none (a user's plugin, or a subclass of a clbench strategy) gets
  ``"src-"`` plus a fingerprint of its source: any change of its code is a new version.
* clbench's own components are held to their declared versions by ``versions.json`` beside
  this module: the fingerprint of each one's source as last recorded, with its version.
  ``tests/test_versions.py`` fails when a fingerprint changed and the version did not. After
  bumping, or after a change that provably keeps every result (a refactor with bit-identical
  accuracy matrices), record the new fingerprints with
  ``python -m clbench.versions record`` (``--same-results`` for the latter).

The fingerprint hashes the syntax tree of the source, docstrings dropped, so comments,
docstrings and formatting never ask for a bump. It covers the modules of the class and of its
bases in the same top-level package, and the modules those import from their own subpackage
(a split scenario's data loaders, a strategy's shared training loop).

Reading the recorded versions (:func:`recorded`) needs only the JSON file: reports use it
without importing torch or any strategy.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib
import importlib.resources
import importlib.util
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

KINDS = ("strategy", "scenario", "backbone")
RECORD_FILE = "versions.json"


def declared_version(cls: type) -> str | None:
    """The version written in ``cls``'s own body (inherited ones do not count)."""
    value = cls.__dict__.get("version")
    return None if value is None else str(value)


def version_of(cls: type) -> str:
    """The version a spec records for ``cls``: declared, else ``src-`` + its fingerprint."""
    return declared_version(cls) or f"src-{fingerprint(cls)[:12]}"


def _top(module: str) -> str:
    return module.split(".", 1)[0]


def _parent(module: str) -> str:
    return module.rpartition(".")[0]


@functools.cache
def _normalised_source(path: str) -> str:
    """The module's syntax tree without docstrings, as text."""
    tree = ast.parse(Path(path).read_text())
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree, include_attributes=False)


def _imported_modules(path: str, module: str) -> set[str]:
    """Modules statically imported by the module at ``path`` (absolute names)."""
    tree = ast.parse(Path(path).read_text())
    found = set()
    package = _parent(module)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                anchor = module.split(".")[: -node.level]
                base = ".".join([*anchor, base]) if base else ".".join(anchor)
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)  # "from pkg import module"
    return {m for m in found if m and (m == package or m.startswith(package + "."))}


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, AttributeError, ValueError):  # "pkg.module.attr": not a module
        return False


def source_modules(cls: type) -> list[str]:
    """The modules whose code the fingerprint of ``cls`` covers (see the module docstring)."""
    top = _top(cls.__module__)
    start = [c.__module__ for c in cls.__mro__ if _top(c.__module__) == top]
    seen: dict[str, str] = {}
    todo = list(dict.fromkeys(start))
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        module = sys.modules.get(name) or importlib.import_module(name)
        path = getattr(module, "__file__", None)
        if not path or not path.endswith(".py"):
            continue
        seen[name] = path
        if _parent(name) and _parent(name) != top:  # follow imports inside a subpackage only
            for dep in _imported_modules(path, name):
                if dep not in seen and _is_module(dep):
                    todo.append(dep)
    return sorted(seen)


def fingerprint(cls: type) -> str:
    """SHA-256 of the normalised source of :func:`source_modules`, and of the class's name."""
    h = hashlib.sha256(f"{cls.__module__}:{cls.__qualname__}".encode())
    for name in source_modules(cls):
        module = sys.modules[name]
        h.update(name.encode())
        h.update(_normalised_source(module.__file__).encode())
    return h.hexdigest()


# --- the record of clbench's own components ---------------------------------------------------


def recorded() -> dict[str, dict[str, dict[str, str]]]:
    """``{kind: {name: {"version": ..., "fingerprint": ...}}}`` as checked in (no imports)."""
    try:
        text = (importlib.resources.files("clbench") / RECORD_FILE).read_text()
    except FileNotFoundError:
        return {kind: {} for kind in KINDS}
    doc = json.loads(text)
    return {kind: dict(doc.get(kind, {})) for kind in KINDS}


def _registries() -> dict[str, Any]:
    from clbench.registry import BACKBONES, SCENARIOS, STRATEGIES

    return {"strategy": STRATEGIES, "scenario": SCENARIOS, "backbone": BACKBONES}


def builtin_components() -> Iterable[tuple[str, str, type]]:
    """(kind, name, class) of every component clbench itself registers."""
    for kind, registry in _registries().items():
        for name, cls in registry.items():
            if _top(cls.__module__) == "clbench" and cls.name == name:  # no aliases, no plugins
                yield kind, name, cls


def current() -> dict[str, dict[str, dict[str, str]]]:
    out: dict[str, dict[str, dict[str, str]]] = {kind: {} for kind in KINDS}
    for kind, name, cls in builtin_components():
        out[kind][name] = {"version": declared_version(cls) or "", "fingerprint": fingerprint(cls)}
    return out


def problems() -> list[str]:
    """What is out of step between the code and ``versions.json`` (empty: all in step)."""
    now, then = current(), recorded()
    out = []
    for kind in KINDS:
        for name, entry in sorted(now[kind].items()):
            old = then[kind].get(name)
            if not entry["version"]:
                out.append(f"{kind} {name!r} declares no version: add version = \"1\" to its "
                           "class body")
            elif old is None:
                out.append(f"{kind} {name!r} is not recorded in {RECORD_FILE}: run "
                           "`python -m clbench.versions record`")
            elif old["fingerprint"] != entry["fingerprint"] and old["version"] == entry["version"]:
                out.append(
                    f"the code of {kind} {name!r} changed but its version is still "
                    f"{entry['version']!r}: bump its version if results can change, then run "
                    "`python -m clbench.versions record` (or, for a change that keeps every "
                    "result bit-identical, `python -m clbench.versions record --same-results`)")
            elif old["version"] != entry["version"] or old["fingerprint"] != entry["fingerprint"]:
                out.append(f"{kind} {name!r} is at version {entry['version']!r} but "
                           f"{RECORD_FILE} records {old['version']!r}: run "
                           "`python -m clbench.versions record`")
        for name in sorted(set(then[kind]) - set(now[kind])):
            out.append(f"{kind} {name!r} is recorded in {RECORD_FILE} but no longer exists: run "
                       "`python -m clbench.versions record`")
    return out


def record(same_results: bool = False) -> list[str]:
    """Write ``versions.json`` from the code. Refuses a changed fingerprint at an unchanged
    version unless ``same_results`` (the developer's word that no result changes)."""
    now, then = current(), recorded()
    unbumped = [
        f"{kind} {name!r}"
        for kind in KINDS for name, entry in now[kind].items()
        if (old := then[kind].get(name)) is not None
        and old["fingerprint"] != entry["fingerprint"] and old["version"] == entry["version"]
    ]
    if unbumped and not same_results:
        return [f"code changed at an unchanged version: {', '.join(unbumped)}; bump their "
                "versions, or pass --same-results if every result stays bit-identical"]
    path = Path(__file__).with_name(RECORD_FILE)
    path.write_text(json.dumps(now, indent=1, sort_keys=True) + "\n")
    return []


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m clbench.versions",
                                     description="check or record the component versions")
    parser.add_argument("action", choices=["check", "record"])
    parser.add_argument("--same-results", action="store_true",
                        help="record changed code at unchanged versions (results bit-identical)")
    args = parser.parse_args(argv)
    issues = problems() if args.action == "check" else record(args.same_results)
    for line in issues:
        print(line, file=sys.stderr)
    return 1 if issues else 0


if __name__ == "__main__":
    sys.exit(main())
