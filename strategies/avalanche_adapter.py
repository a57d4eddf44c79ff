"""Run an Avalanche (avalanche-lib 0.6) training template as one clbench strategy.

The adapter owns the translation, not the algorithm: every clbench experience becomes an
Avalanche experience (a tensor classification dataset of the task's training rows with the
right task label and classes), the template's own ``train(...)`` learns it, and clbench's
harness evaluates the template's model and measures wall time exactly as for a native run.

* **Not batched**: Avalanche templates hold one plain model, so ``batched = False`` and the
  harness gives one seed at a time (S = 1). The model is ``model_factory.single(seed)``: the
  same network, with the same initialisation, as member ``seed`` of a native group.
* **Task labels**: in the task-incremental setting experience ``t`` carries task label ``t``
  and the model is a ``MultiTaskModule`` whose ``forward_single_task`` masks the outputs
  outside task ``t``'s classes (what native strategies do in ``SupervisedStrategy.logits``).
  In the class and domain settings every experience has task label 0 (Avalanche's convention
  for class-incremental benchmarks) and the model is the plain backbone.
* **Off**: Avalanche's evaluation plugin has no metrics and no loggers, no eval streams are
  passed (``eval_streams=[]``, ``eval_every=-1``), nothing is written to disk. One plugin is
  added: it calls the harness's per-step seam (``Strategy.step_done``) after every iteration.
* **Randomness**: the harness seeds the global RNGs before setup; in addition the global
  ``random``/NumPy/torch RNGs are re-seeded from ``derive_seed(seed, AVALANCHE_RESEED, t)``
  before every experience, so the data order and the buffers' random choices (all drawn from
  the global RNGs in Avalanche) are a function of (seed, task) only. With ``order="native"``
  the template's training data loader is replaced by one that draws each epoch's order from
  the native shuffle stream ``generator(seed, Stream.SHUFFLE)``, exactly as
  ``SupervisedStrategy.epoch_order``: the same batches in the same order as a native run of
  the same seed.
* **Optimiser**: a fresh optimiser state per experience (``reset_optimizer_state=True``), as
  the native strategies build a fresh optimiser per experience (Avalanche keeps momentum
  across experiences by default).
* **Fetching**: the template's own training loader draws the batches (its samplers, its RNG
  draws), but fetches them by indexing tensors of the experience's rows (``TensorRows``)
  instead of Avalanche's per-sample ``__getitem__`` and collate: the same batches, bit for
  bit, in about 20% less time per epoch on MNIST. Loaders a plugin installs (replay) are kept.

Avalanche is imported lazily (setup/train only): listing strategies and native runs never pay
for it. Stream used here: ``Stream.AVALANCHE_RESEED`` (per-experience reseeding of global RNGs).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import random
import warnings
from collections.abc import Iterator
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from torch import nn

from clbench.errors import ConfigError
from clbench.experience import Experience, ScenarioInfo
from clbench.models import ModelFactory
from clbench.seeding import Stream, derive_seed, generator
from clbench.strategies.base import SGDParams, Strategy, make_optimizer

INSTALL_HINT = "pip install 'clbench[avalanche]' (avalanche-lib 0.6 and quadprog)"
MASK_VALUE = -1e9  # finite "minus infinity": same softmax as -inf, no NaN in KL terms (LwF)


def avalanche_available() -> bool:
    return importlib.util.find_spec("avalanche") is not None


def require_avalanche() -> None:
    """Import check with the install command in the message."""
    try:
        import avalanche  # noqa: F401
    except ImportError as exc:
        raise ConfigError(
            f"the avalanche.* strategies need avalanche-lib 0.6 ({exc})", hint=INSTALL_HINT
        ) from exc


@dataclasses.dataclass(frozen=True)
class AvalancheParams(SGDParams):
    """Optimiser fields as the native strategies (clbench's SGD_DEFAULTS per scenario/budget),
    plus how the training data is ordered."""

    # "avalanche": the template's own data loader (shuffled with torch's global RNG, reseeded
    # per experience); "native": each epoch's order drawn from the native shuffle stream,
    # the same batches as a native strategy of the same seed (for same-method comparisons).
    order: Literal["avalanche", "native"] = "avalanche"

    def validate(self) -> None:
        super().validate()
        if self.order not in ("avalanche", "native"):
            raise ValueError("order must be 'avalanche' or 'native'")


class _EpochPermutation(torch.utils.data.Sampler):
    """Each epoch: ``randperm(n, generator=gen)``, as ``SupervisedStrategy.epoch_order``."""

    def __init__(self, n: int, gen: torch.Generator):
        self.n, self.gen = n, gen

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[int]:
        return iter(torch.randperm(self.n, generator=self.gen).tolist())


class TensorRows(torch.utils.data.Dataset):
    """The rows of Avalanche datasets (concatenated, as Avalanche's multi-dataset loaders
    index them), collated once into tensors: a batch is one indexing per column, equal to
    what the datasets' collate makes of those rows. The adapter's datasets have no
    transforms, so a row is the same at every fetch."""

    def __init__(self, datasets: list[Any]):
        collate = datasets[0].collate_fn
        self.columns = collate([d[i] for d in datasets for i in range(len(d))])

    def __len__(self) -> int:
        return len(self.columns[0])

    def __getitem__(self, index: int) -> list[torch.Tensor]:
        return [c[index] for c in self.columns]

    def __getitems__(self, indices: list[int]) -> list[torch.Tensor]:
        rows = torch.as_tensor(indices, dtype=torch.long)
        return [c[rows] for c in self.columns]


def _collated(batch: list[torch.Tensor]) -> list[torch.Tensor]:
    """The collate of a ``TensorRows`` loader: ``__getitems__`` already made the batch."""
    return batch


def fetching_tensors(loader: Any) -> Any:
    """Avalanche's multi-dataset training loader (``TaskBalancedDataLoader``) fetching from
    ``TensorRows``. Each epoch builds Avalanche's own samplers and a ``DataLoader`` over them
    as its ``_get_loader`` does (so the same indices and RNG draws), but over the tensors, and
    without the per-epoch FFCV probe, a walk over every leaf dataset (about 1 s an epoch on
    MNIST; the adapter never enables FFCV). Other loaders are returned as they are."""
    from avalanche.benchmarks.utils.data_loader import (
        MultiDatasetDataLoader,
        MultiDatasetSampler,
        _make_data_loader_with_batched_sampler,
    )

    if not isinstance(loader, MultiDatasetDataLoader):
        return loader
    loader_args = dict(loader.loader_kwargs, collate_fn=_collated)
    rows: list[TensorRows] = []  # built at the first epoch: a plugin may replace the loader

    def get_loader() -> torch.utils.data.DataLoader:
        samplers = loader._create_samplers(loader.datasets, loader.batch_sizes,
                                           loader.distributed_sampling, loader.loader_kwargs)
        batches = MultiDatasetSampler(
            loader.datasets, samplers, termination_dataset_idx=loader.termination_dataset,
            oversample_small_datasets=loader.oversample_small_datasets,
            never_ending=loader.never_ending,
        )
        if not rows:
            rows.append(TensorRows(loader.datasets))
        return _make_data_loader_with_batched_sampler(rows[0], batches, loader_args)

    loader._get_loader = get_loader
    return loader


_MASKED_CLASS: type | None = None
_NO_LABELS = object()  # model(x) called without task labels


def task_masked(net: nn.Module, class_mask: torch.Tensor) -> nn.Module:
    """``net`` as an Avalanche MultiTaskModule whose task-``t`` forward keeps only the outputs
    of task ``t``'s classes (the others are set to MASK_VALUE)."""
    global _MASKED_CLASS
    if _MASKED_CLASS is None:
        from avalanche.models import MultiTaskModule

        class TaskMasked(MultiTaskModule):
            def __init__(self, net: nn.Module, class_mask: torch.Tensor):
                super().__init__()
                self.net = net
                self.register_buffer("class_mask", class_mask.clone(), persistent=False)

            def forward_single_task(self, x: torch.Tensor, task_label: int) -> torch.Tensor:
                out = self.net(x)
                return out.masked_fill(~self.class_mask[int(task_label)], MASK_VALUE)

            def forward(self, x: torch.Tensor, task_labels: Any = _NO_LABELS) -> torch.Tensor:
                # one network for every task: mask row-wise instead of splitting the batch
                if task_labels is _NO_LABELS:  # model(x) from a plugin (GSS's scoring)
                    return self.net(x)
                if task_labels is None:  # every known task's outputs, {t: out} (LwF)
                    return super().forward(x, None)
                if isinstance(task_labels, int):
                    return self.forward_single_task(x, task_labels)
                return self.net(x).masked_fill(~self.class_mask[task_labels], MASK_VALUE)

        _MASKED_CLASS = TaskMasked
    return _MASKED_CLASS(net, class_mask)


class AvalancheStrategy(Strategy):
    """Base class of the ``avalanche.*`` strategies: subclasses build the template."""

    batched = False
    Params: ClassVar[type] = AvalancheParams
    needs: ClassVar[tuple[str, ...]] = ()  # extra modules (e.g. quadprog for GEM)
    description = ""

    @classmethod
    def unsupported(cls, info: ScenarioInfo) -> str | None:
        reason = super().unsupported(info)
        if reason:
            return reason
        missing = [m for m in ("avalanche", *cls.needs) if importlib.util.find_spec(m) is None]
        if missing:
            return (f"strategy {cls.name!r} needs {', '.join(missing)} (not installed): "
                    f"{INSTALL_HINT}")
        return None

    # -- to override --------------------------------------------------------------------------
    def build_model(self, factory: ModelFactory, seed: int) -> nn.Module:
        """The network Avalanche trains (plain, or task-masked in the task setting)."""
        net = factory.single(seed)
        if self.info.setting == "task":
            net = task_masked(net, self.info.class_mask())
            net.to(self.device)
        return net

    def build_template(self, model: nn.Module, optimizer: torch.optim.Optimizer,
                       common: dict[str, Any]) -> Any:
        """The Avalanche template for ``model`` (``common``: mb size, epochs, device...)."""
        raise NotImplementedError

    def template_model(self) -> nn.Module:
        """The module clbench evaluates and counts."""
        return self.template.model

    @classmethod
    def missing_requirement(cls) -> str | None:
        """How to install what this strategy needs, when it is not installed (`clbench list`)."""
        return None if avalanche_available() else INSTALL_HINT

    # -- protocol ------------------------------------------------------------------------------
    def setup(self, info, model_factory, seeds, device) -> None:
        require_avalanche()
        for module in self.needs:
            if importlib.util.find_spec(module) is None:
                raise ConfigError(f"strategy {self.name!r} needs {module}", hint=INSTALL_HINT)
        if len(seeds) != 1:
            raise RuntimeError("avalanche strategies run one seed at a time")
        self.info, self.seed, self.device = info, seeds[0], device
        self.factory = model_factory
        self.shuffler = generator(self.seed, Stream.SHUFFLE)
        self.datasets: list[Any] = []
        self.template = self.new_template()

    def new_template(self) -> Any:
        from avalanche.training.plugins import EvaluationPlugin

        model = self.build_model(self.factory, self.seed)
        with warnings.catch_warnings():  # "No loggers specified": on purpose
            warnings.simplefilter("ignore", UserWarning)
            evaluator = EvaluationPlugin(loggers=[])  # no metrics, no loggers
        common = dict(
            criterion=nn.CrossEntropyLoss(),
            train_mb_size=self.params.batch_size,
            train_epochs=self.params.epochs,
            eval_mb_size=max(self.params.batch_size, 256),
            device=self.device,
            evaluator=evaluator,
            eval_every=-1,
        )
        optimizer = make_optimizer(self.params, model.parameters())
        template = self.build_template(model, optimizer, common)
        template.plugins.append(_step_seam(self))
        if self.params.order == "native":
            self._use_native_order(template)
        else:
            self._fetch_tensors(template)
        return template

    def _fetch_tensors(self, template: Any) -> None:
        make_loader = template.make_train_dataloader

        def make_train_dataloader(**kwargs):
            make_loader(**kwargs)
            template.dataloader = fetching_tensors(template.dataloader)

        template.make_train_dataloader = make_train_dataloader

    def _use_native_order(self, template: Any) -> None:
        strategy = self

        def make_train_dataloader(**kwargs):
            rows = TensorRows([template.adapted_dataset])
            template.dataloader = torch.utils.data.DataLoader(
                rows, batch_size=template.train_mb_size, collate_fn=_collated,
                sampler=_EpochPermutation(len(rows), strategy.shuffler),
            )

        template.make_train_dataloader = make_train_dataloader

    def make_dataset(self, experience: Experience) -> Any:
        # 0.6's public constructor for tensor datasets with targets and task labels
        from avalanche.benchmarks.utils import (
            _make_taskaware_tensor_classification_dataset as make_tensor_dataset,
        )

        data = experience.train
        n = len(data)
        x, y, _ = data.batch(torch.arange(n, device=data.rows.device)[None])
        label = experience.task.index if self.info.setting == "task" else 0
        x, y = x[0].cpu(), y[0].cpu()
        return make_tensor_dataset(x, y, targets=y, task_labels=label)

    def stream(self) -> Any:
        """The experiences seen so far, as Avalanche experiences (classes, task labels)."""
        from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets
        from avalanche.benchmarks.scenarios.supervised import with_classes_timeline
        from avalanche.benchmarks.scenarios.task_aware import with_task_labels

        bm = with_task_labels(with_classes_timeline(benchmark_from_datasets(
            train=self.datasets)))
        experiences = list(bm.train_stream)
        for exp in experiences:  # sets -> sorted lists (MultiHeadClassifier indexes with them)
            for attr in ("classes_in_this_experience", "previous_classes",
                         "classes_seen_so_far", "future_classes"):
                setattr(exp, attr, sorted(int(c) for c in getattr(exp, attr)))
        return experiences

    def reseed(self, task: int) -> None:
        s = derive_seed(self.seed, Stream.AVALANCHE_RESEED, task)
        random.seed(s)
        np.random.seed(s % (2**32))
        torch.manual_seed(s)

    def train(self, experience: Experience) -> None:
        self.datasets.append(self.make_dataset(experience))
        stream = self.stream()
        self.reseed(experience.task.index)
        with warnings.catch_warnings():  # Avalanche 0.6's own deprecations (storage policies)
            warnings.simplefilter("ignore", DeprecationWarning)
            self.fit(stream, experience.task.index)

    def fit(self, stream: Any, t: int) -> None:
        self.template.train(stream[t], eval_streams=[], reset_optimizer_state=True)

    @property
    def model(self) -> nn.Module:
        m = self.template_model()
        m.clbench_members = 1
        return m

    def forward(self, x: torch.Tensor, task_ids: torch.Tensor | None) -> torch.Tensor:
        model = self.template_model()
        from avalanche.models import MultiTaskModule

        if isinstance(model, MultiTaskModule):
            return model(x, task_ids if task_ids is not None else torch.zeros(
                x.shape[0], dtype=torch.long, device=x.device))
        return model(x)

    @torch.no_grad()
    def predict(self, x: torch.Tensor, task_ids: torch.Tensor | None) -> torch.Tensor:
        model = self.template_model()
        model.eval()
        out = self.forward(x[0], None if task_ids is None else task_ids[0])
        if out.shape[-1] < self.info.n_outputs:  # heads sized by the classes seen so far
            pad = out.new_full((out.shape[0], self.info.n_outputs - out.shape[-1]), MASK_VALUE)
            out = torch.cat([out, pad], dim=-1)
        return out[None]


def _step_seam(strategy: Strategy) -> Any:
    """An Avalanche plugin that calls ``strategy.step_done`` after every training iteration:
    the harness's per-step seam (continual evaluation, trackers) in the template's own loop.
    Avalanche's periodic evaluation (``eval_every``) scores its own eval streams with its own
    metrics, not the harness's subsets, so it would not give the same points."""
    from avalanche.core import SupervisedPlugin

    class StepSeam(SupervisedPlugin):
        def after_training_iteration(self, template, **kwargs):
            strategy.step_done(template.loss.detach().reshape(1))

    return StepSeam()


# --- Synaptic Intelligence with a working importance on the CPU ------------------------------

def _copy_weights(model, target, excluded_parameters):
    from avalanche.training.plugins import SynapticIntelligencePlugin as SI

    for name, param in SI.allowed_parameters(model, excluded_parameters):
        target[name].data = param.detach().cpu().flatten().clone()


def _copy_grad(model, target, excluded_parameters):
    from avalanche.training.plugins import SynapticIntelligencePlugin as SI

    for name, param in SI.allowed_parameters(model, excluded_parameters):
        target[name].data = param.grad.detach().cpu().flatten().clone()


@contextlib.contextmanager
def _copying_si():
    """Avalanche 0.6's SI stores ``param.detach().cpu().flatten()``: on the CPU that is a view
    of the live weights, so old and new weights are the same tensor, the path integral is
    zero and SI is naive fine-tuning. Within a hook, extract copies instead."""
    from avalanche.training.plugins import SynapticIntelligencePlugin as SI

    saved = SI.__dict__["extract_weights"], SI.__dict__["extract_grad"]
    SI.extract_weights = staticmethod(torch.no_grad()(_copy_weights))
    SI.extract_grad = staticmethod(torch.no_grad()(_copy_grad))
    try:
        yield
    finally:
        SI.extract_weights, SI.extract_grad = saved


def copying_si_plugin(si_lambda: float, eps: float) -> Any:
    """Avalanche's SynapticIntelligencePlugin, with weights/gradients copied (see above)."""
    from avalanche.training.plugins import SynapticIntelligencePlugin

    class CopyingSynapticIntelligencePlugin(SynapticIntelligencePlugin):
        def before_training_exp(self, strategy, **kwargs):
            with _copying_si():
                super().before_training_exp(strategy, **kwargs)

        def before_training_iteration(self, strategy, **kwargs):
            with _copying_si():
                super().before_training_iteration(strategy, **kwargs)

        def after_training_iteration(self, strategy, **kwargs):
            with _copying_si():
                super().after_training_iteration(strategy, **kwargs)

        def after_training_exp(self, strategy, **kwargs):
            with _copying_si():
                super().after_training_exp(strategy, **kwargs)

    return CopyingSynapticIntelligencePlugin(si_lambda=si_lambda, eps=eps)
