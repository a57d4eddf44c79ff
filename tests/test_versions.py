"""Component versions: declared, part of every spec and its hash, and held to the source."""

from __future__ import annotations

import dataclasses
import textwrap

import pytest

from clbench import versions
from clbench.registry import BACKBONES, SCENARIOS, STRATEGIES
from clbench.spec import make_specs


def test_code_and_recorded_versions_are_in_step():
    """Fails when a strategy's, scenario's or backbone's source changed without its version
    (or versions.json was not re-recorded): the message says which and what to run."""
    assert versions.problems() == []


def test_every_builtin_component_declares_its_version():
    for kind, name, cls in versions.builtin_components():
        assert versions.declared_version(cls), f"{kind} {name} declares no version"
    kinds = {kind for kind, _, _ in versions.builtin_components()}
    assert kinds == {"strategy", "scenario", "backbone"}


def test_spec_carries_the_versions_and_they_change_its_hash():
    spec = make_specs("split-mnist:setting=class", "ewc", [0], "smoke")[0]
    assert (spec.strategy_version, spec.scenario_version, spec.backbone,
            spec.backbone_version) == ("2", "1", "mlp", "1")
    bumped = [dataclasses.replace(spec, **{field: "9"})
              for field in ("strategy_version", "scenario_version", "backbone_version")]
    assert len({spec.hash, *(b.hash for b in bumped)}) == 4
    cifar = make_specs("split-cifar10:setting=task,backbone=convnet", "naive", [0], "smoke")[0]
    assert cifar.backbone == "convnet"


def _write_module(tmp_path, monkeypatch, body: str, helpers: str = "SCALE = 1\n"):
    (tmp_path / "vplugin").mkdir(exist_ok=True)
    (tmp_path / "vplugin" / "__init__.py").write_text("")
    (tmp_path / "vplugin" / "helpers.py").write_text(helpers)
    (tmp_path / "vplugin" / "methods.py").write_text(textwrap.dedent(body))
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib
    import sys

    for name in [m for m in sys.modules if m.startswith("vplugin")]:
        del sys.modules[name]
    return importlib.import_module("vplugin.methods")


PLUGIN = '''
    """A method."""
    from clbench.strategies.naive import Naive
    from vplugin.helpers import SCALE


    class Mine(Naive):
        """Docstring."""
        def loss(self, x, y, t):
            return super().loss(x, y, t) * SCALE
'''


def test_an_undeclared_version_is_the_source_fingerprint(tmp_path, monkeypatch):
    mine = _write_module(tmp_path, monkeypatch, PLUGIN).Mine
    first = versions.version_of(mine)
    # inherits Naive's version "1", but a subclass's own code must not hide behind it
    assert first.startswith("src-") and first != "1"
    assert "vplugin.helpers" in versions.source_modules(mine)
    assert "clbench.strategies.base" in versions.source_modules(mine)

    reformatted = PLUGIN.replace('"""Docstring."""', '"""Another docstring."""') + "    # note\n"
    same = _write_module(tmp_path, monkeypatch, reformatted).Mine
    assert versions.version_of(same) == first  # docstrings, comments: no new version

    changed = _write_module(tmp_path, monkeypatch, PLUGIN.replace("* SCALE", "* SCALE * 2"))
    assert versions.version_of(changed.Mine) != first
    # a helper module it imports from its own package
    helper_changed = _write_module(tmp_path, monkeypatch, PLUGIN, helpers="SCALE = 2\n").Mine
    assert versions.version_of(helper_changed) != first


def test_a_changed_component_without_a_bump_is_named(monkeypatch):
    real = versions.current()
    changed = {k: {n: dict(e) for n, e in v.items()} for k, v in real.items()}
    changed["strategy"]["ewc"]["fingerprint"] = "0" * 64
    monkeypatch.setattr(versions, "recorded", lambda: changed)
    problems = versions.problems()
    assert len(problems) == 1
    assert "strategy 'ewc' changed but its version is still '2'" in problems[0]
    assert "python -m clbench.versions record" in problems[0]
    # recording refuses it unless the developer states the results are unchanged
    refusal = versions.record(same_results=False)
    assert refusal and "ewc" in refusal[0]


def test_a_bumped_but_unrecorded_version_is_named(monkeypatch):
    real = versions.current()
    changed = {k: {n: dict(e) for n, e in v.items()} for k, v in real.items()}
    changed["backbone"]["mlp"]["version"] = "0"
    monkeypatch.setattr(versions, "recorded", lambda: changed)
    assert versions.problems() == [
        "backbone 'mlp' is at version '1' but versions.json records '0': run "
        "`python -m clbench.versions record`"]


@pytest.mark.parametrize("registry", [STRATEGIES, SCENARIOS, BACKBONES])
def test_registries_list_the_versions(registry):
    for _, cls in registry.items():
        assert versions.version_of(cls)
