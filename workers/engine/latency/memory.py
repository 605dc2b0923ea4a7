"""Process memory during a profile cell: peak resident set size, and GPU memory.

Linux keeps the process's peak RSS (``VmHWM`` in ``/proc/self/status``) and
lets the process reset it by writing ``5`` to ``/proc/self/clear_refs``; the
peak is then the peak of one cell (its load, warm-up and measurement) rather
than of everything the worker did before. Where the reset is refused, the
peak is the process's lifetime peak and :attr:`MemoryUsage.peak_scope` says
so. Other platforms fall back to ``resource.getrusage``, which has only the
lifetime peak.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any

from workers.engine.latency._json import json_dict

__all__ = ["MemoryProbe", "MemoryUsage", "gpu_process_memory", "read_rss"]


@dataclass(frozen=True)
class MemoryUsage:
    """Memory seen over one profile cell, in bytes.

    ``peak_scope`` is ``"cell"`` when the peak was reset at the start of the
    cell and ``"process"`` when it could not be (then it may come from
    earlier work of the same process). ``gpu_bytes`` is the GPU memory this
    process held after the measurement, or ``None`` with ``gpu_reason``.
    """

    rss_before_bytes: int | None
    rss_after_bytes: int | None
    peak_rss_bytes: int | None
    peak_scope: str
    gpu_bytes: int | None
    gpu_reason: str | None

    def to_dict(self) -> dict[str, Any]:
        return json_dict(self)


def _status() -> dict[str, int]:
    found: dict[str, int] = {}
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    key, _, value = line.partition(":")
                    found[key] = int(value.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return found


def read_rss() -> tuple[int | None, int | None]:
    """``(current RSS, peak RSS)`` of this process in bytes; ``None`` where unknown."""
    found = _status()
    if found:
        return found.get("VmRSS"), found.get("VmHWM")
    try:
        import resource
    except ImportError:  # not on Windows
        return None, None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return None, int(peak) if os.uname().sysname == "Darwin" else int(peak) * 1024


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
    except OSError:
        return False
    return True


def gpu_process_memory(device: str, timeout: float = 10.0) -> tuple[int | None, str | None]:
    """GPU memory held by this process now, via ``nvidia-smi``, or ``(None, reason)``.

    Only NVIDIA devices (``"cuda"``, ``"cuda:N"``, ``"gpu"``) are queried; a
    CPU run answers ``(None, "device is the CPU")``. ``nvidia-smi`` inside a
    container often cannot see process ids, in which case the reason says so.
    """
    if not device.lower().startswith(("cuda", "gpu")):
        return None, f"device {device!r} has no GPU memory"
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None, "nvidia-smi not found"
    try:
        done = subprocess.run(
            [exe, "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"nvidia-smi failed: {type(exc).__name__}"
    if done.returncode != 0:
        return None, f"nvidia-smi failed with exit status {done.returncode}"
    pid = str(os.getpid())
    total = 0
    seen = False
    for line in done.stdout.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 2 and parts[0] == pid and parts[1].isdigit():
            total += int(parts[1]) * 1024 * 1024
            seen = True
    if not seen:
        return None, "nvidia-smi lists no GPU memory for this process (in a container it may not see process ids)"
    return total, None


class MemoryProbe:
    """Reset the peak RSS at :meth:`start`, read it back at :meth:`stop`.

    Parameters
    ----------
    device:
        The cell's device, to decide whether GPU memory is read.
    """

    def __init__(self, device: str) -> None:
        self.device = device
        self._before: int | None = None
        self._scope = "process"

    def start(self) -> None:
        """Reset the peak (where allowed) and note the current RSS."""
        self._scope = "cell" if _reset_peak() else "process"
        self._before = read_rss()[0]

    def stop(self) -> MemoryUsage:
        """Read the peak and current RSS and the GPU memory."""
        rss, peak = read_rss()
        gpu, reason = gpu_process_memory(self.device)
        return MemoryUsage(
            rss_before_bytes=self._before,
            rss_after_bytes=rss,
            peak_rss_bytes=peak,
            peak_scope=self._scope if peak is not None else "unknown",
            gpu_bytes=gpu,
            gpu_reason=reason,
        )
