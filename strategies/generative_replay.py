"""Deep generative replay (DGR) with a per-member VAE, seed-batched.

Random streams (``clbench.seeding.Stream``), one generator per member: ``GEN_INIT`` initialises
the VAE, ``REPLAY_NOISE`` draws the latent codes and task ids of the solver's replayed samples,
``GEN_NOISE`` the VAE's replayed codes and reparameterisation noise, ``GEN_SHUFFLE`` shuffles the
VAE's epochs (the solver shuffles with ``SHUFFLE`` as naive).
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from clbench.experience import Experience, TaskData
from clbench.models import MemberLinear
from clbench.registry import STRATEGIES
from clbench.seeding import Stream, generator
from clbench.strategies.base import SGD_DEFAULTS, Batch, Loop, SupervisedParams, SupervisedStrategy


class MemberVAE(nn.Module):
    """S independent MLP VAEs (Kingma & Welling 2014) on flattened pixels in [0, 1]:
    encoder ``D -> hidden^L -> (mu, log var) in R^latent``, decoder ``latent -> hidden^L -> D``
    with a sigmoid output (Bernoulli likelihood), every layer a :class:`MemberLinear`."""

    def __init__(self, members: int, input_dim: int, hidden: int, layers: int, latent: int):
        super().__init__()
        self.latent = latent
        enc = [input_dim] + [hidden] * layers
        self.encoder = nn.ModuleList(MemberLinear(members, a, b) for a, b in zip(enc, enc[1:]))
        self.to_mu = MemberLinear(members, enc[-1], latent)
        self.to_logvar = MemberLinear(members, enc[-1], latent)
        dec = [latent] + [hidden] * layers
        self.decoder = nn.ModuleList(MemberLinear(members, a, b) for a, b in zip(dec, dec[1:]))
        self.to_pixels = MemberLinear(members, dec[-1], input_dim)
        self.clbench_members = members

    def encode(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = pixels
        for layer in self.encoder:
            h = F.relu(layer(h))
        return self.to_mu(h), self.to_logvar(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Pixel logits ``[S, B, D]`` (sigmoid gives pixels in [0, 1])."""
        h = z
        for layer in self.decoder:
            h = F.relu(layer(h))
        return self.to_pixels(h)

    def elbo_terms(self, pixels: torch.Tensor, eps: torch.Tensor | None):
        """Per-sample reconstruction BCE (summed over pixels) and KL to N(0, I), ``[S, B]``
        each; ``eps`` None decodes the posterior mean."""
        mu, logvar = self.encode(pixels)
        z = mu if eps is None else mu + eps * (0.5 * logvar).exp()
        logits = self.decode(z)
        recon = F.binary_cross_entropy_with_logits(logits, pixels, reduction="none").sum(-1)
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(-1)
        return recon, kl


@torch.no_grad()
def init_vae(vae: MemberVAE, seeds: Sequence[int]) -> None:
    """PyTorch's default ``nn.Linear`` initialisation, member ``s`` from its own stream."""
    gens = [generator(seed, Stream.GEN_INIT) for seed in seeds]
    for module in vae.modules():
        if isinstance(module, MemberLinear):
            bound = 1 / math.sqrt(module.in_features)
            for s, gen in enumerate(gens):
                nn.init.kaiming_uniform_(module.weight[s], a=math.sqrt(5), generator=gen)
                nn.init.uniform_(module.bias[s], -bound, bound, generator=gen)


@dataclasses.dataclass(frozen=True)
class _GeneratorEpoch:
    """One VAE epoch's draws, made before its steps: reparameterisation noise
    ``[S, steps, B + R, latent]`` (real samples first), the replayed codes ``[S, steps, R, latent]``
    (None on the first task), and the running sum of real-data reconstruction BCE per pixel."""

    eps: torch.Tensor
    z: torch.Tensor | None
    steps: int
    recon_sum: torch.Tensor  # [S], summed in place by each step


@dataclasses.dataclass(frozen=True)
class GenerativeReplayParams(SupervisedParams):
    # Labels of the replayed samples from the previous solver: "hard" = its argmax (Shin et al.
    # 2017), "soft" = distillation of its tempered softmax (van de Ven & Tolias 2018).
    replay_targets: Literal["hard", "soft"] = "hard"
    temperature: float = 2.0  # distillation temperature, van de Ven & Tolias 2018 (T = 2)
    replay_batch_size: int | None = None  # replayed samples per step; None: batch_size
    # VAE: 2 fully connected layers of 400 ReLU units in encoder and decoder, as the VAE of
    # van de Ven & Tolias 2018 ("Generative replay with feedback connections as a general
    # strategy for continual learning", MNIST); latent 32 (they use 100; 32 suffices for MNIST
    # digits and keeps the generator small).
    latent_dim: int = 32
    gen_hidden: int = 400
    gen_layers: int = 2
    gen_lr: float = 0.001  # Adam, van de Ven & Tolias 2018
    gen_epochs: int | None = None  # epochs of VAE training per task; None: epochs

    def validate(self) -> None:
        super().validate()
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if self.replay_batch_size is not None and self.replay_batch_size < 1:
            raise ValueError(f"replay_batch_size must be >= 1 (or None for batch_size), "
                             f"got {self.replay_batch_size}")
        if self.latent_dim < 1 or self.gen_hidden < 1 or self.gen_layers < 1:
            raise ValueError("latent_dim, gen_hidden and gen_layers must be >= 1, got "
                             f"{self.latent_dim}, {self.gen_hidden}, {self.gen_layers}")
        if self.gen_lr <= 0:
            raise ValueError(f"gen_lr must be > 0, got {self.gen_lr}")
        if self.gen_epochs is not None and self.gen_epochs < 0:
            raise ValueError(f"gen_epochs must be >= 0 (or None for epochs), got "
                             f"{self.gen_epochs}")


@STRATEGIES.register("generative-replay")
class GenerativeReplay(SupervisedStrategy):
    """Deep generative replay (Shin et al. 2017, "Continual Learning with Deep Generative
    Replay"), with a VAE generator as in van de Ven & Tolias 2018.

    Each member has a solver (the backbone) and its own VAE. On task ``t`` (``t`` = tasks seen,
    this one included), with ``G'``/``f'`` frozen copies of the generator and solver taken at
    the end of task ``t-1``:

    * replayed inputs ``x' = (sigmoid(G'.decode(z)) - mean) / std``, ``z ~ N(0, I)``: generated
      in [0, 1] pixel space (the permuted space in permuted scenarios: the generator sees what
      the solver sees), normalised like real data;
    * their targets come from ``f'`` restricted to the classes of tasks ``1..t-1`` (class-
      incremental), to the classes of a past task ``tau ~ U{1..t-1}`` drawn per sample, which
      also becomes the sample's task id (task-incremental), or to all outputs (domain);
      ``hard``: ``y' = argmax f'(x')``; ``soft``: ``T^2 * CE(softmax(f'(x')/T), softmax(f(x')/T))``
      with the target 0 outside the masked classes;
    * solver loss ``L = (1/t) CE(f(x), y) + (1 - 1/t) L_replay`` (the replay ratio of Shin et
      al. 2017 and van de Ven & Tolias 2018: real data weighted as one task in t);
    * generator loss: the same mixture of the negative ELBO (Bernoulli BCE summed over pixels
      + KL, divided by the number of pixels) on real pixels and on ``G'``'s samples.

    On task 1 there is nothing to replay: the solver trains exactly as ``naive`` and the VAE on
    the task's data. The solver trains ``epochs`` epochs, then the VAE ``gen_epochs`` epochs.
    """

    version = "2"  # 2: class-IL trains the seen classes' outputs by default (active_outputs)
    description = "deep generative replay: a per-member VAE replays past inputs, labelled " \
                  "by the previous solver"
    Params = GenerativeReplayParams
    defaults = SGD_DEFAULTS + (
        # 8x8 digits have ~290 training images per task: the VAE needs many more passes than
        # the solver. Chosen on the validation split (docs/tuning.md,
        # generative-replay-split-digits-default: 0.908, against 0.893 at 100 epochs).
        ("*-digits", "default", {"gen_epochs": 200, "gen_hidden": 200}),
        ("*-digits", "paper", {"gen_epochs": 200, "gen_hidden": 200}),
        ("*-digits", "smoke", {"gen_epochs": 5, "gen_hidden": 64, "latent_dim": 8}),
    )

    def setup(self, info, model_factory, seeds, device) -> None:
        super().setup(info, model_factory, seeds, device)
        p = self.params
        self.input_dim = math.prod(info.input_shape)
        self.gen = MemberVAE(len(seeds), self.input_dim, p.gen_hidden, p.gen_layers,
                             p.latent_dim)
        init_vae(self.gen, seeds)
        self.gen.to(device)
        self.replay_gens = [generator(seed, Stream.REPLAY_NOISE) for seed in seeds]
        self.noise_gens = [generator(seed, Stream.GEN_NOISE) for seed in seeds]
        self.gen_shufflers = [generator(seed, Stream.GEN_SHUFFLE) for seed in seeds]
        self.prev_solver: nn.Module | None = None
        self.prev_gen: MemberVAE | None = None
        self.past_tasks: list[int] = []
        # mean reconstruction BCE per pixel of each VAE epoch on real data, [S] tensors
        self.gen_history: list[torch.Tensor] = []

    # ---- helpers ---------------------------------------------------------------------------
    def _randn(self, gens, *shape) -> torch.Tensor:
        return torch.stack([torch.randn(*shape, generator=g) for g in gens]).to(self.device)

    def _pixels(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised inputs ``[S, B, C, H, W]`` -> pixels in [0, 1], ``[S, B, D]``."""
        return (x * self._std + self._mean).flatten(2)

    def _normalise(self, pixels: torch.Tensor) -> torch.Tensor:
        S, B = pixels.shape[:2]
        return (pixels.view(S, B, *self.info.input_shape) - self._mean) / self._std

    @torch.no_grad()
    def sample(self, z: torch.Tensor, vae: MemberVAE | None = None) -> torch.Tensor:
        """Generated inputs for latent codes ``z`` ``[S, B, latent]``: ``[S, B, C, H, W]``,
        normalised like real data."""
        vae = self.gen if vae is None else vae
        return self._normalise(torch.sigmoid(vae.decode(z)))

    @torch.no_grad()
    def _replay(self, z: torch.Tensor, tau: torch.Tensor):
        """Replayed inputs, their task ids and the previous solver's masked logits."""
        x = self.sample(z, self.prev_gen)
        logits = self.prev_solver(x)
        if self.info.setting == "task":
            logits = logits.masked_fill(~self.class_mask[tau], float("-inf"))
        elif self.info.setting == "class":
            logits = logits.masked_fill(~self._past_classes, float("-inf"))
        return x, tau, logits

    def _task_ids(self, steps: int, r: int) -> torch.Tensor:
        past = torch.as_tensor(self.past_tasks)
        picks = torch.stack([torch.randint(len(past), (steps, r), generator=g)
                             for g in self.replay_gens])
        return past[picks].to(self.device)

    @torch.no_grad()
    def reconstruction_error(self, data: TaskData) -> torch.Tensor:
        """Mean BCE per pixel of each member's VAE on ``data`` (posterior mean), ``[S]``."""
        self._set_stats(data)
        index = torch.arange(len(data), device=self.device).expand(data.members, -1)
        x, _, _ = data.batch(index)
        recon, _ = self.gen.elbo_terms(self._pixels(x), None)
        return recon.mean(1) / self.input_dim

    def _set_stats(self, data: TaskData) -> None:
        self._mean, self._std = data.mean, data.std

    # ---- training --------------------------------------------------------------------------
    def train(self, experience: Experience) -> None:
        data = experience.train
        self._set_stats(data)
        if self.past_tasks:
            self._past_classes = self.class_mask[self.past_tasks].any(0)
        self.fit(data)  # the solver: prepare_epoch and training_step below
        self.run_loop(self.generator_loop(), data)
        self.prev_solver = copy.deepcopy(self.net).eval().requires_grad_(False)
        self.prev_gen = copy.deepcopy(self.gen).eval().requires_grad_(False)
        self.past_tasks.append(experience.task.index)

    def _replay_loss(self, x_r, tau, target_logits) -> torch.Tensor:
        out = self.logits(x_r, tau)
        if self.params.replay_targets == "hard":
            y = target_logits.argmax(-1)
            ce = F.cross_entropy(out.flatten(0, 1), y.flatten(), reduction="none")
            return ce.view(y.shape).mean(1)
        # The student's softmax runs over its training outputs (output_mask: the seen
        # classes' in class-IL, the task's in task-IL) and the target is 0 outside the
        # previous solver's classes,
        # so replayed samples also push the current task's classes down (van de Ven & Tolias
        # 2018 pad the targets with zeros the same way).
        T = self.params.temperature
        target = torch.softmax(target_logits / T, -1)  # 0 where masked
        log_q = torch.log_softmax(out / T, -1)
        ce = -(target * log_q.masked_fill(~out.isfinite(), 0.0)).sum(-1)
        return ce.mean(1) * T * T

    # -- the solver's steps -------------------------------------------------------------------
    def prepare_epoch(self, steps: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The epoch's replay draws, latent codes ``[S, steps, R, latent]`` then task ids
        ``[S, steps, R]`` (None on the first task: nothing to replay)."""
        if not self.past_tasks:
            return None
        p = self.params
        r = p.replay_batch_size or p.batch_size
        z = self._randn(self.replay_gens, steps, r, p.latent_dim)
        return z, self._task_ids(steps, r)

    def training_step(self, batch: Batch, step: int, prepared: Any) -> torch.Tensor:
        """``(1/t) CE(f(x), y) + (1 - 1/t) L_replay`` on the step's replayed samples."""
        loss = self.loss(*batch)
        if prepared is None:
            return loss
        t = len(self.past_tasks) + 1
        z, taus = prepared
        replayed = self._replay(z[:, step], taus[:, step])
        return loss / t + (1 - 1 / t) * self._replay_loss(*replayed)

    # -- the VAE's loop ----------------------------------------------------------------------
    def generator_loop(self) -> Loop:
        """The VAE's training: Adam at ``gen_lr``, its own shuffles, ``gen_epochs`` epochs."""
        p = self.params
        return Loop(
            module=self.gen,
            optimizer=torch.optim.Adam(self.gen.parameters(), lr=p.gen_lr),
            shufflers=self.gen_shufflers,
            batch_size=p.batch_size,
            epochs=p.epochs if p.gen_epochs is None else p.gen_epochs,
            step=self._generator_step,
            prepare_epoch=self._prepare_generator_epoch,
            end_epoch=self._end_generator_epoch,
        )

    def _prepare_generator_epoch(self, steps: int) -> _GeneratorEpoch:
        p = self.params
        r = p.replay_batch_size or p.batch_size
        eps = self._randn(self.noise_gens, steps, p.batch_size + r, p.latent_dim)
        z = self._randn(self.noise_gens, steps, r, p.latent_dim) if self.past_tasks else None
        return _GeneratorEpoch(eps, z, steps, torch.zeros(len(self.seeds), device=self.device))

    def _generator_step(self, batch: Batch, step: int, epoch: _GeneratorEpoch) -> torch.Tensor:
        """The mixture of negative ELBOs per pixel, real data weighted ``1/t``."""
        x = batch[0]
        b = x.shape[1]
        recon, kl = self.gen.elbo_terms(self._pixels(x), epoch.eps[:, step, :b])
        loss = (recon + kl).mean(1) / self.input_dim
        epoch.recon_sum.add_(recon.detach().mean(1) / self.input_dim)
        if epoch.z is None:
            return loss
        t, r = len(self.past_tasks) + 1, epoch.z.shape[2]
        with torch.no_grad():
            replayed = torch.sigmoid(self.prev_gen.decode(epoch.z[:, step]))
        # the replayed samples' noise follows the real ones' (b < batch_size in the last step)
        recon_r, kl_r = self.gen.elbo_terms(replayed, epoch.eps[:, step, b:b + r])
        return loss / t + (1 - 1 / t) * (recon_r + kl_r).mean(1) / self.input_dim

    def _end_generator_epoch(self, epoch: _GeneratorEpoch) -> None:
        self.gen_history.append(epoch.recon_sum / epoch.steps)
