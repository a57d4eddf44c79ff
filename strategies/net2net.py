"""Net2Net growth between tasks (Chen, Goodfellow & Shlens 2016): function-preserving widening
(Net2WiderNet) and deepening (Net2DeeperNet) of the mlp backbone before each new task.

Randomness: member ``s`` draws its widening maps ``g`` from
``clbench.seeding.generator(seed_s, Stream.NET2NET_GROW)`` and its symmetry-breaking noise from
``generator(seed_s, Stream.NET2NET_GROW, 1)``, in a fixed order
(per growth step, per hidden layer), so a member grows the same way whichever seeds share its
group, and its maps do not depend on ``noise_std``.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from clbench.experience import Experience
from clbench.models import MLP, MemberLinear
from clbench.registry import STRATEGIES
from clbench.seeding import Stream, generator
from clbench.strategies.base import SGD_DEFAULTS, SupervisedParams, SupervisedStrategy


def _linear_like(members: int, weight: torch.Tensor, bias: torch.Tensor) -> MemberLinear:
    layer = MemberLinear(members, weight.shape[2], weight.shape[1])
    layer.weight = nn.Parameter(weight.contiguous())
    layer.bias = nn.Parameter(bias.contiguous())
    return layer.to(weight.device)


@torch.no_grad()
def wider(layer: MemberLinear, nxt: MemberLinear, extra: int, gens: list[torch.Generator],
          noise_std: float = 0.0, noise_gens: list[torch.Generator] | None = None,
          ) -> tuple[MemberLinear, MemberLinear, torch.Tensor]:
    """Net2WiderNet (Chen et al. 2016, Sec. 2.1) on the member axis: ``layer`` (``n`` units)
    gains ``extra`` units; returns the new ``layer``, the new ``nxt`` (the layer reading it) and
    the maps ``g`` ``[S, extra]``.

    ``g(j) = j`` for the ``n`` old units and, for each new unit ``j``, a unit drawn uniformly
    from ``0..n-1`` (member ``s`` with ``gens[s]``). ``U'[:, j] = W[g(j), :]`` (incoming weights
    and bias copied), ``V'[:, j] = V[:, g(j)] / |{j' : g(j') = g(j)}|`` (outgoing weights split
    over the copies), so ``nxt'(relu(layer'(x))) = nxt(relu(layer(x)))``. With ``noise_std > 0``
    the new units' incoming weights get ``N(0, (noise_std * std(W_s))^2)`` noise (``std(W_s)`` the
    standard deviation of member ``s``'s weight matrix; drawn with ``noise_gens[s]``, default
    ``gens[s]``), which breaks the copies' symmetry.
    """
    S, n = layer.members, layer.out_features
    device = layer.weight.device
    maps, noises = [], []
    for s, gen in enumerate(gens):
        maps.append(torch.randint(0, n, (extra,), generator=gen))
        if noise_std > 0:
            noise_gen = gen if noise_gens is None else noise_gens[s]
            noises.append(torch.randn(extra, layer.in_features, generator=noise_gen))
    g = torch.stack(maps).to(device)  # [S, extra]
    index = torch.cat([torch.arange(n, device=device).expand(S, n), g], 1)  # [S, n + extra]
    counts = torch.ones(S, n, device=device).scatter_add_(
        1, g, torch.ones(S, extra, device=device))
    w_in = layer.weight.gather(1, index[:, :, None].expand(-1, -1, layer.in_features))
    b_in = layer.bias.gather(1, index)
    if noise_std > 0:
        scale = noise_std * layer.weight.flatten(1).std(1)  # [S]
        w_in[:, n:] += torch.stack(noises).to(device) * scale[:, None, None]
    w_out = nxt.weight.gather(2, index[:, None, :].expand(-1, nxt.out_features, -1))
    w_out = w_out / counts.gather(1, index)[:, None, :]
    return (_linear_like(S, w_in, b_in), _linear_like(S, w_out, nxt.bias.detach().clone()), g)


@torch.no_grad()
def identity_layer(members: int, width: int, device: torch.device) -> MemberLinear:
    """Net2DeeperNet (Chen et al. 2016, Sec. 2.2): a layer initialised to the identity with zero
    bias; placed after a ReLU, ``relu(I h + 0) = h`` since ``h >= 0``."""
    eye = torch.eye(width, device=device).expand(members, width, width)
    return _linear_like(members, eye.clone(), torch.zeros(members, width, device=device))


@dataclasses.dataclass(frozen=True)
class Net2NetParams(SupervisedParams):
    # Units added to every hidden layer before each task from the 2nd on, as a fraction of the
    # layer's base width (the backbone's 400; a deepened layer inherits the base of the layer
    # below it): +round(growth * base) units per task, i.e. linear growth. 0.5 is our choice
    # (Chen et al. 2016 widen a narrow Inception by 1/sqrt(0.3) ~ 1.83x once, Sec. 4.2).
    growth: float = 0.5
    # A fixed number of units added per hidden layer per task; overrides ``growth`` when set.
    growth_units: int | None = None
    # Symmetry-breaking noise on the new units' incoming weights, relative to the std of the
    # layer's weights (Chen et al. 2016 add "a small amount of noise" to break symmetry; they
    # give no value; 0.01 is our choice). 0: exactly function preserving.
    noise_std: float = 0.01
    # Net2DeeperNet: also insert an identity-initialised hidden layer on top of the hidden
    # layers before each task from the 2nd on.
    deepen: bool = False
    # Width of the backbone's two hidden layers at the start (None: the mlp backbone's 400).
    initial_width: int | None = None

    def validate(self) -> None:
        super().validate()
        if not self.growth >= 0:
            raise ValueError(f"growth must be a fraction >= 0, got {self.growth}")
        if self.growth_units is not None and self.growth_units < 0:
            raise ValueError(f"growth_units must be >= 0, got {self.growth_units}")
        if not self.noise_std >= 0:
            raise ValueError(f"noise_std must be >= 0, got {self.noise_std}")
        if self.initial_width is not None and self.initial_width < 1:
            raise ValueError(f"initial_width must be >= 1, got {self.initial_width}")


@STRATEGIES.register("net2net")
class Net2Net(SupervisedStrategy):
    """Net2Net growth (Chen, Goodfellow & Shlens 2016, "Net2Net: Accelerating Learning via
    Knowledge Transfer") as a continual learner.

    Before every task from the 2nd on, each hidden layer ``l`` of the mlp gains
    ``m_l = growth_units`` or ``round(growth * base_l)`` units by Net2WiderNet (random map
    ``g``, incoming weights copied, outgoing weights divided by the copy count; optional noise on
    the new units), and with ``deepen`` an identity-initialised ReLU layer is inserted on top
    (Net2DeeperNet). Both preserve the network's function (exactly with ``noise_std = 0``). The
    grown network then trains on the new task with a fresh optimiser, as fine-tuning does.
    With equal backbone widths ``w0`` every hidden layer has ``w0 + (t - 1) m`` units after
    task ``t`` and there are ``L0 + (t - 1)`` hidden layers with ``deepen``.
    """

    version = "2"  # 2: class-IL trains the seen classes' outputs by default (active_outputs)
    description = "Net2WiderNet/Net2DeeperNet growth of the mlp before each new task"
    Params = Net2NetParams
    defaults = SGD_DEFAULTS

    backbones = ("mlp",)  # it grows fully connected layers

    def setup(self, info, model_factory, seeds, device) -> None:
        reason = self.unsupported(info)
        if reason:
            raise ValueError(reason)
        w = self.params.initial_width
        kwargs = {} if w is None else {"hidden": (w, w)}  # the mlp backbone's two layers
        super().setup(info, model_factory, seeds, device)
        if kwargs:
            self.net = model_factory(seeds, **kwargs)
        if not isinstance(self.net, MLP):
            raise ValueError("net2net needs the mlp backbone")
        self.growers = [generator(seed, Stream.NET2NET_GROW) for seed in seeds]
        self.noisers = [generator(seed, Stream.NET2NET_GROW, 1) for seed in seeds]
        self.bases = [layer.out_features for layer in self.net.hidden]
        self.maps: list[list[torch.Tensor]] = []  # per growth step, per hidden layer: [S, m]
        self.tasks_seen = 0

    def units_to_add(self, layer: int) -> int:
        p = self.params
        if p.growth_units is not None:
            return p.growth_units
        return int(round(p.growth * self.bases[layer]))

    @torch.no_grad()
    def grow(self) -> None:
        """Widen every hidden layer, then (``deepen``) add an identity layer on top."""
        net, S = self.net, len(self.seeds)
        step = []
        for i in range(len(net.hidden)):
            extra = self.units_to_add(i)
            if extra == 0:
                continue
            last = i == len(net.hidden) - 1
            nxt = net.head if last else net.hidden[i + 1]
            layer, nxt, g = wider(net.hidden[i], nxt, extra, self.growers, self.params.noise_std,
                                  self.noisers)
            net.hidden[i] = layer
            if last:
                net.head = nxt
            else:
                net.hidden[i + 1] = nxt
            step.append(g)
        if self.params.deepen:
            net.hidden.append(identity_layer(S, net.head.in_features, self.device))
            self.bases.append(self.bases[-1])
        self.maps.append(step)

    def train(self, experience: Experience) -> None:
        if self.tasks_seen > 0:
            self.grow()
        self.tasks_seen += 1
        self.fit(experience.train)  # a fresh optimiser over the grown parameter set
