"""EWC and online EWC: the Fisher, the penalty, seed batching, and that they reduce forgetting."""

import pytest
import torch
import torch.nn.functional as F
from strategy_setup import set_up, train

import clbench.strategies.ewc  # noqa: F401  (registers "ewc" and "online-ewc")
from clbench import api, metrics
from clbench.errors import ConfigError
from clbench.experience import Experience
from clbench.models import member_state
from clbench.registry import STRATEGIES
from clbench.seeding import Stream, generator
from clbench.strategies.ewc import sample_labels


def _setup(name, scenario="permuted-digits:n_tasks=2", seeds=(0,), params="", budget="smoke"):
    return set_up(name, scenario, seeds, params, budget)


def _member_sum(t, members):
    return t.reshape(members, -1).sum(1)


# -- the Fisher ---------------------------------------------------------------------------------

def test_fisher_is_mean_squared_per_sample_gradient_of_each_member():
    seeds = [0, 5]
    st, data = _setup("ewc", seeds=seeds, params=":fisher_samples=6")
    st.fit(data.train[0])
    fisher = st.fisher_information(data.train[0], "empirical")
    params = dict(st.net.named_parameters())
    assert set(fisher) == set(params)
    # Reference: one sample, one member at a time, with ordinary autograd.
    train = data.train[0]
    for s, seed in enumerate(seeds):
        positions = torch.randperm(len(train), generator=generator(seed, Stream.EWC_FISHER))[:6]
        ref = {k: torch.zeros_like(p) for k, p in params.items()}
        for pos in positions.tolist():
            index = torch.full((len(seeds), 1), pos)
            x, y, _ = train.batch(index)
            loss = F.cross_entropy(st.net(x)[s], y[s])
            grads = torch.autograd.grad(loss, list(params.values()))
            for k, g in zip(params, grads):
                ref[k] += g.square() / 6
        for k in params:
            got = fisher[k].reshape(len(seeds), -1)[s]
            torch.testing.assert_close(got, ref[k].reshape(len(seeds), -1)[s],
                                       rtol=1e-4, atol=1e-9, msg=f"{k} of member {s}")


@pytest.mark.parametrize("scenario", ["permuted-digits:n_tasks=2",
                                      "permuted-digits:n_tasks=2,setting=task"])
def test_outer_product_fisher_equals_the_per_sample_gradient_path(scenario, monkeypatch):
    seeds = [0, 5]
    st, data = _setup("ewc", scenario, seeds, ":fisher_samples=40")
    st.fit(data.train[0])
    assert st._linear_layers() is not None  # the MLP takes the outer-product path
    fast = st.fisher_information(data.train[0], "true")
    st.fisher_gens = [generator(seed, Stream.EWC_FISHER) for seed in seeds]  # the same draws again
    monkeypatch.setattr(type(st), "outer_product_fisher", False)
    slow = st.fisher_information(data.train[0], "true")
    assert set(fast) == set(slow)
    for k in slow:
        torch.testing.assert_close(fast[k], slow[k], rtol=1e-4, atol=1e-10, msg=k)


def test_conv_backbones_take_the_per_sample_gradient_path():
    st, data = _setup("ewc", "split-digits:setting=task,backbone=convnet", [0, 5],
                      ":fisher_samples=8")
    assert st._linear_layers() is None
    fisher = st.fisher_information(data.train[0])
    for k, p in st.net.named_parameters():
        assert fisher[k].shape == p.shape and (fisher[k] >= 0).all()
    assert all((_member_sum(f, 2) >= 0).all() for f in fisher.values())
    assert sum(float(f.sum()) for f in fisher.values()) > 0


def test_fisher_shapes_sign_and_true_vs_empirical():
    st, data = _setup("ewc", seeds=[0, 5], params=":fisher_samples=64")
    st.fit(data.train[0])
    true = st.fisher_information(data.train[0], "true")
    emp = st.fisher_information(data.train[0], "empirical")
    for k, p in st.net.named_parameters():
        for fisher in (true, emp):
            assert fisher[k].shape == p.shape
            assert (fisher[k] >= 0).all()
            assert (_member_sum(fisher[k], 2) > 0).all(), k  # non-zero for every member
        assert not torch.allclose(true[k], emp[k], rtol=1e-2), k  # sampled vs dataset labels


def test_true_fisher_in_task_setting_uses_the_task_head_only():
    st, data = _setup("ewc", "permuted-digits:n_tasks=2,setting=task", [0, 5],
                      ":fisher_samples=32")
    st.fit(data.train[0])
    head = st.fisher_information(data.train[0])["head.weight"]  # [S, 20, 400]
    assert (head[:, :10].sum((1, 2)) > 0).all()
    assert (head[:, 10:] == 0).all()  # masked outputs of task 2: no gradient, no importance


def test_sample_labels_follows_the_predictive_distribution_and_respects_masks():
    probs = torch.tensor([0.2, 0.5, 0.3, 0.0], dtype=torch.float64)
    logits = probs.log().expand(2, 20000, 4)  # class 3 has logit -inf
    u = 1.0 - torch.rand(2, 20000, generator=torch.Generator().manual_seed(0),
                         dtype=torch.float64)
    y = sample_labels(logits, u)
    freq = torch.bincount(y.flatten(), minlength=4).double() / y.numel()
    torch.testing.assert_close(freq, probs, atol=0.01, rtol=0)
    assert freq[3] == 0
    # u = 1 (the top of the range) still draws a class with positive probability
    assert sample_labels(logits[:, :1], torch.ones(2, 1, dtype=torch.float64)).eq(2).all()


# -- the penalty --------------------------------------------------------------------------------

def test_penalty_is_zero_at_the_anchor_and_quadratic_per_member():
    S = 3
    st, data = _setup("ewc", seeds=[0, 5, 9], params=":fisher_samples=32,ewc_lambda=10")
    st.train(Experience(data.info.tasks[0], data.train[0]))
    assert torch.equal(st.penalty(), torch.zeros(S))
    anchor = {k: p.detach().clone() for k, p in st.net.named_parameters()}
    gen = torch.Generator().manual_seed(1)
    d = {k: 0.01 * torch.randn(p.shape, generator=gen) for k, p in anchor.items()}

    def penalty_at(scale, members=range(S)):
        with torch.no_grad():
            for k, p in st.net.named_parameters():
                p.copy_(anchor[k])
                for s in members:
                    p.view(S, -1)[s] += scale * d[k].view(S, -1)[s]
        return st.penalty().detach()

    p1, p2 = penalty_at(1.0), penalty_at(2.0)
    assert (p1 > 0).all()
    torch.testing.assert_close(p2, 4 * p1, rtol=1e-5, atol=0)
    expected = sum(_member_sum(st.fishers[k][0] * d[k].square(), S) for k in d)
    torch.testing.assert_close(p1, expected, rtol=1e-5, atol=0)
    # moving member 1 only leaves the others' penalties at zero
    only = penalty_at(1.0, members=[1])
    assert only[0] == 0 and only[2] == 0 and only[1] > 0
    # and the training loss is the task loss plus lambda/2 times the penalty, per member
    x, y, t = data.train[1].batch(torch.arange(16).expand(S, -1))
    base = super(type(st), st).loss(x, y, t)
    torch.testing.assert_close(st.loss(x, y, t), base + 5.0 * only)


def _fisher_step(st, data):
    """The Fisher ``consolidate`` is about to compute, without consuming the randomness."""
    states = [g.get_state() for g in st.fisher_gens]
    fisher = st.fisher_information(data)
    for g, state in zip(st.fisher_gens, states):
        g.set_state(state)
    return fisher


@pytest.mark.parametrize("name,gamma", [("ewc", None), ("online-ewc", 0.5), ("online-ewc", 1.0)])
def test_stored_terms_follow_the_update_rule(name, gamma):
    params = ":fisher_samples=32" + ("" if gamma is None else f",gamma={gamma}")
    st, data = _setup(name, "permuted-digits:n_tasks=3", [0, 5], params)
    fishers, anchors = [], []
    for t in range(3):
        st.fit(data.train[t])
        fishers.append(_fisher_step(st, data.train[t]))
        anchors.append({k: p.detach().clone() for k, p in st.net.named_parameters()})
        st.consolidate(data.train[t])
    for k in fishers[0]:
        if name == "ewc":  # one (F_k, theta*_k) per task
            torch.testing.assert_close(st.fishers[k], torch.stack([f[k] for f in fishers]))
            torch.testing.assert_close(st.anchors[k], torch.stack([a[k] for a in anchors]))
        else:  # F <- gamma F + F_new, anchored at the latest parameters
            running = fishers[0][k]
            for f in fishers[1:]:
                running = gamma * running + f[k]
            assert st.fishers[k].shape[0] == 1
            torch.testing.assert_close(st.fishers[k][0], running)
            torch.testing.assert_close(st.anchors[k][0], anchors[-1][k])
    assert all(not torch.equal(fishers[0][k], fishers[1][k]) for k in fishers[0])
    # the per-step penalty (one merged quadratic) equals the sum of the stored terms
    torch.testing.assert_close(st.penalty(), st.direct_penalty(), rtol=1e-4, atol=1e-6)
    with torch.no_grad():
        for p in st.net.parameters():
            p.add_(0.01 * torch.randn(p.shape, generator=torch.Generator().manual_seed(2)))
    assert (st.direct_penalty() > 0).all()
    torch.testing.assert_close(st.penalty(), st.direct_penalty(), rtol=1e-4, atol=0)


def test_online_ewc_penalty_is_weighted_by_gamma_times_the_running_fisher():
    """Schwarz et al. 2018, Eq. 4: training on task k+1 penalises with gamma * F*_k, where
    F*_k = gamma * F*_{k-1} + F_k (an earlier version weighted with F*_k alone, so gamma < 1
    acted as lambda / gamma on the newest task)."""
    gamma, S = 0.5, 2
    st, data = _setup("online-ewc", "permuted-digits:n_tasks=3", [0, 5],
                      f":fisher_samples=32,gamma={gamma}")
    fishers = []
    for t in range(2):
        st.fit(data.train[t])
        fishers.append(_fisher_step(st, data.train[t]))
        st.consolidate(data.train[t])
    anchor = {k: p.detach().clone() for k, p in st.net.named_parameters()}
    with torch.no_grad():
        for p in st.net.parameters():
            p.add_(0.01 * torch.randn(p.shape, generator=torch.Generator().manual_seed(3)))
    expected = torch.zeros(S)
    for k, p in st.net.named_parameters():
        running = gamma * fishers[0][k] + fishers[1][k]  # F*_2
        expected += (gamma * running * (p.detach() - anchor[k]).square()).reshape(S, -1).sum(1)
    torch.testing.assert_close(st.penalty().detach(), expected, rtol=1e-4, atol=1e-7)


# -- seed batching ------------------------------------------------------------------------------

def _train(name, scenario, seeds, params, tasks):
    st, data = _setup(name, scenario, seeds, params)
    train(st, data, tasks)
    return st


@pytest.mark.parametrize("name,scenario,params", [
    ("ewc", "permuted-digits:n_tasks=3", ":fisher_samples=64"),
    ("online-ewc", "permuted-digits:n_tasks=3", ":fisher_samples=64,gamma=0.9"),
    ("ewc", "permuted-digits:n_tasks=3,setting=task", ":fisher_samples=64"),
])
def test_batched_members_match_unbatched_runs(name, scenario, params):
    seeds = [0, 5, 9]
    group = _train(name, scenario, seeds, params, 3)
    for s, seed in enumerate(seeds):
        alone = _train(name, scenario, [seed], params, 3)
        batched, single = member_state(group.net, s), member_state(alone.net, 0)
        for k in single:
            torch.testing.assert_close(batched[k], single[k], rtol=1e-5, atol=1e-6,
                                       msg=f"{k} of seed {seed}")
        for k in alone.fishers:  # the Fisher (incl. its sampled labels) and anchors per member
            K = alone.fishers[k].shape[0]
            for store in ("fishers", "anchors"):
                g = getattr(group, store)[k].reshape(K, len(seeds), -1)[:, s]
                a = getattr(alone, store)[k].reshape(K, 1, -1)[:, 0]
                torch.testing.assert_close(g, a, rtol=1e-4, atol=1e-7,
                                           msg=f"{store} {k} of seed {seed}")


def test_zero_lambda_trains_exactly_like_naive():
    ewc = _train("ewc", "permuted-digits:n_tasks=2", [0, 5], ":ewc_lambda=0,fisher_samples=16", 2)
    naive = _train("naive", "permuted-digits:n_tasks=2", [0, 5], "", 2)
    for k, p in naive.net.named_parameters():
        assert torch.equal(dict(ewc.net.named_parameters())[k], p), k


# -- hyperparameters ----------------------------------------------------------------------------

@pytest.mark.parametrize("strategy,what", [
    ("ewc:ewc_lambda=-1", "ewc_lambda"),
    ("ewc:ewc_lambda=nan", "ewc_lambda"),
    ("ewc:fisher=foo", "fisher"),
    ("ewc:fisher_samples=0", "fisher_samples"),
    ("online-ewc:gamma=1.5", "gamma"),
    ("online-ewc:gamma=-0.1", "gamma"),
])
def test_bad_hyperparameters_are_clear_errors(strategy, what):
    with pytest.raises(ConfigError, match=what):
        api.plan(scenarios=["permuted-digits"], strategies=[strategy], seeds="0")


def test_defaults_are_documented_values():
    p = STRATEGIES.get("ewc").resolve_params("split-digits", "paper", {})
    assert (p.ewc_lambda, p.fisher, p.fisher_samples) == (300.0, "true", 1024)
    # split MNIST: chosen on the validation split (docs/tuning.md)
    for name in ("ewc", "online-ewc"):
        assert STRATEGIES.get(name).resolve_params("split-mnist", "default", {}
                                                   ).ewc_lambda == 1000.0
    assert STRATEGIES.get("ewc").resolve_params("split-mnist", "paper", {}).ewc_lambda == 3000
    assert STRATEGIES.get("online-ewc").resolve_params("split-mnist", "paper", {}
                                                       ).ewc_lambda == 1e6
    # 300 diverged on 10-task permuted MNIST (ewc.md); the default budget's lambdas were
    # chosen on the validation split (docs/tuning.md)
    chosen = {("ewc", "default"): 10.0}
    for name in ("ewc", "online-ewc"):
        for budget in ("smoke", "default", "paper"):
            assert STRATEGIES.get(name).resolve_params("permuted-mnist", budget, {}
                                                       ).ewc_lambda == chosen.get((name, budget),
                                                                                  30.0)
    assert STRATEGIES.get("online-ewc").resolve_params("permuted-mnist", "default", {}).gamma == 1


# -- behaviour ----------------------------------------------------------------------------------

def _run(root, strategy, seeds="0,1"):
    specs, _ = api.plan(scenarios=["permuted-digits:n_tasks=3"], strategies=[strategy],
                        seeds=seeds, budget="default")
    summary = api.run(specs, results=root, device="cpu")
    assert summary.failed == 0 and summary.diverged == 0
    docs = {d.spec.seed: d for d in api.ResultsStore(root).load().runs
            if d.spec_hash in {s.hash for s in specs}}
    return [docs[s].accuracy_matrix for s in sorted(docs)]


@pytest.fixture(scope="module")
def permuted(tmp_path_factory):
    # Full permuted-digits tasks at 2 epochs (the default budget has 5), 256 Fisher samples:
    # the same seeds (permutations, initialisation, shuffles) for every strategy.
    root = tmp_path_factory.mktemp("ewc")
    return {
        "naive": _run(root, "naive:epochs=2"),
        "ewc": _run(root, "ewc:epochs=2,fisher_samples=256"),
        "online-ewc": _run(root, "online-ewc:epochs=2,fisher_samples=256"),
    }


@pytest.mark.parametrize("name", ["ewc", "online-ewc"])
def test_ewc_forgets_much_less_than_naive_on_permuted_digits(permuted, name):
    naive, ewc = permuted["naive"], permuted[name]
    mean = lambda f, runs: sum(f(R) for R in runs) / len(runs)  # noqa: E731
    # measured (2 seeds): naive BWT about -0.30, EWC and online EWC about -0.04
    assert mean(metrics.bwt, naive) < -0.15  # naive forgets here...
    assert mean(metrics.bwt, ewc) > mean(metrics.bwt, naive) + 0.15  # ...EWC much less
    assert mean(metrics.acc, ewc) > mean(metrics.acc, naive) + 0.05
    for n, e in zip(naive, ewc):  # and for each seed
        assert metrics.bwt(e) > metrics.bwt(n) + 0.05
        assert metrics.learning_accuracy(e) > 0.8  # the new tasks are still learnt
