"""What machine a result came from: CPU model, cores, torch, ATen's vector instructions, threads,
whether the C++ loops ran, and the date. Results are reproducible on one machine to the bit and
across machines only in their statistics, so every generated table says where it was made.

    python -m src.machine          # this machine, one line
"""

from __future__ import annotations

import datetime
import os
import platform
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``; elsewhere what :mod:`platform` says)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in {"model name", "Model", "Hardware"} and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def describe(threads: int | None = None) -> dict[str, str]:
    """This machine, as the fields of a results header (strings, JSON-ready). ``threads``:
    the torch threads the runs used, when they differ from this process's."""
    import torch

    from src.cells import native

    return {
        "cpu": cpu_model(),
        "arch": platform.machine(),
        "cores": str(os.cpu_count()),
        "torch": torch.__version__,
        "aten_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": str(threads or torch.get_num_threads()),
        "cpp_loops": "yes" if native.load() else f"no ({native._state.get('why', '')})",
        "python": platform.python_version(),
        "date": datetime.date.today().isoformat(),
    }


def line(info: dict[str, str] | None = None) -> str:
    """The machine in one line: ``AMD EPYC, 2 cores (x86_64, AVX512), torch 2.13.0+cpu, ...``."""
    m = info or describe()
    return (f"{m['cpu']}, {m['cores']} cores ({m['arch']}, {m['aten_cpu_capability']}), "
            f"torch {m['torch']}, {m['threads']} thread(s) a job, C++ loops {m['cpp_loops']}, "
            f"{m['date']}")


if __name__ == "__main__":
    print(line())
