"""Elastic Weight Consolidation (EWC) and online EWC: a quadratic penalty that anchors the
parameters that mattered for earlier tasks, weighted by their diagonal Fisher information.

Both are seed-batched: the Fisher, the anchors and the penalty carry the member axis ``S``
(every parameter-shaped tensor reshapes to ``(S, -1)``, row ``s`` = member ``s``), and the
Fisher's randomness (which training samples, which sampled labels) comes from each member's own
generator, stream ``Stream.EWC_FISHER``, so member ``s`` behaves the same whichever seeds share
its group.

The Fisher needs the sum over samples of squared per-sample gradients. When every trainable
parameter sits in a :class:`~clbench.models.MemberLinear` layer used once per forward pass (the
MLP backbones), that sum comes from two tensors per layer without materialising any per-sample
gradient: sample ``i``'s weight gradient is ``d_i a_i^T`` (``a_i`` the layer's input, ``d_i`` the
loss gradient at its output), so ``sum_i (d_i a_i^T)^2 = (d^2)^T a^2`` elementwise, one batched
matrix product, and the bias's is ``sum_i d_i^2``. Other networks (the conv backbones) use
``torch.func``: ``vmap(grad(loss))`` over the samples of a chunk, where one "sample" is a
``[S, 1, ...]`` slice holding one input per member. Either way the members are independent
networks, so the gradient of the *sum over members* of their losses holds, in member ``s``'s
slice, exactly member ``s``'s per-sample gradient.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from torch.func import functional_call, grad, vmap

from clbench.experience import Experience, TaskData
from clbench.models import MemberLinear
from clbench.registry import STRATEGIES
from clbench.seeding import Stream, generator
from clbench.strategies.base import SGD_DEFAULTS, SupervisedParams, SupervisedStrategy

# Per-sample gradients of one chunk hold chunk x (all members' parameters) floats: at most
# 2**22 floats (16 MiB, cache-friendly: fastest on a CPU) or 2**26 (256 MiB) on an accelerator.
_CHUNK_FLOATS = {"cpu": 2**22}
_CHUNK_FLOATS_DEFAULT = 2**26


@dataclasses.dataclass(frozen=True)
class EWCParams(SupervisedParams):
    # Strength lambda in  L = L_task + lambda/2 * sum_k sum_i F_k,i (th_i - th*_k,i)^2, with F
    # the *mean* over samples of squared per-sample gradients and L_task a minibatch mean
    # (lambda is not portable between papers). 300: the largest value stable in a sweep on
    # permuted digits (docs/strategies/ewc.md, "Choosing λ").
    ewc_lambda: float = 300.0
    # "true": labels sampled from the model's predictive distribution, y ~ softmax(logits)
    # (the Fisher of Kirkpatrick et al. 2017; "SAMPLE" in van de Ven 2025, "On the computation
    # of the Fisher Information in continual learning", ICLR blog post). "empirical": the
    # dataset's labels ("EMPIRICAL" there), the variant many implementations use.
    fisher: Literal["true", "empirical"] = "true"
    # Training samples of the task used to estimate F (capped at the task's size). van de Ven
    # 2025 finds a few hundred inputs (n = 500, exact over labels) nearly as good as the whole
    # set; with one sampled label per input we take about twice that.
    fisher_samples: int = 1024

    def validate(self) -> None:
        super().validate()
        if not self.ewc_lambda >= 0:  # also rejects NaN
            raise ValueError(f"ewc_lambda must be >= 0, got {self.ewc_lambda}")
        if self.fisher not in ("true", "empirical"):
            raise ValueError(f"fisher must be 'true' or 'empirical', got {self.fisher!r}")
        if self.fisher_samples < 1:
            raise ValueError(f"fisher_samples must be >= 1, got {self.fisher_samples}")


@dataclasses.dataclass(frozen=True)
class OnlineEWCParams(EWCParams):
    # Decay of the running Fisher, F* <- gamma * F* + F_new, and the weight gamma * F* of the
    # penalty (Schwarz et al. 2018, Sec. 2.1 and Eq. 4).
    # 1.0 (no decay) is the default of van de Ven & Tolias's reference code
    # (GMvandeVen/continual-learning, ContinualLearner.gamma = 1.) and the value they use for
    # permuted MNIST; gamma < 1 gradually forgets old tasks' importance.
    gamma: float = 1.0

    def validate(self) -> None:
        super().validate()
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {self.gamma}")


# Permuted MNIST (10 tasks): lambda 30, where 300 diverged or cost plasticity under SGD (chosen
# in version 1 on test accuracy: docs/strategies/ewc.md, "Choosing λ"); re-chosen on the
# validation split (docs/tuning.md): default budget ewc 10, online-ewc 30; paper budget (Adam)
# 30 for both, scored on all 10 tasks (searches ewc-permuted-mnist-paper: 0.8558, 10 0.8398,
# 100 0.7995; online-ewc-permuted-mnist-paper: 0.8640, 0.8450, 0.7434). The first-3-tasks
# searches had chosen 1000, which lost plasticity over the 10 tasks (docs/tuning.md).
_PERMUTED_MNIST = ("permuted-mnist", "*", {"ewc_lambda": 30.0})
EWC_DEFAULTS = SGD_DEFAULTS + (
    _PERMUTED_MNIST,
    # clbench tune: grid 1,10,30,100,300, validation 0.1, seeds 0,1,2, acc 0.8525
    ("permuted-mnist", "default", {"ewc_lambda": 10.0}),
    # search ewc-split-digits-default (bench/searches.toml, docs/tuning.md): validation ACC
    # over the three settings 0.6686 (10000 diverged in class- and domain-IL)
    ("split-digits", "default", {"ewc_lambda": 3000.0}),
    # search ewc-split-mnist-default: validation ACC over the settings 0.6141 (3000 diverged
    # in class-IL)
    ("split-mnist", "default", {"ewc_lambda": 1000.0}),
    # search ewc-split-mnist-paper (Hsu et al. 2018's protocol): 0.6047, 10000 0.6025
    ("split-mnist", "paper", {"ewc_lambda": 3000.0}),
)
ONLINE_EWC_DEFAULTS = SGD_DEFAULTS + (
    # clbench tune: grid 1,10,30,100,300 (300 diverged), validation 0.1, seeds 0,1,2, acc 0.9015
    _PERMUTED_MNIST,
    # search online-ewc-split-digits-default: validation ACC over the settings 0.6739 (10000
    # diverged in class- and domain-IL)
    ("split-digits", "default", {"ewc_lambda": 3000.0}),
    # search online-ewc-split-mnist-default: validation ACC over the settings 0.6147 (3000
    # diverged in class-IL)
    ("split-mnist", "default", {"ewc_lambda": 1000.0}),
    # search online-ewc-split-mnist-paper: 0.6099, 1e7 0.6053. Under Adam (this budget) the
    # score is nearly flat from 1000 up (0.603-0.610, inside domain-IL's seed spread): the
    # penalty's scale matters little once it dominates, Adam normalising the step
    ("split-mnist", "paper", {"ewc_lambda": 1e6}),
)


def sample_labels(logits: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Labels ``[S, B]`` drawn from ``softmax(logits)`` (``[S, B, K]``, ``-inf`` allowed) by
    inverting the CDF at ``u`` ``[S, B]`` in (0, 1]. A zero-probability class is never drawn."""
    cdf = logits.softmax(-1).cumsum(-1)
    threshold = (u * cdf[..., -1]).unsqueeze(-1)
    return (cdf >= threshold).int().argmax(-1)  # first index reaching the threshold


@STRATEGIES.register("ewc")
class EWC(SupervisedStrategy):
    """Elastic Weight Consolidation (Kirkpatrick et al. 2017, PNAS, "Overcoming catastrophic
    forgetting in neural networks").

    After task ``k``: ``F_k = mean_n (d/dtheta log p(y_n | x_n, theta*_k))^2`` over
    ``fisher_samples`` inputs of the task, at its final parameters ``theta*_k``; ``y_n`` is drawn
    from the model's predictive distribution (true Fisher) or is the dataset label
    (``fisher="empirical"``). Training on later tasks minimises
    ``L = L_task + lambda/2 * sum_k sum_i F_k,i (theta_i - theta*_k,i)^2``, one penalty per past
    task (memory grows with the number of tasks). The Fisher uses the training logits' mask (the
    task's outputs in task-IL, the seen classes' in class-IL with ``active_outputs="seen"``).
    """

    version = "2"  # 2: class-IL trains the seen classes' outputs by default (active_outputs)
    description = "Elastic Weight Consolidation: Fisher-weighted quadratic anchor per past task"
    Params = EWCParams
    defaults = EWC_DEFAULTS
    # The Fisher of all-MemberLinear networks from layer inputs and output gradients (see the
    # module docstring); False forces the general per-sample path (tests compare the two).
    outer_product_fisher: ClassVar[bool] = True

    def setup(self, info, model_factory, seeds, device) -> None:
        super().setup(info, model_factory, seeds, device)
        self.fisher_gens = [generator(seed, Stream.EWC_FISHER) for seed in seeds]
        # name -> [K, *param.shape]: K past tasks (EWC) or one running term (online EWC)
        self.fishers: dict[str, torch.Tensor] = {}
        self.anchors: dict[str, torch.Tensor] = {}
        # the merged quadratic of penalty(): weight A, centre mu (parameter-shaped), constant c
        self._weight: dict[str, torch.Tensor] = {}
        self._centre: dict[str, torch.Tensor] = {}
        self._constant = torch.zeros(len(self.seeds), device=device)

    # -- the penalty -------------------------------------------------------------------------

    def penalty(self) -> torch.Tensor:
        """``sum_k sum_i F_k,i (theta_i - theta*_k,i)^2`` per member, ``[S]`` (zero before the
        first consolidation). Evaluated as the single quadratic it equals,
        ``sum_i A_i (theta_i - mu_i)^2 + c`` with ``A = sum_k F_k``, ``mu = sum_k F_k theta*_k / A``
        and ``c = sum_k sum_i F_k,i (theta*_k,i - mu_i)^2`` (see :meth:`_merge`): one pass over
        the parameters per step whatever the number of past tasks."""
        S = len(self.seeds)
        total = self._constant
        for name, p in self.net.named_parameters():
            weight = self._weight.get(name)
            if weight is None:
                continue
            total = total + (weight * (p - self._centre[name]).square()).reshape(S, -1).sum(1)
        return total

    def direct_penalty(self) -> torch.Tensor:
        """The same penalty term by term over the stored tasks (reference for the tests)."""
        S = len(self.seeds)
        total = torch.zeros(S, device=self.device)
        for name, p in self.net.named_parameters():
            if name in self.fishers:
                term = self.fishers[name] * (p.unsqueeze(0) - self.anchors[name]).square()
                total = total + term.reshape(term.shape[0], S, -1).sum((0, 2))
        return total

    @torch.no_grad()
    def _merge(self) -> None:
        """Precompute ``A``, ``mu`` and ``c`` of :meth:`penalty` from the stored terms."""
        S = len(self.seeds)
        self._weight, self._centre = {}, {}
        constant = torch.zeros(S, dtype=torch.float64, device=self.device)
        for name, fisher in self.fishers.items():
            f, anchor = fisher.double(), self.anchors[name].double()
            weight = f.sum(0)
            mean = (f * anchor).sum(0) / weight.clamp_min(torch.finfo(torch.float64).tiny)
            centre = torch.where(weight > 0, mean, anchor[-1])
            spread = f * (anchor - centre).square()
            constant += spread.reshape(spread.shape[0], S, -1).sum((0, 2))
            self._weight[name] = fisher.sum(0)
            self._centre[name] = centre.to(fisher.dtype)
        self._constant = constant.float()

    def loss(self, x, y, task_ids):
        loss = super().loss(x, y, task_ids)
        if not self.fishers or self.params.ewc_lambda == 0:
            return loss
        return loss + 0.5 * self.params.ewc_lambda * self.penalty()

    # -- the Fisher --------------------------------------------------------------------------

    def _per_sample_grads(self):
        """``vmap(grad)`` of the summed-over-members cross-entropy of one sample per member."""
        net, output_mask = self.net, self.output_mask

        def sample_loss(params, buffers, x, y, t):  # x [S, C, H, W], y [S], t [S]
            out = functional_call(net, (params, buffers), (x.unsqueeze(1),))[:, 0]  # [S, K]
            mask = output_mask(t)  # the training logits' mask, as in logits()
            if mask is not None:
                out = out.masked_fill(~mask, float("-inf"))
            return F.cross_entropy(out, y, reduction="sum")

        return vmap(grad(sample_loss), in_dims=(None, None, 1, 1, 1))

    def _linear_layers(self) -> dict[str, MemberLinear] | None:
        """The network's layers by name when each trainable parameter is a ``MemberLinear``'s
        weight or bias (the outer-product Fisher applies); None otherwise."""
        layers = {n: m for n, m in self.net.named_modules() if isinstance(m, MemberLinear)}
        owned = {f"{n}.{k}" for n in layers for k in ("weight", "bias")}
        trainable = {k for k, p in self.net.named_parameters() if p.requires_grad}
        return layers if layers and trainable == owned else None

    def _squared_grad_sums_linear(self, layers, x, y, t) -> dict[str, torch.Tensor] | None:
        """``sum_i g_i^2`` over the chunk's samples for every parameter of ``layers``, from each
        layer's input ``a`` and output gradient ``d``: weight ``(d^2)^T a^2``, bias
        ``sum_i d_i^2``. None if a layer ran more than once (shared weights: the formula would
        miss the cross terms)."""
        seen: list[tuple[str, torch.Tensor, torch.Tensor]] = []
        names = {id(m): n for n, m in layers.items()}

        def record(module, args, out):
            seen.append((names[id(module)], args[0].detach(), out))

        handles = [m.register_forward_hook(record) for m in layers.values()]
        try:
            with torch.enable_grad():
                out = self.logits(x, t)
                loss = F.cross_entropy(out.flatten(0, 1), y.flatten(), reduction="sum")
                if len({n for n, _, _ in seen}) != len(seen):
                    return None
                deltas = torch.autograd.grad(loss, [o for _, _, o in seen])
        finally:
            for h in handles:
                h.remove()
        sums = {}
        for (name, a, _), d in zip(seen, deltas):
            d2 = d.square()
            sums[f"{name}.weight"] = torch.bmm(d2.transpose(1, 2), a.square())
            sums[f"{name}.bias"] = d2.sum(1)
        return sums

    def fisher_information(self, data: TaskData, fisher: str | None = None
                           ) -> dict[str, torch.Tensor]:
        """Diagonal Fisher at the current parameters, from ``fisher_samples`` random training
        samples of ``data`` per member: ``{name: tensor shaped like the parameter}``. Uses each
        member's generator (positions, then uniforms for the sampled labels)."""
        mode = self.params.fisher if fisher is None else fisher
        if mode not in ("true", "empirical"):
            raise ValueError(f"fisher must be 'true' or 'empirical', got {mode!r}")
        n = len(data)
        N = min(self.params.fisher_samples, n)
        positions, uniforms = [], []
        for g in self.fisher_gens:  # once per task, outside the training loop
            positions.append(torch.randperm(n, generator=g)[:N])
            uniforms.append(1.0 - torch.rand(N, generator=g, dtype=torch.float64))  # (0, 1]
        positions = torch.stack(positions).to(self.device)
        uniforms = torch.stack(uniforms).to(self.device)

        self.net.eval()  # batch norm with running statistics: per-sample gradients are defined
        params = {k: p.detach() for k, p in self.net.named_parameters() if p.requires_grad}
        buffers = dict(self.net.named_buffers())
        layers = self._linear_layers() if self.outer_product_fisher else None
        budget = _CHUNK_FLOATS.get(self.device.type, _CHUNK_FLOATS_DEFAULT)
        if layers is not None:  # a chunk holds each layer's input and output gradient
            per_sample_floats = sum(m.members * (m.in_features + m.out_features)
                                    for m in layers.values())
        else:  # a chunk holds every per-sample gradient
            per_sample_floats = sum(p.numel() for p in params.values())
        chunk = min(N, max(8, budget // max(per_sample_floats, 1)))
        sums = {k: torch.zeros_like(p) for k, p in params.items()}
        per_sample = None
        for start in range(0, N, chunk):
            x, y, t = data.batch(positions[:, start:start + chunk])
            if mode == "true":
                with torch.no_grad():
                    logits = self.logits(x, t).double()
                y = sample_labels(logits, uniforms[:, start:start + chunk])
            fast = self._squared_grad_sums_linear(layers, x, y, t) if layers else None
            if fast is not None:
                for k, g2 in fast.items():
                    sums[k] += g2
                continue
            layers = None  # shared weights: the general path for this and every later chunk
            per_sample = per_sample or self._per_sample_grads()
            grads = per_sample(params, buffers, x, y, t)
            for k, g in grads.items():
                sums[k] += g.square().sum(0)
        return {k: s / N for k, s in sums.items()}

    # -- consolidation -----------------------------------------------------------------------

    def consolidate(self, data: TaskData) -> None:
        """Estimate the Fisher of the task just learnt and add its penalty term."""
        fisher = self.fisher_information(data)
        anchors = {k: p.detach().clone() for k, p in self.net.named_parameters() if k in fisher}
        self._add_term(fisher, anchors)
        self._merge()

    def _add_term(self, fisher: Mapping[str, torch.Tensor],
                  anchors: Mapping[str, torch.Tensor]) -> None:
        for k, f in fisher.items():
            if k in self.fishers:
                self.fishers[k] = torch.cat([self.fishers[k], f.unsqueeze(0)])
                self.anchors[k] = torch.cat([self.anchors[k], anchors[k].unsqueeze(0)])
            else:
                self.fishers[k] = f.unsqueeze(0)
                self.anchors[k] = anchors[k].unsqueeze(0)

    def train(self, experience: Experience) -> None:
        self.fit(experience.train)
        self.consolidate(experience.train)

    def state_numel(self) -> int:
        """Floats this strategy keeps besides the model (Fishers and anchors, all members)."""
        return sum(t.numel() for d in (self.fishers, self.anchors) for t in d.values())


@STRATEGIES.register("online-ewc")
class OnlineEWC(EWC):
    """Online EWC (Schwarz et al. 2018, ICML, "Progress & Compress: A scalable framework for
    continual learning"; see also Huszar 2018, "Note on the quadratic penalties in elastic weight
    consolidation", PNAS).

    One running Fisher ``F*_k = gamma * F*_{k-1} + F_k`` (``F_k`` estimated as in :class:`EWC`
    at the end of task ``k``) anchored at the latest task's final parameters ``theta*``. Training
    on task ``k+1`` minimises, as in Schwarz et al.'s Eq. 4 (the norm weighted by
    ``gamma * F*_{k-1}``, their index shifted to ours),
    ``L_task + lambda/2 * sum_i gamma * F*_k,i (theta_i - theta*_i)^2``: the penalty decays the
    newest task's Fisher too, as van de Ven & Tolias's reference code does
    (``ewc_loss``: ``fisher = gamma * fisher``). With ``gamma = 1`` (the default) both forms
    agree. Memory is constant in the number of tasks (two parameter-sized tensors).
    """

    # 2: the penalty is weighted gamma * F* (was F*), so gamma < 1 no longer acts as lambda/gamma
    version = "2"
    description = "online EWC: one running Fisher (F <- gamma F + F_new) anchored at the last task"
    Params = OnlineEWCParams
    defaults = ONLINE_EWC_DEFAULTS

    def penalty(self) -> torch.Tensor:
        """``gamma * sum_i F*_i (theta_i - theta*_i)^2`` per member, ``[S]``."""
        return self.params.gamma * super().penalty()

    def direct_penalty(self) -> torch.Tensor:
        return self.params.gamma * super().direct_penalty()

    def _add_term(self, fisher, anchors) -> None:
        gamma = self.params.gamma
        for k, f in fisher.items():
            if k in self.fishers:
                self.fishers[k] = gamma * self.fishers[k] + f.unsqueeze(0)
            else:
                self.fishers[k] = f.unsqueeze(0)
            self.anchors[k] = anchors[k].unsqueeze(0)

