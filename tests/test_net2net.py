"""Net2Net: widening and deepening preserve the function; the network grows as configured."""

import pytest
import torch
from strategy_setup import CPU, set_up, train

import clbench.strategies.net2net  # noqa: F401  (registers "net2net")
from clbench import api
from clbench.errors import ConfigError
from clbench.models import ModelFactory, member_state, parameter_count
from clbench.seeding import Stream, generator
from clbench.strategies.net2net import identity_layer, wider

TASK = "split-digits:setting=task"
SEEDS = [0, 5, 9]


def _mlp_params(d, widths, o):
    """Parameters of an mlp with hidden ``widths``: sum of (fan_in + 1) * fan_out."""
    sizes = [d, *widths, o]
    return sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))


def _widen_all(net, extra, seeds, noise_std):
    gens = [generator(s, Stream.NET2NET_GROW) for s in seeds]
    noise_gens = [generator(s, Stream.NET2NET_GROW, 1) for s in seeds]
    maps = []
    for i in range(len(net.hidden)):
        last = i == len(net.hidden) - 1
        layer, nxt, g = wider(net.hidden[i], net.head if last else net.hidden[i + 1], extra,
                              gens, noise_std, noise_gens)
        net.hidden[i] = layer
        if last:
            net.head = nxt
        else:
            net.hidden[i + 1] = nxt
        maps.append(g)
    return maps


def _trained_like_net(seeds=SEEDS):
    """A random mlp with non-trivial biases (trained networks have them)."""
    net = ModelFactory("mlp", (1, 8, 8), 10, CPU)(seeds, hidden=(40, 30)).eval()
    with torch.no_grad():
        for layer in [*net.hidden, net.head]:
            layer.bias.normal_(0, 0.3, generator=torch.Generator().manual_seed(1))
    return net


def test_widening_preserves_outputs_per_member_and_maps_differ():
    net = _trained_like_net()
    x = torch.randn(3, 200, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    before = net(x)
    v_old = net.hidden[1].weight.detach().clone()
    maps = _widen_all(net, 25, SEEDS, noise_std=0.0)
    assert [layer.out_features for layer in net.hidden] == [65, 55]
    after = net(x)
    for s in range(3):
        assert (after[s] - before[s]).abs().max() < 1e-5
    # each member its own map g (drawn from its own stream), all within the old units
    assert not torch.equal(maps[0][0], maps[0][1]) and not torch.equal(maps[0][0], maps[0][2])
    assert int(maps[0].max()) < 40 and int(maps[1].max()) < 30
    # copies share their source's incoming weights; outgoing weights are split evenly
    w1, g = net.hidden[0].weight, maps[0]
    for s in range(3):
        assert torch.equal(w1[s, 40:], w1[s, g[s]])
        j = int(g[s, 0])
        copies = 1 + int((g[s] == j).sum())
        v = net.hidden[1].weight[s, :30]  # rows of the old units of layer 2
        assert torch.equal(v[:, j], v[:, 40])
        torch.testing.assert_close(v[:, j] * copies, v_old[s, :, j], rtol=1e-6, atol=1e-7)


def test_noisy_widening_stays_within_its_analytic_bound():
    """Noise E on the new units' incoming weights (no noise elsewhere). For ReLU layers
    (1-Lipschitz) the output change obeys, elementwise,
    |dz_l| <= |W_l| |dh_{l-1}| + |E_l| |h'_{l-1}|,  |dh_l| <= |dz_l|,  |d out| <= |V| |dh_L|,
    with W_l the noise-free widened weights and h' the noisy network's activations. We check
    the measured change against this bound, that the bound is < 15% of the logits' scale and
    the change itself < 1% of it at noise_std = 0.01."""
    clean, noisy = _trained_like_net(), _trained_like_net()
    x = torch.randn(3, 200, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    before = clean(x)
    maps_c = _widen_all(clean, 25, SEEDS, 0.0)
    maps_n = _widen_all(noisy, 25, SEEDS, 0.01)
    # same maps g (their own stream), noise present on the new rows only
    assert all(torch.equal(a, b) for a, b in zip(maps_c, maps_n))
    h, dh = x.flatten(2), torch.zeros(3, 200, 64)
    with torch.no_grad():
        for lc, ln in zip(clean.hidden, noisy.hidden):
            E = ln.weight - lc.weight
            assert torch.equal(E[:, : E.shape[1] - 25], torch.zeros_like(E[:, :-25]))
            assert E[:, -25:].abs().max() > 0
            dh = torch.bmm(dh, lc.weight.abs().transpose(1, 2)) + \
                torch.bmm(h.abs(), E.abs().transpose(1, 2))
            h = torch.relu(ln(h))
        assert torch.equal(clean.head.weight, noisy.head.weight)
        bound = torch.bmm(dh, clean.head.weight.abs().transpose(1, 2))
        change = (noisy(x) - before).abs()
    assert (change <= bound + 1e-5).all()
    assert change.max() > 0  # the noise does break the symmetry
    scale = before.abs().max()
    assert bound.max() < 0.15 * scale  # worst case (measured here: ~0.10 x scale)
    assert change.max() < 0.01 * scale  # actual change (measured here: ~0.0024 x scale)


def test_deepening_preserves_outputs():
    net = _trained_like_net()
    x = torch.randn(3, 100, 1, 8, 8)
    before = net(x)
    net.hidden.append(identity_layer(3, 30, CPU))
    assert torch.equal(net(x), before)  # relu(I h + 0) = h exactly for h = relu(.) >= 0


def _strategy(seeds, params="", scenario=TASK):
    return set_up("net2net", scenario, seeds, params)


def _train(strategy, data, t):
    train(strategy, data, [t])


@pytest.mark.parametrize("params,w0,m,deepen", [
    (":initial_width=40,growth=0.5,noise_std=0", 40, 20, False),
    (":initial_width=40,growth_units=7,deepen=true,noise_std=0", 40, 7, True),
])
def test_parameters_grow_as_configured_and_growth_preserves_function(params, w0, m, deepen):
    strategy, data = _strategy([0, 5], params)
    x, _, tid = data.test[0].batch(torch.arange(30).expand(2, -1))
    for t in range(1, 4):  # 1-based task number
        before = strategy.predict(x, tid)
        if t > 1:
            strategy.grow()  # what train() does first from the 2nd task on
            torch.testing.assert_close(strategy.predict(x, tid), before, rtol=0, atol=1e-5)
        strategy.fit(data.train[t - 1])
        strategy.tasks_seen = t
        width, depth = w0 + (t - 1) * m, 2 + (t - 1 if deepen else 0)
        assert [layer.out_features for layer in strategy.model.hidden] == [width] * depth
        assert parameter_count(strategy.model) == _mlp_params(64, [width] * depth, 10)


def test_full_run_records_growth(tmp_path):
    specs, _ = api.plan(scenarios=[TASK], strategies=["net2net:growth_units=50,deepen=true"],
                        seeds="0,1", budget="smoke")
    assert api.run(specs, results=tmp_path, device="cpu").failed == 0
    docs = api.ResultsStore(tmp_path).load().runs
    for doc in docs:
        T = doc.n_tasks
        # before training and after task 1: the 2 x 400 backbone; after task t: t - 1 growths
        expected = [_mlp_params(64, [400, 400], 10)] + [
            _mlp_params(64, [400 + 50 * (t - 1)] * (2 + t - 1), 10) for t in range(1, T + 1)
        ]
        assert list(doc.param_counts) == expected


def test_batched_members_match_unbatched_runs():
    params = ":initial_width=32,growth=0.5,deepen=true"  # default noise on
    group, data = _strategy(SEEDS, params)
    for t in range(2):
        _train(group, data, t)
    g = group.maps[0][0]
    assert g.shape == (3, 16) and not torch.equal(g[0], g[1])
    for s, seed in enumerate(SEEDS):
        alone, data1 = _strategy([seed], params)
        for t in range(2):
            _train(alone, data1, t)
        assert torch.equal(alone.maps[0][0][0], g[s])  # its own map, whatever the group
        batched, single = member_state(group.model, s), member_state(alone.model, 0)
        assert batched.keys() == single.keys()
        for name in single:
            torch.testing.assert_close(batched[name], single[name], rtol=1e-5, atol=1e-6,
                                       msg=f"{name} of seed {seed}")


@pytest.mark.parametrize("bad,word", [
    ("growth=-0.5", "growth"), ("growth_units=-3", "growth_units"),
    ("noise_std=-0.1", "noise_std"), ("initial_width=0", "initial_width"),
    ("deepen=maybe", "deepen"),
])
def test_bad_hyperparameters_are_config_errors(bad, word):
    with pytest.raises(ConfigError, match=word):
        api.plan(scenarios=[TASK], strategies=[f"net2net:{bad}"], seeds="0")


def test_refuses_other_backbones():
    with pytest.raises(ConfigError, match="mlp backbone"):
        api.plan(scenarios=["split-digits:setting=task,backbone=convnet"],
                 strategies=["net2net"], seeds="0")
