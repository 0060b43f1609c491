"""CPU and peak memory of each process of the stack while a benchmark runs (psutil).

A process counts with its children: `restate-server` is a Node.js launcher around the native
server binary, and both are part of what it costs to run Restate here.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

import psutil


@dataclass(frozen=True)
class Usage:
    """One process over a window: CPU in cores (1.0 = one core busy) and peak RSS."""

    name: str
    cpu_cores: float
    peak_rss_mib: float


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _cpu_seconds(procs: list[psutil.Process]) -> float:
    total = 0.0
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


def _rss(procs: list[psutil.Process]) -> int:
    total = 0
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += proc.memory_info().rss
    return total


class Sampler:
    """Samples RSS every `interval` seconds and CPU time at the window's ends."""

    def __init__(self, pids: dict[str, int], interval: float = 0.5) -> None:
        self._trees = {name: _tree(pid) for name, pid in pids.items()}
        self._interval = interval
        self._peak = dict.fromkeys(self._trees, 0)
        self._cpu0 = {name: _cpu_seconds(t) for name, t in self._trees.items()}
        self._t0 = time.monotonic()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._cpu0 = {name: _cpu_seconds(t) for name, t in self._trees.items()}
        self._task = asyncio.create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            for name, tree in self._trees.items():
                self._peak[name] = max(self._peak[name], _rss(tree))
            await asyncio.sleep(self._interval)

    async def stop(self) -> list[Usage]:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        wall = max(time.monotonic() - self._t0, 1e-9)
        return [
            Usage(
                name=name,
                cpu_cores=(_cpu_seconds(tree) - self._cpu0[name]) / wall,
                peak_rss_mib=max(self._peak[name], _rss(tree)) / 2**20,
            )
            for name, tree in self._trees.items()
        ]
