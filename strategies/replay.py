"""Experience replay (ER) with a fixed episodic memory, seed-batched.

Random streams (``clbench.seeding.Stream``): ``MEMORY_KEYS`` draws the reservoir keys of the
samples seen, ``REPLAY_DRAW`` the memory minibatches; one generator per member.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import torch

from clbench.experience import Experience, TaskData
from clbench.registry import STRATEGIES
from clbench.seeding import Stream, generator
from clbench.strategies.base import SGD_DEFAULTS, Batch, SupervisedParams, SupervisedStrategy


@dataclasses.dataclass(frozen=True)
class ReplayParams(SupervisedParams):
    # Memory budget in samples (total, not per class). 200 is the smallest buffer of Buzzega et
    # al. 2020 ("Dark Experience for General Continual Learning", Table 2: 200/500/5120) and in
    # the range of the tiny memories of Chaudhry et al. 2019 ("On Tiny Episodic Memories in
    # Continual Learning": 1-5 samples per class per task).
    memory_size: int = 200
    # "reservoir": a uniform sample of the whole stream (Vitter 1985; ER of Chaudhry et al.
    # 2019); "class_balanced": memory_size // classes seen slots per class, rebalanced when new
    # classes arrive (Avalanche's ClassBalancedBuffer; the class-balanced ring/mean-of-features
    # memories of Chaudhry et al. 2019 use equal slots per class).
    memory: Literal["reservoir", "class_balanced"] = "reservoir"
    # Memory minibatch per step; None: batch_size (Chaudhry et al. 2019 use equal sizes, 10).
    replay_batch_size: int | None = None

    def validate(self) -> None:
        super().validate()
        if self.memory_size < 1:
            raise ValueError(f"memory_size must be >= 1 sample, got {self.memory_size}")
        if self.replay_batch_size is not None and self.replay_batch_size < 1:
            raise ValueError(
                f"replay_batch_size must be >= 1 (or None for batch_size), "
                f"got {self.replay_batch_size}"
            )


def gather_columns(data: TaskData, index: torch.Tensor) -> TaskData:
    """The rows of ``data`` at positions ``index`` ([S, m], each member its own) as a TaskData
    (same images and permutations; ``batch()`` works on it)."""
    return data.gather(index)


def _compact_permutations(data: TaskData) -> TaskData:
    """Drop the pixel permutations that no memory row uses any more (keeps memory bounded)."""
    if data.permutations is None or data.permutations.shape[1] == 1:
        return data
    used = torch.zeros(data.permutations.shape[:2], dtype=torch.bool, device=data.rows.device)
    used.scatter_(1, data.perm_ids, True)
    keep = used.any(0)  # a permutation used by any member (same K for every member)
    new_id = keep.long().cumsum(0) - 1
    return TaskData(
        data.images, data.rows, data.labels, data.task_ids, data.mean, data.std,
        data.permutations[:, keep], new_id[data.perm_ids],
    )


@STRATEGIES.register("replay")
class Replay(SupervisedStrategy):
    """Experience replay (ER; Chaudhry et al. 2019, "On Tiny Episodic Memories in Continual
    Learning", Sec. 4) with a memory of at most ``memory_size`` samples per member.

    Training step: the current minibatch ``B`` is concatenated with a minibatch ``B_M`` of
    ``replay_batch_size`` samples drawn uniformly (with replacement, each member its own draw)
    from the memory, and the member's loss is the mean cross-entropy over ``B ∪ B_M`` (ER's
    joint batch), ``L = (1/|B ∪ B_M|) Σ_{(x,y) ∈ B ∪ B_M} CE(f(x), y)``.

    Memory update: at the end of each task (as Avalanche's ``ReplayPlugin``), so during task t
    the memory holds samples of tasks 1..t-1 only and task 1 trains exactly as ``naive``.

    * ``reservoir``: every sample seen gets a key ``u ~ U(0, 1)`` (each member its own
      generator) and the memory keeps the ``memory_size`` smallest keys of all samples seen.
      The kept set is a uniformly random ``memory_size``-subset of the stream, which is
      exactly the distribution of sequential reservoir sampling (Vitter 1985, Algorithm R) at
      each task boundary; it is computed with one ``topk`` over memory ∪ task instead of a
      loop over samples.
    * ``class_balanced``: with ``C`` classes seen, class ``c`` gets ``memory_size // C`` slots
      (the ``memory_size % C`` left over go to the lowest class ids); each class keeps its
      smallest keys, i.e. a uniform sample of that class's stream; when new classes arrive the
      old classes shrink to their new quota.

    The memory is stored as indices into the scenario's images (rows, labels, task ids and
    pixel-permutation ids per member, a :class:`TaskData`), never as copies of the images.
    """

    version = "2"  # 2: class-IL trains the seen classes' outputs by default (active_outputs)
    description = "experience replay from a fixed-size episodic memory (reservoir or balanced)"
    Params = ReplayParams
    defaults = SGD_DEFAULTS

    def setup(self, info, model_factory, seeds, device) -> None:
        super().setup(info, model_factory, seeds, device)
        self.key_gens = [generator(seed, Stream.MEMORY_KEYS) for seed in seeds]
        self.draw_gens = [generator(seed, Stream.REPLAY_DRAW) for seed in seeds]
        self.memory: TaskData | None = None  # rows [S, W], W <= memory_size
        self.memory_keys: torch.Tensor | None = None  # [S, W] reservoir keys
        self.filled = torch.zeros(len(seeds), dtype=torch.long, device=device)  # valid per member
        self.seen_classes = torch.zeros(len(seeds), info.n_outputs, dtype=torch.bool,
                                        device=device)

    # ---- training --------------------------------------------------------------------------
    def replay_positions(self, steps: int) -> torch.Tensor:
        """``[S, steps, R]`` memory positions for one epoch, uniform over each member's valid
        entries (drawn once per epoch: no host round trip per step)."""
        p = self.params
        r = p.replay_batch_size or p.batch_size
        u = torch.stack([torch.rand(steps, r, generator=g) for g in self.draw_gens])
        u = u.to(self.device)
        filled = self.filled.view(-1, 1, 1)
        return (u * filled).long().clamp_(max=filled - 1).clamp_(min=0)

    def prepare_epoch(self, steps: int) -> torch.Tensor | None:
        """The epoch's memory positions (None while the memory is empty: the first task)."""
        return None if self.memory is None else self.replay_positions(steps)

    def training_step(self, batch: Batch, step: int, prepared: Any) -> torch.Tensor:
        """ER's joint batch: the minibatch and ``replay_batch_size`` memory samples."""
        x, y, t = batch
        if prepared is not None:
            xm, ym, tm = self.memory.batch(prepared[:, step])
            x, y, t = torch.cat([x, xm], 1), torch.cat([y, ym], 1), torch.cat([t, tm], 1)
        return self.loss(x, y, t)

    def train(self, experience: Experience) -> None:
        self.fit(experience.train)
        self.update_memory(experience.train)

    # ---- memory ----------------------------------------------------------------------------
    @torch.no_grad()
    def update_memory(self, data: TaskData) -> None:
        """Merge the task's samples into the memory (see the class docstring)."""
        keys = torch.stack([torch.rand(len(data), generator=g) for g in self.key_gens])
        keys = keys.to(self.device)
        if self.memory is None:
            pool, pool_keys = data, keys
            valid = torch.ones_like(keys, dtype=torch.bool)
        else:
            pool = TaskData.union([self.memory, data])
            pool_keys = torch.cat([self.memory_keys, keys], 1)
            width = self.memory.rows.shape[1]
            old = torch.arange(width, device=self.device) < self.filled[:, None]
            valid = torch.cat([old, torch.ones_like(keys, dtype=torch.bool)], 1)
        self.seen_classes.scatter_(1, data.labels, True)
        m = self.params.memory_size
        if self.params.memory == "reservoir":
            k = min(m, len(pool))
            index = pool_keys.topk(k, dim=1, largest=False).indices  # sorted by key
            filled = torch.full_like(self.filled, k)
        else:
            index, filled = self._balanced_index(pool.labels, pool_keys, valid)
        self.memory = _compact_permutations(gather_columns(pool, index))
        self.memory_keys = pool_keys.gather(1, index)
        self.filled = filled

    def _balanced_index(self, labels: torch.Tensor, keys: torch.Tensor, valid: torch.Tensor):
        """Positions kept by the class-balanced rule, valid ones first: ``[S, W]``, and the
        number of valid positions per member ``[S]``. ``valid`` marks pool entries that are
        real samples (the memory's padding is not)."""
        S, P = labels.shape
        m, C = self.params.memory_size, self.info.n_outputs
        seen = self.seen_classes
        n_seen = seen.sum(1, keepdim=True)  # [S, 1]
        rank_of_class = seen.long().cumsum(1) - 1  # order of each seen class by id
        quota = m // n_seen + (rank_of_class < m % n_seen).long()
        quota = quota * seen  # [S, C]
        quota = torch.cat([quota, torch.zeros_like(quota[:, :1])], 1)  # class C: padding, 0 slots
        labels = labels.masked_fill(~valid, C)
        # sort by (class, key): the first quota[c] of each class are its smallest keys
        order = (labels.double() + keys.double()).argsort(1)
        sorted_labels = labels.gather(1, order)
        counts = torch.zeros(S, C + 1, dtype=torch.long, device=labels.device)
        counts.scatter_add_(1, labels, torch.ones_like(labels))
        start = counts.cumsum(1) - counts
        rank = torch.arange(P, device=labels.device) - start.gather(1, sorted_labels)
        keep = rank < quota.gather(1, sorted_labels)  # [S, P] in sorted order
        filled = keep.sum(1)
        width = int(filled.max())  # one host sync per task
        # kept positions first (stable: still ordered by class, then key)
        pick = (~keep).long().argsort(dim=1, stable=True)[:, :width]
        return order.gather(1, pick), filled

    def memory_contents(self, member: int) -> dict[str, torch.Tensor]:
        """The valid memory entries of one member (for tests and inspection)."""
        if self.memory is None:
            return {"rows": torch.empty(0, dtype=torch.long)}
        k = int(self.filled[member])
        out = {
            "rows": self.memory.rows[member, :k],
            "labels": self.memory.labels[member, :k],
            "task_ids": self.memory.task_ids[member, :k],
        }
        if self.memory.permutations is not None:
            perms = self.memory.permutations[member, self.memory.perm_ids[member, :k]]
            out["permutations"] = perms
        return out
