"""Progressive neural networks (Rusu et al. 2016): one frozen column per task, with lateral
connections from every earlier column.

Randomness: column ``k`` of member ``s`` is initialised from
``clbench.seeding.generator(seed_s, Stream.PNN_INIT, k)``, so a member's
columns do not depend on which other seeds share its group nor on how many columns exist.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from clbench.experience import Experience
from clbench.models import MemberLinear
from clbench.registry import STRATEGIES
from clbench.seeding import Stream, generator
from clbench.strategies.base import SGD_DEFAULTS, SGDParams, SupervisedStrategy


class BiasFreeMemberLinear(MemberLinear):
    """S independent bias-free linear maps ``[S, B, in] -> [S, B, out]`` (the lateral ``U``)."""

    def __init__(self, members: int, in_features: int, out_features: int):
        super().__init__(members, in_features, out_features)
        self.bias = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.bmm(x, self.weight.transpose(1, 2))


@torch.no_grad()
def _init_linear(layer: MemberLinear, gens: list[torch.Generator]) -> None:
    """PyTorch's default ``nn.Linear`` initialisation, member ``s`` from ``gens[s]``."""
    for s, gen in enumerate(gens):
        nn.init.kaiming_uniform_(layer.weight[s], a=math.sqrt(5), generator=gen)
        if layer.bias is not None:
            bound = 1 / math.sqrt(layer.in_features)
            nn.init.uniform_(layer.bias[s], -bound, bound, generator=gen)


class LateralAdapter(nn.Module):
    """Lateral connection into layer ``i`` of column ``k`` from the layer ``i - 1`` activations of
    columns ``0..k-1`` (each ``[S, B, width]``).

    ``linear`` (Rusu et al. 2016, eq. 1): ``sum_j U^(k:j) h^(j)``, one bias-free matrix per
    earlier column (held as one matrix over their concatenation).
    ``mlp`` (the non-linear adapter of Sec. 2, eq. 2): ``U sigma(V [alpha_j h^(j)]_j + c)``, with
    one learned scalar ``alpha_j`` per earlier column, ``V`` projecting the concatenation onto
    ``width`` units (with bias ``c``) and a bias-free ``U`` (the target layer has its own bias).
    """

    def __init__(self, members: int, n_prev: int, width: int, out_features: int,
                 kind: str, gens: list[torch.Generator], alpha_init: float):
        super().__init__()
        self.kind = kind
        if kind == "mlp":
            self.alpha = nn.Parameter(torch.empty(members, n_prev))
            self.V = MemberLinear(members, n_prev * width, width)
            self.U = BiasFreeMemberLinear(members, width, out_features)
            with torch.no_grad():
                for s, gen in enumerate(gens):
                    # "initialised by a random small value" (Sec. 2): alpha ~ U(0, alpha_init)
                    self.alpha[s].uniform_(0.0, alpha_init, generator=gen)
            _init_linear(self.V, gens)
        else:
            self.U = BiasFreeMemberLinear(members, n_prev * width, out_features)
        _init_linear(self.U, gens)

    def forward(self, prev: list[torch.Tensor]) -> torch.Tensor:
        if self.kind == "mlp":
            h = torch.cat([p * self.alpha[:, j, None, None] for j, p in enumerate(prev)], -1)
            return self.U(F.relu(self.V(h)))
        return self.U(torch.cat(prev, -1))


class Column(nn.Module):
    """One PNN column: ``depth`` ReLU layers of ``width`` units and an output layer, plus (for
    column ``k >= 1``) a lateral adapter into every layer after the first."""

    def __init__(self, members: int, index: int, in_features: int, width: int, depth: int,
                 n_outputs: int, adapter: str, gens: list[torch.Generator], alpha_init: float):
        super().__init__()
        self.index = index
        self.frozen = False
        sizes = [in_features, *([width] * depth), n_outputs]
        self.layers = nn.ModuleList(
            MemberLinear(members, a, b) for a, b in zip(sizes[:-1], sizes[1:])
        )
        for layer in self.layers:
            _init_linear(layer, gens)
        self.laterals = nn.ModuleList(
            LateralAdapter(members, index, width, sizes[i + 1], adapter, gens, alpha_init)
            for i in range(1, depth + 1)
        ) if index > 0 and adapter != "none" else nn.ModuleList()

    def forward(self, x: torch.Tensor, prev: list[list[torch.Tensor]]):
        """``x`` ``[S, B, in]``; ``prev[j]`` the hidden activations of column ``j < index``.
        Returns (this column's hidden activations, its logits)."""
        h, acts = x, []
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            z = layer(h)
            if i > 0 and len(self.laterals):
                z = z + self.laterals[i - 1]([prev[j][i - 1] for j in range(self.index)])
            if i < last:
                h = F.relu(z)
                acts.append(h)
            else:
                return acts, z
        raise AssertionError("unreachable")

    def freeze(self) -> None:
        self.frozen = True
        for p in self.parameters():
            p.requires_grad_(False)
            p.grad = None


class ProgressiveNet(nn.Module):
    """All columns of S members; ``forward(x, task_ids)`` gives each sample its task's column.

    Column ``c`` only reads columns ``<= c``, always with the same shapes and operations, so its
    outputs never change once it is frozen, however many columns follow."""

    def __init__(self, members: int, in_features: int, n_outputs: int, width: int, depth: int,
                 adapter: str, alpha_init: float):
        super().__init__()
        self.members, self.in_features, self.n_outputs = members, in_features, n_outputs
        self.width, self.depth, self.adapter, self.alpha_init = width, depth, adapter, alpha_init
        self.columns = nn.ModuleList()
        self.clbench_members = members

    def add_column(self, seeds: list[int], device: torch.device) -> Column:
        k = len(self.columns)
        for column in self.columns:
            column.freeze()
        gens = [generator(seed, Stream.PNN_INIT, k) for seed in seeds]
        column = Column(self.members, k, self.in_features, self.width, self.depth,
                        self.n_outputs, self.adapter, gens, self.alpha_init)
        self.columns.append(column.to(device))
        return column

    def forward(self, x: torch.Tensor, task_ids: torch.Tensor | None = None,
                n_columns: int | None = None) -> torch.Tensor:
        """Logits ``[S, B, n_outputs]`` of column ``min(task_id, K - 1)`` for each sample, with
        ``K = n_columns`` (default: all columns); the last column when ``task_ids`` is None."""
        k_cols = len(self.columns) if n_columns is None else n_columns
        h = x.flatten(2)
        acts: list[list[torch.Tensor]] = []
        outs = []
        for column in self.columns[:k_cols]:
            ctx = torch.no_grad() if column.frozen else contextlib.nullcontext()
            with ctx:
                a, out = column(h, acts)
            acts.append(a)
            outs.append(out)
        if task_ids is None or k_cols == 1:
            return outs[-1]
        stacked = torch.stack(outs)  # [K, S, B, O]
        index = task_ids.clamp(max=k_cols - 1)[None, :, :, None].expand(1, *outs[0].shape)
        return stacked.gather(0, index)[0]  # a selection: bit-identical to the column's output


@dataclasses.dataclass(frozen=True)
class PNNParams(SGDParams):
    # Units per hidden layer of each column. 100 is the default of Avalanche's PNN
    # (avalanche.models.PNN, hidden_features_per_column=100); the paper's Atari columns are
    # convolutional and give no MLP width. Smaller than the 400-unit backbone so that T columns
    # stay affordable (the parameter cost formula in docs/strategies/expansion.md).
    column_width: int = 100
    # Hidden layers per column: the depth of the scenario's mlp backbone (2 x 400).
    depth: int = 2
    # "mlp": the paper's non-linear adapter (Sec. 2, eq. 2; also Avalanche's default);
    # "linear": the plain lateral connections of eq. 1; "none": no laterals, each column an
    # independent network trained from scratch (the paper's "baseline 1", Sec. 5, against which
    # it measures transfer).
    adapter: Literal["mlp", "linear", "none"] = "mlp"
    # Upper end of the uniform initialisation of the adapters' scalars alpha. The paper says
    # only "initialized by a random small value"; 0.1 is our choice.
    alpha_init: float = 0.1

    def validate(self) -> None:
        super().validate()
        if self.column_width < 1:
            raise ValueError(f"column_width must be >= 1, got {self.column_width}")
        if self.depth < 1:
            raise ValueError(f"depth must be >= 1 hidden layer, got {self.depth}")
        if not self.alpha_init >= 0:
            raise ValueError(f"alpha_init must be >= 0, got {self.alpha_init}")


def column_parameter_count(k: int, in_features: int, width: int, depth: int, n_outputs: int,
                           adapter: str) -> int:
    """Parameters of column ``k`` (0-based) of one member, adapters included:

    own layers  ``d w + w + (L - 1)(w^2 + w) + w o + o``;
    adapters (k >= 1), into the ``L - 1`` hidden layers after the first and the output layer:
    ``mlp``: ``L (k + k w^2 + w) + w ((L - 1) w + o)``; ``linear``: ``k w ((L - 1) w + o)``;
    ``none``: no adapters.
    """
    d, w, L, o = in_features, width, depth, n_outputs
    own = d * w + w + (L - 1) * (w * w + w) + w * o + o
    if k == 0 or adapter == "none":
        return own
    if adapter == "mlp":
        return own + L * (k + k * w * w + w) + w * ((L - 1) * w + o)
    return own + k * w * ((L - 1) * w + o)


@STRATEGIES.register("pnn")
class PNN(SupervisedStrategy):
    """Progressive neural networks (Rusu et al. 2016, "Progressive Neural Networks").

    One column per task. Column ``k`` has its own layers and, at every layer ``i >= 2`` (the
    output layer included), lateral connections from the layer ``i - 1`` activations of all
    earlier columns: ``h_i^(k) = relu(W_i^(k) h_{i-1}^(k) + b_i^(k) + A_i^(k)(h_{i-1}^(<k)))``
    with ``A`` the non-linear adapter of the paper's Sec. 2 (eq. 2,
    ``U sigma(V alpha h^(<k))``; default) or the linear laterals of eq. 1
    (``sum_j U^(k:j) h^(j)``). When task ``k`` arrives the earlier columns (adapters included)
    are frozen and a new column is trained alone, with a fresh optimiser; a sample of task
    ``t`` is predicted by column ``t`` (tasks not yet seen: the latest column). Earlier tasks
    are therefore not forgotten at all. Task-incremental setting, mlp backbone only.
    """

    version = "1"
    description = "progressive neural networks: a new laterally connected column per task"
    Params = PNNParams
    defaults = SGD_DEFAULTS
    settings = ("task",)

    backbones = ("mlp",)  # it grows fully connected layers

    def setup(self, info, model_factory, seeds, device) -> None:
        reason = self.unsupported(info)
        if reason:
            raise ValueError(reason)
        self.info = info
        self.seeds = list(seeds)
        self.device = device
        self.class_mask = info.class_mask(device)
        self.shufflers = [generator(seed, Stream.SHUFFLE) for seed in seeds]
        p = self.params
        self.net = ProgressiveNet(len(seeds), math.prod(info.input_shape), info.n_outputs,
                                  p.column_width, p.depth, p.adapter, p.alpha_init)
        self.net.add_column(self.seeds, device)  # column 0 exists before the first task

    def logits(self, x, task_ids):
        out = self.net(x, task_ids, n_columns=self.active + 1)
        return out.masked_fill(~self.class_mask[task_ids], float("-inf"))

    def train(self, experience: Experience) -> None:
        t, n = experience.task.index, len(self.net.columns)
        if t == n:
            self.net.add_column(self.seeds, self.device)  # freezes columns 0..t-1
        elif t != n - 1:
            raise RuntimeError(f"pnn learns tasks once each, in order: got task {t} "
                               f"with {n} column(s) built")
        self.active = t
        self.fit(experience.train)  # trainable_parameters(): the newest column only

    @torch.no_grad()
    def predict(self, x, task_ids):
        self.net.eval()
        return self.net(x, task_ids)
