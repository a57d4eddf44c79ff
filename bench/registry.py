"""One registry mechanism for scenarios, strategies, backbones, reporters and trackers.

Three ways in, one lookup:

* ``@STRATEGIES.register("name")`` on a class (clbench's own, or a user's in-process code);
* an entry point in the group ``clbench.strategies`` (``clbench.scenarios``,
  ``clbench.backbones``, ``clbench.reporters``, ``clbench.executors``, ``clbench.trackers``)
  for a package that ships a method;
* ``"some.module:Class"`` on the command line or in a suite, for unpackaged code.

The registry does not list clbench's own members: each component package does, in the
``BUILTIN`` tuple of its ``__init__`` (the modules that register something; its other modules
are named in ``SUPPORT``, and ``tests/test_registry_spec.py`` fails for a module in neither).

Nothing is imported at import time: built-in modules and entry points are loaded on the first
lookup or listing.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Callable, Iterable
from importlib import metadata
from typing import Generic, TypeVar

from clbench.errors import ConfigError
from clbench.params import check_params_class

T = TypeVar("T")


class Registry(Generic[T]):
    """Names -> classes of one kind (``kind`` is used in messages only)."""

    def __init__(self, kind: str, entry_point_group: str, builtins: str | None = None,
                 required: Iterable[str] = (), init_keywords: Iterable[str] = (),
                 init_hint: str = "", plural: str | None = None):
        """``builtins``: the module whose import registers clbench's own members: a package
        whose ``BUILTIN`` tuple names its registering submodules, or a module that registers
        them itself."""
        self.kind = kind
        self.plural = plural or f"{kind}s"
        self.required = tuple(required)  # attributes a class must have to be of this kind
        self.init_keywords = tuple(init_keywords)  # keyword arguments its constructor takes
        self.init_hint = init_hint
        self.entry_point_group = entry_point_group
        self.builtins = builtins
        self._classes: dict[str, type[T]] = {}
        self._loaded = False

    def register(self, name: str) -> Callable[[type[T]], type[T]]:
        """Class decorator: register ``cls`` under ``name`` and set ``cls.name``."""

        def decorate(cls: type[T]) -> type[T]:
            self._check_kind(cls, name)
            existing = self._classes.get(name)
            if existing is not None and existing is not cls:
                raise ConfigError(
                    f"two {self.kind}s are registered as {name!r}: "
                    f"{_qualname(existing)} and {_qualname(cls)}",
                    hint="rename one of them",
                )
            if cls.__dict__.get("name") is None:  # a second registration is an alias
                cls.name = name  # type: ignore[attr-defined]
            self._classes[name] = cls
            return cls

        return decorate

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        if self.builtins:
            home = importlib.import_module(self.builtins)
            for module in getattr(home, "BUILTIN", ()):
                importlib.import_module(f"{self.builtins}.{module}")
        for ep in metadata.entry_points(group=self.entry_point_group):
            if ep.name in self._classes:
                continue
            try:
                cls = ep.load()
            except Exception as exc:  # a broken plugin must not break the others
                raise ConfigError(
                    f"the {self.kind} plugin {ep.name!r} ({ep.value}) failed to import: {exc}",
                    hint=f"fix or uninstall the package that declares it in {ep.group!r}",
                ) from exc
            self.register(ep.name)(cls)

    def _check_kind(self, cls: object, name: str) -> None:
        if not isinstance(cls, type):
            raise ConfigError(f"{self.kind} {name!r} is not a class")
        missing = [attr for attr in self.required if not hasattr(cls, attr)]
        if missing:
            raise ConfigError(
                f"{name!r} ({_qualname(cls)}) is not a {self.kind}: it lacks "
                f"{', '.join(missing)}",
                hint=f"a {self.kind} provides {', '.join(self.required)}",
            )
        if "Params" in self.required:
            problem = check_params_class(cls.Params)
            if problem:
                raise ConfigError(
                    f"{self.kind} {name!r} ({_qualname(cls)}) has unusable Params: {problem}",
                    hint="Params must be a dataclass whose fields have bool, int, float, str, "
                    "Literal or Optional types and valid defaults",
                )
        refused = _refused_keywords(cls, self.init_keywords)
        if refused:
            raise ConfigError(
                f"{name!r} ({_qualname(cls)}) is not a {self.kind}: its constructor does not "
                f"take the keyword argument{'s' if len(refused) > 1 else ''} "
                f"{', '.join(refused)}",
                hint=self.init_hint or None,
            )

    def names(self) -> list[str]:
        self._load()
        return sorted(self._classes)

    def items(self) -> list[tuple[str, type[T]]]:
        self._load()
        return sorted(self._classes.items())

    def get(self, name: str) -> type[T]:
        """The class registered as ``name``, or imported from ``"module:Class"``."""
        if not isinstance(name, str) or not name:
            raise ConfigError(f"a {self.kind} name must be a non-empty string, got {name!r}")
        if ":" in name:
            return self._import_path(name)
        self._load()
        try:
            return self._classes[name]
        except KeyError:
            close = difflib.get_close_matches(name, self._classes, n=3, cutoff=0.5)
            suggestion = f"did you mean {' or '.join(map(repr, close))}? " if close else ""
            raise ConfigError(
                f"unknown {self.kind} {name!r}",
                hint=f"{suggestion}known {self.plural}: {', '.join(sorted(self._classes))}; "
                f"or give your own as 'package.module:Class'",
            ) from None

    def _import_path(self, path: str) -> type[T]:
        if path in self._classes:
            return self._classes[path]
        module_name, _, attr = path.partition(":")
        if "." not in module_name and "=" not in path and module_name in self.names():
            # "naive:lr": a registered name with a parameter lacking its value
            raise ConfigError(f"cannot read the parameters of {path!r}",
                              hint=f"write parameters as {module_name}:key=value,key=value")
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # a user's module may fail in any way while importing
            raise ConfigError(
                f"cannot import module {module_name!r} for {self.kind} {path!r}: "
                f"{type(exc).__name__}: {exc}",
                hint="check the module is on PYTHONPATH (or installed) and the name is spelled "
                "'package.module:Class'",
            ) from exc
        cls = module
        for part in attr.split("."):
            cls = getattr(cls, part, None)
            if cls is None:
                raise ConfigError(
                    f"module {module_name!r} has no attribute {attr!r} for {self.kind} {path!r}"
                )
        self._check_kind(cls, path)
        # A class imported by path is known by its path, in this process and in any other: a
        # name of its own would not resolve where the module is not imported yet.
        if cls not in self._classes.values():  # a registered class keeps its registered name
            cls.name = path  # type: ignore[attr-defined]
        self._classes[path] = cls
        return cls


def _refused_keywords(cls: type, names: tuple[str, ...]) -> list[str]:
    """Those of ``names`` that ``cls(...)`` cannot take as keyword arguments."""
    if not names:
        return []
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):  # no signature to read (a C type): the call will tell
        return []
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return []
    keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [n for n in names if n not in params or params[n].kind not in keyword]


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


# Each registry's built-ins are listed where they live (the package's BUILTIN), never here.
SCENARIOS: Registry = Registry(
    "scenario",
    "clbench.scenarios",
    "clbench.scenarios",
    required=("Params", "info", "build", "batch_key"),
)
STRATEGIES: Registry = Registry(
    "strategy",
    "clbench.strategies",
    "clbench.strategies",
    required=("Params", "resolve_params", "unsupported", "setup", "train", "predict", "model"),
    plural="strategies",
)
# Backbones: ``cls(members, input_shape, n_outputs, **kwargs)`` builds S member networks.
BACKBONES: Registry = Registry("backbone", "clbench.backbones", "clbench.models",
                               required=("__call__",))
REPORTERS: Registry = Registry(
    "reporter",
    "clbench.reporters",
    "clbench.reports",
    required=("render",),
    # Every reporter is built as cls(generated_at=..., metadata=...) (clbench.api.report).
    init_keywords=("generated_at", "metadata"),
    init_hint="subclass clbench.reports.base.Reporter, or take generated_at=None and "
    "metadata=None keyword arguments in __init__",
)
# Trackers (``clbench run --log NAME:TARGET``): ``cls(target)`` streams one seed group's runs.
TRACKERS: Registry = Registry(
    "tracker",
    "clbench.trackers",
    "clbench.trackers",
    required=("start", "log_loss", "log_point", "finish", "missing"),
)
