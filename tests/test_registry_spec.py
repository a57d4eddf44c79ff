import dataclasses
import importlib
import pkgutil
import types
from importlib import metadata

import pytest

from clbench.app.suite import load_suite
from clbench.errors import ConfigError
from clbench.params import parse_named
from clbench.registry import REPORTERS, SCENARIOS, STRATEGIES, TRACKERS, Registry
from clbench.spec import RunSpec, make_specs, parse_seeds
from clbench.strategies.naive import Naive


def test_builtins_are_registered():
    assert {"naive", "joint"} <= set(STRATEGIES.names())
    assert {"permuted-mnist", "split-mnist", "split-cifar10", "split-cifar100", "split-digits",
            "permuted-digits"} <= set(SCENARIOS.names())


# --- each component package lists its own members -----------------------------------------

COMPONENT_PACKAGES = {"clbench.strategies": STRATEGIES, "clbench.scenarios": SCENARIOS,
                      "clbench.reports": REPORTERS, "clbench.trackers": TRACKERS}


def unlisted_modules(package: types.ModuleType) -> list[str]:
    """Problems with the package's lists: a module in neither BUILTIN nor SUPPORT (nor private,
    with a leading underscore), a name in both, or a listed module that does not exist."""
    on_disk = {m.name for m in pkgutil.iter_modules(package.__path__)
               if not m.name.startswith("_")}
    builtin, support = set(package.BUILTIN), set(package.SUPPORT)
    where = f"in {package.__name__}'s __init__.py ({package.__file__})"
    problems = [f"{package.__name__}.{name} is listed in neither BUILTIN nor SUPPORT: add it to "
                f"BUILTIN if it registers something, else to SUPPORT, {where}"
                for name in sorted(on_disk - builtin - support)]
    problems += [f"{package.__name__}.{name} is in both BUILTIN and SUPPORT {where}"
                 for name in sorted(builtin & support)]
    problems += [f"{package.__name__}.{name} is listed {where} but does not exist"
                 for name in sorted((builtin | support) - on_disk)]
    return problems


@pytest.mark.parametrize("package", sorted(COMPONENT_PACKAGES))
def test_every_module_of_a_component_package_is_listed(package):
    assert unlisted_modules(importlib.import_module(package)) == []


@pytest.mark.parametrize("package", sorted(COMPONENT_PACKAGES))
def test_builtin_modules_register_and_support_modules_do_not(package):
    pkg = importlib.import_module(package)
    homes = {cls.__module__ for name, cls in COMPONENT_PACKAGES[package].items()
             if ":" not in name}  # "module:Class" lookups by other tests are not built-ins
    assert sorted(f"{package}.{m}" for m in pkg.BUILTIN if f"{package}.{m}" not in homes) == []
    assert sorted(f"{package}.{m}" for m in pkg.SUPPORT if f"{package}.{m}" in homes) == []


def test_an_unlisted_module_is_named_with_where_to_list_it(tmp_path, monkeypatch):
    folder = tmp_path / "fakecomponents"
    folder.mkdir()
    (folder / "__init__.py").write_text("BUILTIN = ('alpha', 'gone')\n"
                                        "SUPPORT = ('base', 'alpha')\n")
    for name in ("alpha", "base", "newcomer", "_private"):
        (folder / f"{name}.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    problems = unlisted_modules(importlib.import_module("fakecomponents"))
    assert len(problems) == 3, problems
    assert problems[0].startswith("fakecomponents.newcomer is listed in neither BUILTIN nor "
                                  "SUPPORT: add it to BUILTIN")
    assert "fakecomponents.alpha is in both" in problems[1]
    assert "fakecomponents.gone is listed" in problems[2]


def test_a_registry_imports_what_its_package_lists(tmp_path, monkeypatch):
    folder = tmp_path / "fakestrategies"
    folder.mkdir()
    (folder / "__init__.py").write_text("BUILTIN = ('one',)\n")
    (folder / "one.py").write_text(
        "from fakeregistry import THINGS\n\n@THINGS.register('one')\nclass One:\n    pass\n")
    (folder / "unlisted.py").write_text(
        "from fakeregistry import THINGS\n\n@THINGS.register('two')\nclass Two:\n    pass\n")
    (tmp_path / "fakeregistry.py").write_text(
        "from clbench.registry import Registry\n"
        "THINGS = Registry('thing', 'clbench.test-none', 'fakestrategies')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert importlib.import_module("fakeregistry").THINGS.names() == ["one"]


def test_each_params_class_name_means_one_thing():
    # native ewc's EWCParams and avalanche.ewc's were once both "EWCParams", with other fields
    by_name: dict[str, set[type]] = {}
    for _, cls in STRATEGIES.items():
        by_name.setdefault(cls.Params.__name__, set()).add(cls.Params)
    assert {name: len(classes) for name, classes in by_name.items() if len(classes) > 1} == {}
    avalanche = {cls.Params for name, cls in STRATEGIES.items() if name.startswith("avalanche.")}
    assert all(params.__name__.startswith("Avalanche") for params in avalanche)


def test_unknown_name_suggests():
    with pytest.raises(ConfigError) as exc:
        STRATEGIES.get("naiv")
    assert "did you mean 'naive'" in str(exc.value)


def test_module_class_path():
    assert STRATEGIES.get("clbench.strategies.naive:Naive") is Naive
    with pytest.raises(ConfigError, match="cannot import module"):
        STRATEGIES.get("no_such_module_xyz:Thing")
    with pytest.raises(ConfigError, match="has no attribute"):
        STRATEGIES.get("clbench.strategies.naive:Nope")


def test_entry_points_are_loaded(monkeypatch):
    ep = metadata.EntryPoint("plugged", "clbench.strategies.naive:Naive", "clbench.test-plugins")

    def fake_entry_points(group):
        return [ep] if group == "clbench.test-plugins" else []

    monkeypatch.setattr(metadata, "entry_points", fake_entry_points)
    registry = Registry("thing", "clbench.test-plugins")
    assert registry.names() == ["plugged"]
    assert registry.get("plugged") is Naive


def test_broken_entry_point_is_a_clear_error(monkeypatch):
    ep = metadata.EntryPoint("broken", "no_such_module_xyz:X", "clbench.test-plugins")
    monkeypatch.setattr(metadata, "entry_points", lambda group: [ep])
    registry = Registry("thing", "clbench.test-plugins")
    with pytest.raises(ConfigError, match="plugin 'broken'"):
        registry.names()


def test_duplicate_registration_is_refused():
    registry = Registry("thing", "clbench.none")

    @registry.register("a")
    class A:
        pass

    with pytest.raises(ConfigError, match="two things"):

        @registry.register("a")
        class B:
            pass


def test_parse_named():
    assert parse_named("naive") == ("naive", {})
    assert parse_named("naive:lr=0.1,epochs=2") == ("naive", {"lr": "0.1", "epochs": "2"})
    assert parse_named("pkg.mod:Cls") == ("pkg.mod:Cls", {})
    assert parse_named("pkg.mod:Cls:lr=1") == ("pkg.mod:Cls", {"lr": "1"})
    with pytest.raises(ConfigError):
        parse_named("naive:lr=1,oops")


def test_params_are_coerced_and_checked():
    spec = make_specs("split-digits:setting=task", "naive:lr=0.5,epochs=2", [0], "default")[0]
    params = dict(spec.strategy_params)
    assert params["lr"] == 0.5 and params["epochs"] == 2 and params["momentum"] == 0.9
    assert dict(spec.scenario_params)["setting"] == "task"
    with pytest.raises(ConfigError,
                       match="(?s)no parameter 'lrr'.*valid parameters: optimizer.*did you mean"):
        make_specs("split-digits", "naive:lrr=0.5", [0], "default")
    with pytest.raises(ConfigError, match="must be a number"):
        make_specs("split-digits", "naive:lr=abc", [0], "default")
    with pytest.raises(ConfigError, match="must be one of 'class', 'task', 'domain'"):
        make_specs("split-digits:setting=foo", "naive", [0], "default")
    with pytest.raises(ConfigError, match="n_tasks must divide"):
        make_specs("split-digits:n_tasks=3", "naive", [0], "default")
    with pytest.raises(ConfigError, match="unknown budget"):
        make_specs("split-digits", "naive", [0], "huge")


def test_defaults_depend_on_scenario_and_budget():
    smoke = dict(make_specs("split-mnist", "naive", [0], "smoke")[0].strategy_params)
    paper = dict(make_specs("split-mnist", "naive", [0], "paper")[0].strategy_params)
    default = dict(make_specs("split-mnist", "naive", [0], "default")[0].strategy_params)
    assert default["optimizer"] == "sgd" and default["lr"] == 0.01 and default["batch_size"] == 128
    assert smoke["batch_size"] == 64
    assert paper["optimizer"] == "adam" and paper["epochs"] == 4
    # the user's value wins over every default layer
    assert dict(make_specs("split-mnist", "naive:epochs=7", [0], "paper")[0]
                .strategy_params)["epochs"] == 7


def test_spec_hash_is_stable_and_sensitive():
    spec = make_specs("split-digits", "naive", [3], "default")[0]
    again = make_specs("split-digits:setting=class", "naive:lr=0.01", [3], "default")[0]
    assert spec == again and spec.hash == again.hash  # explicit defaults change nothing
    # A fixed value: the hash must not change across Python versions or processes.
    assert spec.hash == RunSpec.from_json(spec.to_json()).hash
    assert len(spec.hash) == 20
    others = [
        make_specs("split-digits", "naive", [4], "default")[0],
        make_specs("split-digits", "naive:lr=0.02", [3], "default")[0],
        make_specs("split-digits", "naive", [3], "smoke")[0],
        make_specs("split-digits:setting=task", "naive", [3], "default")[0],
        dataclasses.replace(spec, scenario_version="2"),
    ]
    assert len({spec.hash, *(o.hash for o in others)}) == 1 + len(others)


def test_spec_hash_golden():
    spec = RunSpec(scenario="split-digits", scenario_version="1",
                   scenario_params=(("setting", "class"),), strategy="naive",
                   strategy_version="1", strategy_params=(("lr", 0.01),), backbone="mlp",
                   backbone_version="1", seed=0, budget="default")
    assert spec.hash == "d26bd8311ab47001a2d1"


def test_parse_seeds():
    assert parse_seeds("0,1,2") == [0, 1, 2]
    assert parse_seeds("0-3") == [0, 1, 2, 3]
    assert parse_seeds("2,0-1,2") == [2, 0, 1]
    assert parse_seeds(5) == [5]
    for bad in ("x", "-1", "", [True]):
        with pytest.raises(ConfigError):
            parse_seeds(bad)


def test_builtin_suites_expand():
    smoke = load_suite("smoke")
    specs = smoke.expand()
    assert {s.scenario for s in specs} == {"split-digits", "permuted-digits", "split-mnist",
                                           "permuted-mnist", "split-cifar10", "split-cifar100"}
    assert {s.strategy for s in specs} >= {"naive", "joint"}
    assert all(s.budget == "smoke" for s in specs)
    assert len(load_suite("demo").expand(seeds=[7])) == 8 + 7  # pnn: task setting only
    assert load_suite("standard").expand()[0].budget == "paper"
