"""The run identity: which code, on which software and hardware, produced a result.

torch is imported only to describe a run's device: reports read ``clbench_version`` without it.
"""

from __future__ import annotations

import functools
import os
import platform
import subprocess
import sys
from importlib import metadata
from typing import TYPE_CHECKING, Any

from clbench.schema import GitState, RunIdentity

if TYPE_CHECKING:
    import torch


def clbench_version() -> str:
    try:
        return metadata.version("clbench")
    except metadata.PackageNotFoundError:
        return "unknown"


@functools.cache
def git_state(cwd: str | None = None) -> dict[str, Any]:
    """Commit and dirty flag of the git checkout the run was started in (None outside one)."""
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                                 timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    sha = git("rev-parse", "HEAD")
    if sha is None:
        return {"sha": None, "dirty": None}
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"sha": sha, "dirty": bool(status) if status is not None else None}


@functools.cache
def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: torch.device) -> str:
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return cpu_name()


def run_identity(device: torch.device, executor: str = "local",
                 warmup_s: float | None = None) -> RunIdentity:
    import torch

    git = git_state(os.getcwd())
    return RunIdentity(
        clbench_version=clbench_version(),
        git=GitState(sha=git["sha"], dirty=git["dirty"]),
        python=platform.python_version(),
        torch=torch.__version__,
        cuda=torch.version.cuda if device.type == "cuda" else None,
        platform=platform.platform(),
        cpu=cpu_name(),
        cpu_count=os.cpu_count(),
        torch_threads=torch.get_num_threads(),
        device=str(device),
        device_name=device_name(device),
        argv=tuple(sys.argv[1:]),
        host=platform.node() or None,
        executor=executor,
        warmup_s=warmup_s,
    )
