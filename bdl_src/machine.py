"""What the book was built on: CPU model, cores, memory, library versions, device."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import pyro
import torch


def cpu_model() -> str:
    info = Path("/proc/cpuinfo")
    if info.is_file():
        for line in info.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def describe() -> dict[str, str]:
    """A flat description of this machine, for the results page and the benchmark."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    return {
        "cpu": cpu_model(),
        "cores": str(os.cpu_count()),
        "threads used by torch": str(torch.get_num_threads()),
        "device": torch.cuda.get_device_name(0) if device == "cuda" else "CPU only",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "pyro": pyro.__version__,
    }
