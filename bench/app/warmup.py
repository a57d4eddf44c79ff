"""A process's one-time costs, paid before any group's timer starts.

The first group a process trains would otherwise pay for what the process does once: lazy
imports at the first optimiser step, the first kernels of a backbone, a device's context and
library handles (CUDA, cuBLAS, cuDNN), decoding a dataset into the in-process cache. Recorded as
that group's wall time, they made a strategy's time depend on its position in the suite.
:func:`warm_up` does that work once per process for each scenario (its data and backbone) on the
run's device; the seconds spent are recorded in each result's identity (``warmup_s``), never in
its times. It trains nothing that is kept and runs before the group seeds the process, so no
result changes.
"""

from __future__ import annotations

import time
from typing import Any

import torch
import torch.nn.functional as F

from clbench.budget import get_budget
from clbench.errors import ClbenchError
from clbench.models import ModelFactory
from clbench.spec import RunSpec, make_scenario

_WARM: set[tuple[Any, ...]] = set()  # (device, scenario, its params, backbone) warmed up
_SECONDS = 0.0  # this process's warm-up so far
WARMUP_ROWS = 8  # inputs per member of the warm-up step


def warmup_seconds() -> float:
    """Seconds this process has spent warming up (recorded as ``identity.warmup_s``)."""
    return _SECONDS


def warm_up(spec: RunSpec, members: int, device: torch.device, data: Any) -> float:
    """Decode ``spec``'s scenario data onto ``device`` and run one forward, backward and
    optimiser step (SGD and Adam) and one evaluation forward of its backbone with ``members``
    members, once per process and scenario; returns this process's warm-up seconds so far.

    Bad input (missing data) raises ClbenchError, as the group would; any other exception ends
    the warm-up quietly: the group meets it again and records it as its own failure."""
    global _SECONDS
    key = (str(device), spec.scenario, spec.scenario_params, spec.backbone)
    if key in _WARM:
        return _SECONDS
    _WARM.add(key)
    t0 = time.perf_counter()
    try:
        _step(spec, members, device, data)
    except ClbenchError:
        raise
    except Exception:  # the group's own run reports it
        pass
    finally:
        _SECONDS += time.perf_counter() - t0
    return _SECONDS


def _step(spec: RunSpec, members: int, device: torch.device, data: Any) -> None:
    scenario = make_scenario(spec.scenario, dict(spec.scenario_params))
    built = scenario.build([spec.seed] * members, get_budget(spec.budget), device, data)
    info, train = built.info, built.train[0]
    n = min(WARMUP_ROWS, len(train))
    if n == 0:
        return
    x, y, _ = train.batch(torch.arange(n, device=train.rows.device).expand(members, -1))
    model = ModelFactory(info.backbone, info.input_shape, info.n_outputs, device)(
        list(range(members)))
    with torch.enable_grad():
        for optimizer in (torch.optim.SGD(model.parameters(), lr=0.0, momentum=0.9),
                          torch.optim.Adam(model.parameters(), lr=0.0)):
            model.train()
            logits = model(x)
            F.cross_entropy(logits.flatten(0, 1), y.flatten()).backward()
            optimizer.step()
            optimizer.zero_grad()
    model.eval()
    with torch.no_grad():
        model(x).argmax(-1)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
