"""The process-wide state every run shares, so that no run can change it for the runs after it.

A strategy (a plugin above all) may change global torch settings: the default dtype or device,
grad mode, deterministic algorithms, the thread count... In a process that trains one group
after another, the next run would inherit the change, and its failure (or its silently
different numbers) would be recorded against an innocent strategy. :func:`snapshot` records
the settings before a group; :func:`restore` puts them back after it and names each one the
group changed, so the runner fails the group that changed them (the cached datasets are checked
by :func:`clbench.scenarios.data.changed_datasets`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import Any

import torch


@dataclasses.dataclass(frozen=True)
class Setting:
    """One global setting: how to read it and how to put a value back."""

    name: str
    get: Callable[[], Any]
    set: Callable[[Any], None]


def _set_default_device(device: torch.device) -> None:
    # cpu is torch's default: clear the setting rather than pin cpu
    torch.set_default_device(None if device == torch.device("cpu") else device)


def _set_deterministic(value: tuple[bool, bool]) -> None:
    torch.use_deterministic_algorithms(value[0], warn_only=value[1])


def _cudnn(name: str) -> Setting:
    cudnn = torch.backends.cudnn
    return Setting(f"torch.backends.cudnn.{name}", lambda: getattr(cudnn, name),
                   lambda v: setattr(cudnn, name, v))


SETTINGS: tuple[Setting, ...] = (
    Setting("the default dtype", torch.get_default_dtype, torch.set_default_dtype),
    Setting("the default device", torch.get_default_device, _set_default_device),
    Setting("grad mode (torch.set_grad_enabled)", torch.is_grad_enabled,
            torch.set_grad_enabled),
    Setting("deterministic algorithms (torch.use_deterministic_algorithms, warn_only)",
            lambda: (torch.are_deterministic_algorithms_enabled(),
                     torch.is_deterministic_algorithms_warn_only_enabled()),
            _set_deterministic),
    Setting("the number of torch threads", torch.get_num_threads, torch.set_num_threads),
    Setting("anomaly detection", torch.is_anomaly_enabled, torch.set_anomaly_enabled),
    Setting("the float32 matmul precision", torch.get_float32_matmul_precision,
            torch.set_float32_matmul_precision),
    Setting("torch.backends.cuda.matmul.allow_tf32",
            lambda: torch.backends.cuda.matmul.allow_tf32,
            lambda v: setattr(torch.backends.cuda.matmul, "allow_tf32", v)),
    _cudnn("enabled"), _cudnn("benchmark"), _cudnn("deterministic"), _cudnn("allow_tf32"),
    Setting("the working directory", os.getcwd, os.chdir),
)


def snapshot() -> dict[str, Any]:
    """The value of every global setting now."""
    return {s.name: s.get() for s in SETTINGS}


def restore(before: dict[str, Any]) -> list[str]:
    """Puts back every setting that differs from ``before``; one line per setting changed
    (``name: before -> now``), empty when none was."""
    changed = []
    for s in SETTINGS:
        now = s.get()
        if now != before[s.name]:
            changed.append(f"{s.name}: {before[s.name]} -> {now}")
            s.set(before[s.name])
    return changed
