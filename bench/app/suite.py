"""Suite files: a TOML grid of scenarios x strategies x seeds at one budget.

```toml
description = "what this suite is for"
budget = "default"
seeds = [0, 1, 2]            # or "0-2"
scenarios = ["split-mnist:setting=class", { name = "permuted-mnist", params = { n_tasks = 5 } }]
strategies = ["naive", { name = "joint", params = { reinit = true } }]
```

Built-in suites ship with the package (``bench/suites/*.toml``) and are named by their stem;
any other value is read as a path. A strategy that is not defined for a scenario's setting is
left out of the grid with a note (not an error), so a suite can mix settings.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from clbench.errors import ConfigError, UnsupportedError
from clbench.spec import RunSpec, make_specs, parse_seeds

Entry = tuple[str, dict[str, Any]]


def builtin_suites() -> dict[str, str]:
    """Name -> TOML text of every suite shipped with clbench."""
    folder = resources.files("clbench") / "suites"
    return {
        p.name.removesuffix(".toml"): p.read_text()
        for p in folder.iterdir()
        if p.name.endswith(".toml")
    }


@dataclass
class Suite:
    name: str
    description: str
    budget: str
    seeds: list[int]
    scenarios: list[Entry]
    strategies: list[Entry]
    notes: list[str] = field(default_factory=list)

    def expand(self, seeds: list[int] | None = None, budget: str | None = None) -> list[RunSpec]:
        """Every applicable scenario x strategy x seed; inapplicable pairs become notes."""
        specs: list[RunSpec] = []
        for scenario in self.scenarios:
            for strategy in self.strategies:
                try:
                    specs += make_specs(scenario, strategy, seeds or self.seeds,
                                        budget or self.budget)
                except UnsupportedError as exc:
                    self.notes.append(f"left out: {exc.message}")
        return specs


def load_suite(name_or_path: str) -> Suite:
    builtins = builtin_suites()
    if name_or_path in builtins:
        text, origin = builtins[name_or_path], f"built-in suite {name_or_path!r}"
        name = name_or_path
    else:
        path = Path(name_or_path)
        if path.exists() and not path.is_file():  # a FIFO or device would block or never end
            raise ConfigError(f"suite {name_or_path!r} is not a regular file",
                              hint="give a TOML file, or a built-in suite: "
                                   f"{', '.join(sorted(builtins))}")
        if not path.is_file():
            raise ConfigError(
                f"no suite named {name_or_path!r} and no such file",
                hint=f"built-in suites: {', '.join(sorted(builtins))}; or give a TOML file path",
            )
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read suite file {path}: {exc}") from exc
        except UnicodeDecodeError:
            raise ConfigError(f"suite file {path} is not a TOML file (not UTF-8 text)",
                              hint="give a TOML suite file, or a built-in suite name: "
                              f"{', '.join(sorted(builtins))}") from None
        origin, name = f"suite file {path}", path.stem
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{origin} is not valid TOML: {exc}") from exc
    known = {"description", "budget", "seeds", "scenarios", "strategies"}
    unknown = set(doc) - known
    if unknown:
        raise ConfigError(f"{origin} has unknown keys {sorted(unknown)}",
                          hint=f"valid keys: {', '.join(sorted(known))}")
    for key in ("scenarios", "strategies"):
        if not isinstance(doc.get(key), list) or not doc[key]:
            raise ConfigError(f"{origin} needs a non-empty list {key!r}")
    return Suite(
        name=name,
        description=str(doc.get("description", "")),
        budget=str(doc.get("budget", "default")),
        seeds=parse_seeds(doc.get("seeds", [0])),
        scenarios=[_entry(e, origin, "scenarios") for e in doc["scenarios"]],
        strategies=[_entry(e, origin, "strategies") for e in doc["strategies"]],
    )


def _entry(item: Any, origin: str, key: str) -> Entry | str:
    if isinstance(item, str):
        return item
    if isinstance(item, dict) and isinstance(item.get("name"), str):
        params = item.get("params", {})
        extra = set(item) - {"name", "params"}
        if not isinstance(params, dict) or extra:
            raise ConfigError(f"{origin}: entry {item!r} in {key!r} must be "
                              "{ name = ..., params = { ... } }")
        return item["name"], params
    raise ConfigError(f"{origin}: cannot read entry {item!r} in {key!r}",
                      hint="write 'name:key=value' or { name = ..., params = { ... } }")
