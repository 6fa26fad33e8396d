"""Timing and memory helpers for the benchmark suite: medians with p95, RSS, CPU time.

Every figure is a `Figure`: a name, the number of runs, the median and the 95th
percentile. Comparisons are made by the caller from figures of the same run.
Does not decide what to measure and asserts nothing.
"""

from __future__ import annotations

import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass


@dataclass
class Figure:
    section: str
    name: str
    n: int
    p50: float
    p95: float
    unit: str
    note: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default), q in [0, 100]."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def figure(section: str, name: str, values: Sequence[float], unit: str, note: str = "") -> Figure:
    values = list(values)
    return Figure(section, name, len(values), statistics.median(values) if values else float("nan"),
                  percentile(values, 95), unit, note)  # fmt: skip


def time_calls(fn: Callable[[], object], repeat: int, *, scale: float = 1000.0) -> list[float]:
    """Wall time of `repeat` calls, in milliseconds by default."""
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * scale)
    return out


def rss_mb(pid: int | str = "self") -> float:
    """Resident memory of this process (or of `pid`) now, MB (from /proc; 0 where unavailable)."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_process(args: Sequence[str], *, cwd: str, timeout: float = 600,
                env: dict | None = None) -> tuple[float, float, subprocess.CompletedProcess]:  # fmt: skip
    """(wall seconds, CPU seconds, result) of a child process run to completion."""
    cpu_before = children_cpu_seconds()
    start = time.perf_counter()
    result = subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, timeout=timeout,
                            env=env)  # fmt: skip
    wall = time.perf_counter() - start
    return wall, children_cpu_seconds() - cpu_before, result


def process_cpu_seconds(pid: int) -> float:
    """user+sys CPU seconds of another process so far (from /proc; 0 where unavailable)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def self_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def load_average() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def machine() -> dict:
    """What the numbers were measured on."""
    cpu = platform.processor() or ""
    memory_gb = 0.0
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next((line.split(":", 1)[1].strip() for line in handle
                        if line.startswith("model name")), cpu)  # fmt: skip
        with open("/proc/meminfo") as handle:
            memory_gb = round(int(handle.readline().split()[1]) / 1024**2, 1)
    except (OSError, StopIteration):
        pass
    versions = {}
    for package in ("numpy", "torch", "sentence_transformers", "onnxruntime", "faiss", "bm25s",
                    "gradio", "gradio_client", "txtai"):  # fmt: skip
        versions[package] = package_version(package)
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": memory_gb,
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "versions": versions,
    }


def package_version(module: str) -> str | None:
    from importlib import metadata

    names = {"faiss": "faiss-cpu", "sentence_transformers": "sentence-transformers",
             "gradio_client": "gradio_client"}  # fmt: skip
    try:
        return metadata.version(names.get(module, module))
    except metadata.PackageNotFoundError:
        return None
