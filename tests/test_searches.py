"""The searches behind the defaults (bench/searches.py): declared once, stored in the committed
reference store, written into docs/tuning.md, and held to the strategies' defaults."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from clbench import api
from clbench.errors import ConfigError
from clbench.results import ResultsStore
from clbench.searches import (
    BEGIN,
    END,
    SearchOutcome,
    default_agrees,
    evaluate,
    generate,
    load_searches,
    render,
)

REPO = Path(__file__).resolve().parents[1]
SEARCHES = load_searches()


def test_tuning_md_is_generated_from_the_committed_store():
    doc = (REPO / "docs" / "tuning.md").read_text()
    assert generate(doc, REPO / "reference" / "results") == doc, (
        "docs/tuning.md is out of date: run `python -m clbench.searches write`")


@pytest.mark.parametrize("search", SEARCHES, ids=[s.id for s in SEARCHES])
def test_a_complete_search_chose_the_default(search):
    if search.superseded:
        pytest.skip(f"{search.id}: superseded, backs no default")
    outcome = evaluate(search, ResultsStore(REPO / "reference" / "results"))
    if not outcome.complete:
        pytest.skip(f"{search.id}: pending (trials not in the reference store yet)")
    assert default_agrees(outcome), (
        f"{search.id}: the validation split chose {outcome.best}, the default is "
        f"{search.default()}: make the best the default (and bump {search.strategy}'s version)")


SEARCH = """
[[search]]
id = "x"
strategy = "naive"
scenarios = ["split-digits:setting=class", "split-digits:setting=task"]
budget = "smoke"
space = ["lr=0.001,0.05"]
seeds = "0"
why = "a test"
cpu_minutes = 1
"""


def test_search_scores_every_configuration_and_names_the_best(tmp_path):
    path = tmp_path / "searches.toml"
    path.write_text(SEARCH)
    (search,) = load_searches(path)
    store = ResultsStore(tmp_path / "results")
    pending = evaluate(search, store)
    assert not pending.complete and pending.best is None and default_agrees(pending) is None
    assert "pending (0 of 4 trials stored)" in render([pending])
    for scenario in search.scenarios:
        api.tune(scenario, search.strategy, list(search.space), seeds=search.seeds,
                 budget=search.budget, results=store.root, outputs={}, device="cpu",
                 download=False)
    done = evaluate(search, store)
    assert done.complete
    means = {c["lr"]: done.mean(per) for c, per, _ in done.scores}
    assert set(means) == {"0.001", "0.05"} and all(0 <= m <= 1 for m in means.values())
    assert done.best == {"lr": max(means, key=means.get)}
    # naive's smoke default lr is the grid's best, or not: the check says which
    assert default_agrees(done) == (float(done.best["lr"]) == search.default()["lr"])
    text = render([done])
    assert "complete" in text and text.startswith(BEGIN) and text.endswith(END)
    doc = f"# Tuning\n\n{BEGIN}\nold\n{END}\n\nafter\n"
    assert generate(doc, store.root, [search]).endswith("\n\nafter\n")

    # the choice's test score: the same seeds on the test split and every task, reported
    # once stored, never read by the choice
    assert done.test == dict.fromkeys(search.scenarios) and "| not run |" in text
    for scenario in search.scenarios:
        specs = search.test_specs(scenario, done.best)
        assert all(s.validation == 0 and not s.tasks for s in specs)
        assert {s.hash for s in specs}.isdisjoint(s.hash for s in search.specs(scenario,
                                                                                done.best))
        api.run(specs, results=store.root, device="cpu", download=False)
    scored = evaluate(search, store)
    assert scored.best == done.best and all(len(v) == 1 for v in scored.test.values())
    assert "Test split, lr = " in render([scored])


def test_a_best_on_the_grid_edge_is_flagged_unless_declared(tmp_path):
    path = tmp_path / "searches.toml"
    path.write_text(SEARCH.replace("lr=0.001,0.05", "lr=0.001,0.01,0.05"))
    (search,) = load_searches(path)
    scenarios = search.scenarios

    def outcome(best_lr, s=search):
        scores = [({"lr": lr}, dict.fromkeys(scenarios, 0.9 if lr == best_lr else 0.5),
                   dict.fromkeys(scenarios, "ok")) for lr in ("0.001", "0.01", "0.05")]
        return SearchOutcome(s, scores)

    assert outcome("0.01").on_edge() == [] and "grid's edge" not in render([outcome("0.01")])
    for lr in ("0.001", "0.05"):
        assert outcome(lr).on_edge() == ["lr"]
        assert "does not bracket it" in render([outcome(lr)])
    declared = dataclasses.replace(search, edge="a cost cap")
    assert "accepted: a cost cap" in render([outcome("0.05", declared)])


@pytest.mark.parametrize("edit,message", [
    (('strategy = "naive"', 'strategy = "nave"'), "unknown strategy"),
    (('space = ["lr=0.001,0.05"]', 'space = ["lrr=1"]'), "no parameter 'lrr'"),
    (('why = "a test"\n', ""), "missing why"),
    (('budget = "smoke"', 'budget = "smoke"\ncolour = 1'), "unknown keys colour"),
])
def test_bad_searches_are_named(tmp_path, edit, message):
    path = tmp_path / "searches.toml"
    path.write_text(SEARCH.replace(*edit))
    with pytest.raises(ConfigError, match=message) as info:
        load_searches(path)
    assert "search 1" in str(info.value)


def test_every_search_backs_a_default_of_its_first_scenario():
    for search in SEARCHES:
        assert search.default(), search.id
        assert dataclasses.replace(search, seeds="0").specs(search.scenarios[0], {})


def test_a_superseded_search_backs_no_default_says_why_and_is_not_rerun(tmp_path, monkeypatch):
    import clbench.searches as searches

    path = tmp_path / "searches.toml"
    path.write_text(SEARCH.replace('seeds = "0"', 'seeds = "0"\nsuperseded = "3 tasks hid it"'))
    (old,) = load_searches(path)
    scores = [({"lr": lr}, dict.fromkeys(old.scenarios, 0.9 if lr == "0.05" else 0.5),
               dict.fromkeys(old.scenarios, "ok")) for lr in ("0.001", "0.05")]
    current = dataclasses.replace(old, superseded="")
    # naive's smoke lr is not 0.05: held to the default, the current search disagrees
    assert default_agrees(SearchOutcome(current, scores)) is False
    outcome = SearchOutcome(old, scores)
    assert default_agrees(outcome) is None
    text = render([outcome])
    assert "| superseded |" in text and "**Superseded:** 3 tasks hid it." in text
    assert "Backed, until superseded: a test." in text

    tuned = []
    monkeypatch.setattr(searches, "load_searches",
                        lambda: [old, dataclasses.replace(current, id="y")])
    monkeypatch.setattr(api, "tune", lambda scenario, *a, **k: tuned.append(scenario))
    searches.run([], tmp_path / "results")
    assert len(tuned) == len(current.scenarios)  # "y" only
    tuned.clear()
    searches.run(["x"], tmp_path / "results")  # named: runs
    assert len(tuned) == len(old.scenarios)
