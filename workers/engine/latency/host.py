"""Facts about the machine a profile ran on, recorded with every result.

A latency number means little without the CPU, the cores the process could
use, the memory, the GPU and driver, the library versions, and how busy the
machine was: the load average is read before and after the profile so a
reader can tell a quiet run from one that shared the CPU with other work.
Everything is read from ``/proc``, ``/sys``, the package metadata and
``nvidia-smi``; nothing here imports a runtime library.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from workers.engine.latency._json import json_dict

__all__ = [
    "LIBRARIES",
    "GpuFacts",
    "HostFacts",
    "cpu_model",
    "gpu_facts",
    "host_facts",
    "load_average",
]

#: Distributions whose versions a profile records (absent ones are skipped).
LIBRARIES: tuple[str, ...] = (
    "numpy",
    "scipy",
    "onnx",
    "onnxruntime",
    "onnxruntime-gpu",
    "openvino",
    "torch",
    "tensorrt",
    "ai-edge-litert",
)


@dataclass(frozen=True)
class GpuFacts:
    """One NVIDIA GPU as ``nvidia-smi`` reports it."""

    index: int
    name: str
    driver_version: str
    memory_total_bytes: int | None


@dataclass(frozen=True)
class HostFacts:
    """The machine, the process's share of it, and the software that ran the profile.

    ``cpu_affinity`` is how many CPUs this process may run on and
    ``cpu_quota`` the cgroup CPU limit in CPUs (``None`` when unlimited or
    unknown): in a container either can be far below ``cpu_logical``.
    ``gpus`` is empty with ``gpu_reason`` saying why (no ``nvidia-smi``, no
    device). Load averages are ``(1, 5, 15)``-minute figures, ``None`` where
    the platform has none.
    """

    cpu_model: str
    cpu_logical: int
    cpu_physical: int | None
    cpu_affinity: int | None
    cpu_quota: float | None
    memory_total_bytes: int | None
    memory_available_bytes: int | None
    os: str
    python: str
    libraries: dict[str, str]
    gpus: tuple[GpuFacts, ...] = ()
    gpu_reason: str | None = None
    load_before: tuple[float, float, float] | None = None
    load_after: tuple[float, float, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        return json_dict(self)


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read()
    except OSError:
        return None


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else :func:`platform.processor`)."""
    text = _read("/proc/cpuinfo") or ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        # x86 says "model name"; some ARM kernels only give "Hardware" or "CPU part".
        if key.strip() in ("model name", "Hardware", "Processor") and value.strip():
            return value.strip()
    return platform.processor() or platform.machine() or "unknown"


def _physical_cores() -> int | None:
    text = _read("/proc/cpuinfo")
    if not text:
        return None
    cores: set[tuple[str, str]] = set()
    physical = core = ""
    for line in text.splitlines() + [""]:
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "physical id":
            physical = value.strip()
        elif key == "core id":
            core = value.strip()
        elif not line.strip():
            if core:
                cores.add((physical, core))
            physical = core = ""
    return len(cores) or None


def _cpu_quota() -> float | None:
    # cgroup v2 first ("max 100000" or "200000 100000"), then v1.
    text = _read("/sys/fs/cgroup/cpu.max")
    if text:
        quota, _, period = text.strip().partition(" ")
        if quota != "max" and period:
            with contextlib.suppress(ValueError, ZeroDivisionError):
                return int(quota) / int(period)
        return None
    quota_text = _read("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
    period_text = _read("/sys/fs/cgroup/cpu/cpu.cfs_period_us")
    if quota_text and period_text:
        with contextlib.suppress(ValueError, ZeroDivisionError):
            quota_us = int(quota_text)
            if quota_us > 0:
                return quota_us / int(period_text)
    return None


def _meminfo() -> tuple[int | None, int | None]:
    text = _read("/proc/meminfo") or ""
    found: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        parts = value.split()
        if parts and parts[0].isdigit():
            found[key.strip()] = int(parts[0]) * 1024
    return found.get("MemTotal"), found.get("MemAvailable")


def load_average() -> tuple[float, float, float] | None:
    """The 1, 5 and 15-minute load averages, or ``None`` where the OS has none."""
    try:
        one, five, fifteen = os.getloadavg()
    except (OSError, AttributeError):
        return None
    return (round(one, 2), round(five, 2), round(fifteen, 2))


def _libraries(names: tuple[str, ...]) -> dict[str, str]:
    versions: dict[str, str] = {}
    for name in names:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    return versions


def gpu_facts(timeout: float = 10.0) -> tuple[tuple[GpuFacts, ...], str | None]:
    """The NVIDIA GPUs ``nvidia-smi`` lists, or ``((), reason)``.

    ``nvidia-smi`` is used rather than CUDA so this process never initialises
    CUDA (which would break a forking worker pool) just to describe the host.
    """
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return (), "nvidia-smi not found: no NVIDIA driver on this host"
    try:
        done = subprocess.run(
            [exe, "--query-gpu=index,name,driver_version,memory.total", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return (), f"nvidia-smi failed: {type(exc).__name__}"
    if done.returncode != 0:
        message = " ".join((done.stderr or done.stdout).split())[:200]
        return (), f"nvidia-smi failed: {message or f'exit status {done.returncode}'}"
    gpus: list[GpuFacts] = []
    for line in done.stdout.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 4:
            continue
        memory = int(float(parts[3]) * 1024 * 1024) if parts[3].replace(".", "", 1).isdigit() else None
        gpus.append(GpuFacts(int(parts[0]) if parts[0].isdigit() else len(gpus), parts[1], parts[2], memory))
    return tuple(gpus), (None if gpus else "nvidia-smi lists no GPU")


def host_facts(*, libraries: tuple[str, ...] = LIBRARIES, with_gpu: bool = True) -> HostFacts:
    """Describe this host now; ``load_before`` is the current load average.

    Parameters
    ----------
    libraries:
        Distribution names whose installed versions to record.
    with_gpu:
        Whether to ask ``nvidia-smi`` (skipped: ``gpu_reason`` says so).
    """
    try:
        affinity: int | None = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = None
    total, available = _meminfo()
    gpus, reason = gpu_facts() if with_gpu else ((), "not queried")
    return HostFacts(
        cpu_model=cpu_model(),
        cpu_logical=os.cpu_count() or 0,
        cpu_physical=_physical_cores(),
        cpu_affinity=affinity,
        cpu_quota=_cpu_quota(),
        memory_total_bytes=total,
        memory_available_bytes=available,
        os=platform.platform(),
        python=sys.version.split()[0],
        libraries=_libraries(libraries),
        gpus=gpus,
        gpu_reason=reason,
        load_before=load_average(),
    )
