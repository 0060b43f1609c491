"""Small helpers for the subprocesses the tools start (git, ripgrep)."""

from __future__ import annotations

import asyncio
import contextlib


async def reap(proc: asyncio.subprocess.Process) -> None:
    """Kill `proc` if it still runs, and wait for it: no process outlives its caller."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
