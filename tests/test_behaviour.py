"""The reference strategies do what they exist for, and runs are reproducible."""

import pytest

from clbench import api, metrics


def _run(tmp_path, scenario, strategy, seeds, budget="default", **kw):
    specs, _ = api.plan(scenarios=[scenario], strategies=[strategy], seeds=seeds, budget=budget)
    summary = api.run(specs, results=tmp_path, device="cpu", **kw)
    assert summary.failed == 0
    runs = api.ResultsStore(tmp_path).load().runs
    by_seed = {}
    for doc in runs:
        if doc.spec_hash in {s.hash for s in specs}:
            by_seed[doc.spec.seed] = doc
    return [by_seed[s] for s in sorted(by_seed)]


@pytest.fixture(scope="module")
def class_incremental(tmp_path_factory):
    root = tmp_path_factory.mktemp("ci")
    naive = _run(root, "split-digits:setting=class", "naive", "0,1")
    joint = _run(root, "split-digits:setting=class", "joint", "0,1")
    return naive, joint


def test_naive_forgets_catastrophically_in_class_incremental(class_incremental):
    naive, _ = class_incremental
    for doc in naive:
        R = doc.accuracy_matrix
        assert metrics.learning_accuracy(R) > 0.85  # it learns each task...
        assert metrics.bwt(R) < -0.6  # ...and forgets it as soon as the next arrives
        assert metrics.acc(R) < 0.35


def test_joint_is_the_upper_bound(class_incremental):
    naive, joint = class_incremental
    for n, j in zip(naive, joint):
        assert metrics.bwt(j.accuracy_matrix) > -0.15
        assert metrics.acc(j.accuracy_matrix) > metrics.acc(n.accuracy_matrix) + 0.4


def test_task_incremental_evaluation_uses_the_task_id(tmp_path):
    (doc,) = _run(tmp_path, "split-digits:setting=task", "naive", "0")
    R = doc.accuracy_matrix
    # With the task id, two-way choices: the untrained model is near chance (0.5) ...
    assert 0.3 < sum(R[0]) / len(R[0]) < 0.7
    # ... and the trained one keeps most of what it learnt (forgetting is mild in this setting).
    assert metrics.acc(R) > 0.85


def test_same_seed_same_results_and_batched_equals_alone(tmp_path):
    args = ("permuted-digits:n_tasks=3", "naive:epochs=3", "0,1,2", "smoke")
    grouped = _run(tmp_path / "a", *args)
    again = _run(tmp_path / "b", *args)
    alone = _run(tmp_path / "c", *args, group_size=1)
    assert [d.group.size for d in grouped] == [3, 3, 3]
    assert [d.group.size for d in alone] == [1, 1, 1]
    for g, a, s in zip(grouped, again, alone):
        assert g.accuracy_matrix == a.accuracy_matrix  # bit-identical on the CPU
        n_test = g.scenario.data["n_test"]
        for row_g, row_s in zip(g.accuracy_matrix, s.accuracy_matrix):
            for x, y in zip(row_g, row_s):
                assert abs(x - y) <= 1.0 / n_test + 1e-9  # at most one test sample flips
    # different seeds: different permutations and initialisations, different results
    assert grouped[0].accuracy_matrix != grouped[1].accuracy_matrix


def test_random_class_order_is_seeded(tmp_path):
    runs = _run(tmp_path, "split-digits:class_order=random", "naive", "0,1", budget="smoke")
    orders = [[t.source_classes for t in d.scenario.tasks] for d in runs]
    assert orders[0] != orders[1]
    assert all(sorted(sum(o, ())) == list(range(10)) for o in orders)
    assert [d.group.size for d in runs] == [1, 1]  # different tasks: not batched together
