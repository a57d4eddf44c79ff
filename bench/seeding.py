"""Seeds: one run seed, independent random streams derived from it."""

from __future__ import annotations

import random

import numpy as np
import torch

# Stream ids: each use of randomness draws from its own stream, so adding one never shifts another.
INIT, SHUFFLE, SCENARIO = 0, 1, 2


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
    np.random.seed(derive_seed(seed, 99) % (2**32))
    torch.manual_seed(seed)
