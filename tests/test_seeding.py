"""The seed streams: one table of ids, unique, and numbered as every stored result was made."""

import torch

from clbench.seeding import Stream, derive_seed, generator

# The ids enter every derived seed, so every stored result depends on them: a change here is a
# change of every result, never a refactor.
PINNED = {
    "INIT": 0, "SHUFFLE": 1, "SCENARIO": 2, "EWC_FISHER": 10, "AVALANCHE_RESEED": 20,
    "MEMORY_KEYS": 30, "REPLAY_DRAW": 31, "GEN_INIT": 32, "REPLAY_NOISE": 33, "GEN_NOISE": 34,
    "GEN_SHUFFLE": 35, "PNN_INIT": 40, "NET2NET_GROW": 41, "VALIDATION": 50, "EVAL_SUBSET": 51,
    "NUMPY_GLOBAL": 99,
}


def test_stream_ids_are_unique_and_unchanged():
    # __members__ lists aliases too: a duplicated value would show up as a second name
    table = {name: member.value for name, member in Stream.__members__.items()}
    assert table == PINNED
    assert len(set(table.values())) == len(table)


def test_a_stream_name_derives_the_seed_of_its_number():
    for stream in Stream:
        assert derive_seed(7, stream) == derive_seed(7, int(stream))
        assert derive_seed(7, stream, 3) == derive_seed(7, int(stream), 3)
    a = torch.rand(4, generator=generator(7, Stream.SHUFFLE))
    assert torch.equal(a, torch.rand(4, generator=generator(7, 1)))


def test_derived_seeds_are_stable():
    # the derivation is part of every result too (numpy SeedSequence, 63 bits): pinned values
    assert derive_seed(0, Stream.SHUFFLE) == 8514611595815388268
    assert derive_seed(3, Stream.PNN_INIT, 2) == 1902957399791581128
    seeds = {derive_seed(s, k) for s in range(3) for k in Stream}
    assert len(seeds) == 3 * len(Stream)  # distinct streams never share a seed
