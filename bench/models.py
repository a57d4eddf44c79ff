"""Backbones with a leading member axis: one module holds S independent networks.

Every backbone takes inputs ``[S, B, C, H, W]`` and returns logits ``[S, B, n_outputs]``; member
``s`` sees only its own slice. Fully connected layers hold weights ``[S, out, in]`` (batched
matmul); convolutional layers keep activations channel-stacked, ``[B, S*C, H, W]``, and use
grouped convolutions and ``S*C``-channel batch norm, which are exactly S independent networks.

Invariant used by the harness and the tests: every parameter and buffer reshapes to ``(S, -1)``
with row ``s`` holding member ``s``'s values. Member ``s`` is initialised from its own seed with
PyTorch's default initialisation, so it is the same network whatever S is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from clbench.registry import BACKBONES
from clbench.seeding import Stream, generator


class MemberLinear(nn.Module):
    """S independent ``nn.Linear`` layers: ``[S, B, in] -> [S, B, out]``."""

    def __init__(self, members: int, in_features: int, out_features: int):
        super().__init__()
        self.members, self.in_features, self.out_features = members, in_features, out_features
        self.weight = nn.Parameter(torch.empty(members, out_features, in_features))
        self.bias = nn.Parameter(torch.empty(members, out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias.unsqueeze(1), x, self.weight.transpose(1, 2))


def stack_channels(x: torch.Tensor) -> torch.Tensor:
    """``[S, B, C, H, W] -> [B, S*C, H, W]`` (member-major channels)."""
    s, b, c, h, w = x.shape
    return x.transpose(0, 1).reshape(b, s * c, h, w)


def unstack_features(x: torch.Tensor, members: int) -> torch.Tensor:
    """``[B, S*F] -> [S, B, F]``."""
    return x.reshape(x.shape[0], members, -1).transpose(0, 1)


@BACKBONES.register("mlp")
class MLP(nn.Module):
    """Fully connected ReLU network (default 2 x 400, the usual MNIST backbone)."""

    version: ClassVar[str] = "1"
    description: ClassVar[str] = "fully connected ReLU network, 2 x 400 hidden units"

    def __init__(self, members: int, input_shape: Sequence[int], n_outputs: int,
                 hidden: Sequence[int] = (400, 400)):
        super().__init__()
        sizes = [math.prod(input_shape), *hidden]
        self.hidden = nn.ModuleList(
            MemberLinear(members, a, b) for a, b in zip(sizes[:-1], sizes[1:])
        )
        self.head = MemberLinear(members, sizes[-1], n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.flatten(2)
        for layer in self.hidden:
            h = F.relu(layer(h))
        return self.head(h)


# The MLPs of continual-learning-baselines (CLB, Avalanche's reproducibility suite), whose
# widths differ from the usual 2 x 400: the accuracy tier runs CLB's configurations on CLB's
# networks (bench/reference.toml), so that a missed figure is never the network's doing.
@BACKBONES.register("mlp-1x256")
class MLP1x256(MLP):
    """One hidden layer of 256 units (CLB's SimpleMLP: split MNIST LwF)."""

    version: ClassVar[str] = "1"
    description: ClassVar[str] = "fully connected ReLU network, 1 x 256 hidden units (CLB)"

    def __init__(self, members: int, input_shape: Sequence[int], n_outputs: int):
        super().__init__(members, input_shape, n_outputs, hidden=(256,))


@BACKBONES.register("mlp-2x256")
class MLP2x256(MLP):
    """Two hidden layers of 256 units (CLB: split MNIST SI, permuted MNIST A-GEM)."""

    version: ClassVar[str] = "1"
    description: ClassVar[str] = "fully connected ReLU network, 2 x 256 hidden units (CLB)"

    def __init__(self, members: int, input_shape: Sequence[int], n_outputs: int):
        super().__init__(members, input_shape, n_outputs, hidden=(256, 256))


@BACKBONES.register("mlp-2x100")
class MLP2x100(MLP):
    """Two hidden layers of 100 units (CLB: permuted MNIST GEM)."""

    version: ClassVar[str] = "1"
    description: ClassVar[str] = "fully connected ReLU network, 2 x 100 hidden units (CLB)"

    def __init__(self, members: int, input_shape: Sequence[int], n_outputs: int):
        super().__init__(members, input_shape, n_outputs, hidden=(100, 100))


@BACKBONES.register("mlp-2x1000")
class MLP2x1000(MLP):
    """Two hidden layers of 1000 units (CLB: permuted MNIST EWC)."""

    version: ClassVar[str] = "1"
    description: ClassVar[str] = "fully connected ReLU network, 2 x 1000 hidden units (CLB)"

    def __init__(self, members: int, input_shape: Sequence[int], n_outputs: int):
        super().__init__(members, input_shape, n_outputs, hidden=(1000, 1000))


def _conv3x3(members: int, cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(members * cin, members * cout, 3, stride, 1, bias=False, groups=members)


class _BasicBlock(nn.Module):
    def __init__(self, members: int, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = _conv3x3(members, cin, cout, stride)
        self.bn1 = nn.BatchNorm2d(members * cout)
        self.conv2 = _conv3x3(members, cout, cout)
        self.bn2 = nn.BatchNorm2d(members * cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(members * cin, members * cout, 1, stride, bias=False, groups=members),
                nn.BatchNorm2d(members * cout),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


@BACKBONES.register("resnet18-reduced")
class ReducedResNet18(nn.Module):
    """ResNet-18 with ``nf`` = 20 base filters: the CIFAR backbone of GEM (Lopez-Paz & Ranzato
    2017) and A-GEM (Chaudhry et al. 2019), following their released ``ResNet18(nclasses, nf=20)``.
    """

    version: ClassVar[str] = "1"
    description: ClassVar[str] = "ResNet-18 with 20 base filters (GEM / A-GEM's CIFAR network)"

    def __init__(self, members: int, input_shape: Sequence[int], n_outputs: int, nf: int = 20):
        super().__init__()
        self.members = members
        cin = input_shape[0]
        self.conv1 = _conv3x3(members, cin, nf)
        self.bn1 = nn.BatchNorm2d(members * nf)
        blocks, c = [], nf
        for width, stride in ((nf, 1), (2 * nf, 2), (4 * nf, 2), (8 * nf, 2)):
            for i in range(2):
                blocks.append(_BasicBlock(members, c, width, stride if i == 0 else 1))
                c = width
        self.blocks = nn.Sequential(*blocks)
        self.head = MemberLinear(members, c, n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(stack_channels(x))))
        out = self.blocks(out)
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)  # = avg_pool2d(4) on 32x32 inputs
        return self.head(unstack_features(out, self.members))


@BACKBONES.register("convnet")
class ConvNet(nn.Module):
    """A small conv net (2 x conv-ReLU-maxpool, 32/64 filters, FC 256): cheap CIFAR baseline."""

    version: ClassVar[str] = "1"
    description: ClassVar[str] = "2 x conv-ReLU-maxpool (32/64 filters) and FC 256: cheap CIFAR"

    def __init__(self, members: int, input_shape: Sequence[int], n_outputs: int):
        super().__init__()
        self.members = members
        cin, h, w = input_shape
        self.conv1 = nn.Conv2d(members * cin, members * 32, 3, padding=1, groups=members)
        self.conv2 = nn.Conv2d(members * 32, members * 64, 3, padding=1, groups=members)
        self.fc = MemberLinear(members, 64 * (h // 4) * (w // 4), 256)
        self.head = MemberLinear(members, 256, n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.max_pool2d(F.relu(self.conv1(stack_channels(x))), 2)
        out = F.max_pool2d(F.relu(self.conv2(out)), 2)
        out = unstack_features(out.flatten(1), self.members)
        return self.head(F.relu(self.fc(out)))


@torch.no_grad()
def init_members(model: nn.Module, seeds: Sequence[int]) -> None:
    """PyTorch's default initialisation, member ``s`` drawn from its own seed's stream."""
    gens = [generator(seed, Stream.INIT) for seed in seeds]
    members = len(seeds)
    for module in model.modules():
        if isinstance(module, (MemberLinear, nn.Conv2d)):
            weight = module.weight.view(members, -1, *module.weight.shape[1:])
            if isinstance(module, MemberLinear):
                weight = module.weight.unsqueeze(1)  # [S, 1, out, in]
            bias = None if module.bias is None else module.bias.view(members, -1)
            for s, gen in enumerate(gens):
                w = weight[s] if not isinstance(module, MemberLinear) else weight[s, 0]
                nn.init.kaiming_uniform_(w, a=math.sqrt(5), generator=gen)
                if bias is not None:
                    fan_in = w[0].numel()
                    bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
                    nn.init.uniform_(bias[s], -bound, bound, generator=gen)
        elif isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.reset_parameters()


def member_count(model: nn.Module) -> int:
    """S of a model built by :class:`ModelFactory` (1 for a plain module)."""
    return int(getattr(model, "clbench_members", 1))


def parameter_count(model: nn.Module) -> int:
    """Parameters of one member (all of them, frozen ones included)."""
    return sum(p.numel() for p in model.parameters()) // member_count(model)


def member_state(model: nn.Module, member: int) -> dict[str, torch.Tensor]:
    """Flat parameters and float buffers of one member (see the module invariant)."""
    s = member_count(model)
    out = {}
    for name, t in [*model.named_parameters(), *model.named_buffers()]:
        if t.is_floating_point():
            out[name] = t.detach().reshape(s, -1)[member]
    return out


class SingleMember(nn.Module):
    """A one-member model with the plain interface ``[B, ...] -> [B, n_outputs]``, for code
    written without a member axis (a user's strategy, an Avalanche template)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.unsqueeze(0)).squeeze(0)


@dataclass(frozen=True)
class ModelFactory:
    """Builds the scenario's backbone for a group of seeds, on the run's device."""

    backbone: str
    input_shape: tuple[int, ...]
    n_outputs: int
    device: torch.device

    def __post_init__(self) -> None:
        BACKBONES.get(self.backbone)  # an unknown name is a ConfigError naming the known ones

    def __call__(self, seeds: Sequence[int], **kwargs) -> nn.Module:
        """One model holding ``len(seeds)`` members, member ``s`` initialised from ``seeds[s]``."""
        backbone = BACKBONES.get(self.backbone)
        model = backbone(len(seeds), self.input_shape, self.n_outputs, **kwargs)
        init_members(model, seeds)
        model.clbench_members = len(seeds)
        return model.to(self.device)

    def single(self, seed: int, **kwargs) -> nn.Module:
        """The same network as member ``seed`` of a group, as a plain ``[B, ...]`` module."""
        model = SingleMember(self([seed], **kwargs))
        model.clbench_members = 1
        return model
