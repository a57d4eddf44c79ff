"""Seeds: one run seed, independent random streams derived from it.

Every use of randomness draws from its own stream, ``derive_seed(seed, stream, *more_keys)``,
so adding one never shifts another. :class:`Stream` is the one table of stream ids.
"""

from __future__ import annotations

import enum
import random

import numpy as np
import torch


@enum.unique
class Stream(enum.IntEnum):
    """The stream ids, with who draws from each. The numbers enter every derived seed, hence
    every stored result: never renumber one, only add new ids (tests/test_seeding.py pins them).
    """

    INIT = 0  # clbench.models.init_members: each member's backbone initialisation
    SHUFFLE = 1  # SupervisedStrategy: each epoch's minibatch order (avalanche order="native" too)
    SCENARIO = 2  # scenarios: random class orders (split), pixel permutations (permuted, + task)
    EWC_FISHER = 10  # ewc: the Fisher estimate's sample positions and sampled labels
    AVALANCHE_RESEED = 20  # avalanche adapter: global random/NumPy/torch RNGs per experience
    MEMORY_KEYS = 30  # replay: reservoir keys of the samples seen
    REPLAY_DRAW = 31  # replay: positions of each step's memory minibatch
    GEN_INIT = 32  # generative-replay: the VAE's initialisation
    REPLAY_NOISE = 33  # generative-replay: latent codes and task ids of the solver's replay
    GEN_NOISE = 34  # generative-replay: the VAE's replayed codes and reparameterisation noise
    GEN_SHUFFLE = 35  # generative-replay: the VAE's minibatch order
    PNN_INIT = 40  # pnn: column k's initialisation (+ k)
    NET2NET_GROW = 41  # net2net: widening maps (+ nothing) and symmetry-breaking noise (+ 1)
    VALIDATION = 50  # runner: which training samples of each task the validation split holds
    EVAL_SUBSET = 51  # continual evaluation: which evaluation samples of each task it scores
    NUMPY_GLOBAL = 99  # seed_everything: NumPy's global RNG


def derive_seed(seed: int, *keys: int) -> int:
    """A 63-bit seed for the stream ``keys`` of run seed ``seed`` (stable across processes)."""
    state = np.random.SeedSequence([seed, *keys]).generate_state(2, dtype=np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1])) & ((1 << 63) - 1)


def generator(seed: int, *keys: int) -> torch.Generator:
    """A CPU torch generator for one stream of one member."""
    return torch.Generator().manual_seed(derive_seed(seed, *keys))


def seed_everything(seed: int) -> None:
    """Global RNGs, for code that does not take a generator (e.g. a user's strategy)."""
    random.seed(seed)
    np.random.seed(derive_seed(seed, Stream.NUMPY_GLOBAL) % (2**32))
    torch.manual_seed(seed)
