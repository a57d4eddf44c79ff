"""Seeds as a batch dimension: member s of a batched group is the run with seed s."""

import pytest
import torch
from strategy_setup import CPU, set_up, train

from clbench.models import ModelFactory, member_state, parameter_count
from clbench.spec import make_scenario


@pytest.mark.parametrize("backbone", ["mlp", "convnet", "resnet18-reduced"])
def test_member_init_and_outputs_match_single_models(backbone):
    factory = ModelFactory(backbone, (3, 8, 8), 10, CPU)
    group = factory([11, 22, 33])
    x = torch.randn(3, 5, 3, 8, 8)
    group.eval()
    out = group(x)
    for s, seed in enumerate([11, 22, 33]):
        single = factory([seed]).eval()
        for name, value in member_state(single, 0).items():
            assert torch.equal(value, member_state(group, s)[name]), name
        torch.testing.assert_close(out[s], single(x[s:s + 1])[0], rtol=1e-5, atol=1e-5)
        plain = factory.single(seed).eval()
        torch.testing.assert_close(plain(x[s]), out[s], rtol=1e-5, atol=1e-5)
    # different seeds give different networks
    heads = [member_state(group, s)["head.weight"] for s in (0, 1)]
    assert not torch.equal(*heads)


def test_parameter_count_is_per_member():
    factory = ModelFactory("mlp", (1, 28, 28), 10, CPU)
    expected = 784 * 400 + 400 + 400 * 400 + 400 + 400 * 10 + 10
    assert parameter_count(factory([0])) == expected
    assert parameter_count(factory([0, 1, 2])) == expected


def _train_two_tasks(strategy_name, scenario, seeds, params="", tasks=2, dtype=torch.float32):
    strategy, data = set_up(strategy_name, scenario, seeds, params)
    if dtype != torch.float32:  # the same parameters (the optimiser keeps them), in ``dtype``
        strategy.model.to(dtype)
        strategy.model.register_forward_pre_hook(
            lambda _, args: tuple(a.to(dtype) if a.is_floating_point() else a for a in args))
    train(strategy, data, tasks)
    return strategy.model


# SGD: members agree to float rounding. Adam divides each gradient by its running RMS, which
# turns rounding noise in near-zero gradients into updates of up to lr per step: tolerance 1e-4.
# The ResNet runs in float64. In float32 a grouped convolution (S members) and a plain one take
# different CPU kernels, whose rounding batch norm amplifies: on an AVX-512 AMD EPYC (torch
# 2.14.1) conv1.weight differed by 5.4e-4 after 2 steps (6% of its update), on other CPUs by
# < 1e-5. In float64 both paths agree to 0.0 on that CPU, so the batched network is the same
# computation and the float32 gap is rounding, not a difference in what is computed.
@pytest.mark.parametrize(
    "strategy,scenario,params,seeds,tasks,atol,dtype",
    [
        ("naive", "split-digits:setting=class", "", [0, 5, 9], 2, 1e-6, torch.float32),
        # own permutations per member
        ("naive", "permuted-digits:n_tasks=2", "", [0, 5, 9], 2, 1e-6, torch.float32),
        ("joint", "permuted-digits:n_tasks=2", "", [0, 5, 9], 2, 1e-6, torch.float32),
        ("joint", "split-digits:setting=domain,backbone=convnet", ":optimizer=adam,lr=0.001",
         [0, 5], 2, 1e-4, torch.float32),
        # batch norm over member-stacked channels; 2 steps only: a ResNet is slow on a CPU
        ("naive", "split-digits:setting=task,backbone=resnet18-reduced", ":batch_size=100",
         [0, 5], 1, 1e-10, torch.float64),
    ],
)
def test_batched_members_match_unbatched_runs(strategy, scenario, params, seeds, tasks, atol,
                                              dtype):
    group = _train_two_tasks(strategy, scenario, seeds, params, tasks, dtype)
    for s, seed in enumerate(seeds):
        alone = _train_two_tasks(strategy, scenario, [seed], params, tasks, dtype)
        batched, single = member_state(group, s), member_state(alone, 0)
        for name in single:
            torch.testing.assert_close(batched[name], single[name], rtol=1e-5, atol=atol,
                                       msg=f"{name} of seed {seed}")
    # and training moved the parameters away from their initialisation
    init = ModelFactory("mlp", (1, 8, 8), 10, CPU)([0])
    if "backbone" not in scenario:
        assert not torch.allclose(member_state(group, 0)["head.weight"],
                                  member_state(init, 0)["head.weight"])


def test_permutations_differ_per_seed_and_task():
    sc = make_scenario("permuted-digits", {"n_tasks": 2})
    p00, p01, p10 = sc.permutation(0, 0), sc.permutation(0, 1), sc.permutation(1, 0)
    assert sorted(p00.tolist()) == list(range(64))
    assert (p00 != p01).any() and (p00 != p10).any()
    identity = make_scenario("permuted-digits", {"first_task_identity": True})
    assert identity.permutation(3, 0).tolist() == list(range(64))
    assert (identity.permutation(3, 1) == sc.permutation(3, 1)).all()
