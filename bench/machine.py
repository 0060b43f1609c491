"""A description of the machine a benchmark ran on, for the report."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import psutil

from sandbox.stack import RESTATE_SERVER


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def restate_version() -> str:
    try:
        out = subprocess.run(  # noqa: S603 (fixed argv, our pinned binary)
            [str(RESTATE_SERVER), "--version"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def describe() -> dict[str, str]:
    """CPU, cores, memory, OS, Python and the versions of what is measured."""
    mem_gib = psutil.virtual_memory().total / 2**30
    return {
        "CPU": cpu_model(),
        "cores": f"{os.cpu_count()} logical ({psutil.cpu_count(logical=False)} physical)",
        "memory": f"{mem_gib:.1f} GiB",
        "OS": platform.platform(),
        "Python": sys.version.split()[0],
        "Restate server": restate_version(),
        "restate-sdk": metadata.version("restate-sdk"),
        # Other work on the machine skews every figure: say how busy it was.
        "load average (1, 5, 15 min, at the end)": ", ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
