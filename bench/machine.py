"""The machine line every benchmark prints: CPU model, cores, Python and the package versions.

Versions come from the installed distributions' metadata, so printing them imports neither
torch nor fastai (a timed child or a script that only drives an engine stays light).
"""
from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else what `platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "?"


def machine() -> str:
    """Platform, CPU, cores, Python, torch and fastai, on one line."""
    return (f"{platform.platform()}, {cpu_model()}, {os.cpu_count()} CPUs, Python "
            f"{platform.python_version()}, torch {version('torch')}, fastai {version('fastai')}")
