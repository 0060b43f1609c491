"""What tools cost: a reply killing a running command, and a tool call's durable step.

Kill: each run starts `sleep 600` in the sandbox (a stand-in for a long test suite); once the
process is seen, a reply is sent to the bot and the process is watched until it is gone.
Overhead: one model turn asks for `CALLS` sandboxed `true` commands; the time between that
model call ending and the next one starting, per call, against the same command run through
the same sandbox code directly in this process (and a bare `true` subprocess for scale).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import psutil

from bench.clients import Control, SlackEvents
from bench.stats import Summary
from restate_app.tools.commands import CommandTracker, run_command
from restate_app.tools.sandbox import SandboxConfig

CALLS = 20
POLL_SECONDS = 0.001
T = TypeVar("T")
_ids = itertools.count(1)


@dataclass(frozen=True)
class ToolResults:
    kill_ms: Summary
    step_ms: Summary
    sandboxed_ms: Summary
    bare_ms: Summary


def _find(marker: str) -> psutil.Process | None:
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if marker in " ".join(proc.info["cmdline"] or []) and proc.name() != "bwrap":
                return proc
        except psutil.Error:
            continue
    return None


def _children(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return list(proc.children(recursive=True))
    except psutil.Error:
        return []


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


async def _until(check: Callable[[], T | None], seconds: float, what: str) -> T:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        await asyncio.sleep(POLL_SECONDS * 5)
    raise TimeoutError(f"timed out waiting for {what}")


async def kill_latency(events: SlackEvents, control: Control, channel: str) -> float:
    """Reply sent to the bot → the running command's process gone (ms)."""
    marker = f"bench-kill-{next(_ids)}-{time.time_ns()}"
    # Two commands, so the shell stays (a single one would be exec'd, losing the marker).
    command = {"name": "run_command", "arguments": {"command": f"sleep 600; echo {marker}"}}
    await control.script({"tool_calls": [command]}, {"text": "ok"})
    root = await events.mention(channel, f"{marker} run the long suite")
    for event in root.events:
        await events.send(event)
    shell = await _until(lambda: _find(marker), 30, "the command to start")
    group = [shell, *await _until(lambda: _children(shell), 30, "the command's sleep")]
    reply = await events.reply(root, f"{marker} stop that")
    sent_at = (await events.send(reply.events[0])).sent_at
    await _until(lambda: not any(map(_alive, group)), 30, "the command to be killed")
    gone = time.time()
    await _settled(control, f"{marker} stop that")
    return (gone - sent_at) * 1000


async def _settled(control: Control, text: str) -> None:
    """Wait for the replacement run's model request, so it cannot take the next script."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        requests = await control.model_requests()
        if any(text in str(r.get("messages")) and r.get("finished_at") for r in requests):
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"no model request for {text!r}")


async def step_overhead(events: SlackEvents, control: Control, channel: str) -> list[float]:
    """Per sandboxed `true` run as a durable tool step (ms), from the model's request log."""
    marker = f"bench-steps-{next(_ids)}-{time.time_ns()}"
    calls = [{"name": "run_command", "arguments": {"command": "true"}}] * CALLS
    await control.script({"tool_calls": calls}, {"text": "done"})
    since = time.time()
    root = await events.mention(channel, f"{marker} run true")
    for event in root.events:
        await events.send(event)

    async def both() -> list[dict[str, object]] | None:
        found = [r for r in await control.model_requests(since) if marker in str(r.get("messages"))]
        return found if len(found) >= 2 and found[1].get("received_at") else None

    deadline = time.monotonic() + 120
    requests = None
    while requests is None and time.monotonic() < deadline:
        requests = await both()
        await asyncio.sleep(0.05)
    if requests is None:
        raise TimeoutError("the run with tool calls did not reach its second model call")
    first_end = float(str(requests[0]["finished_at"]))
    second_start = float(str(requests[1]["received_at"]))
    return [(second_start - first_end) * 1000 / CALLS]


async def direct(config: SandboxConfig, count: int) -> tuple[list[float], list[float]]:
    """The same command through the sandbox code in this process, and a bare subprocess."""
    sandboxed, bare = [], []
    with tempfile.TemporaryDirectory(prefix="bench-tools-") as tmp:
        root = Path(tmp)
        # Commands run as another uid, which must reach the folder.
        os.chmod(tmp, 0o711)  # noqa: S103 (search only, no read or write)
        for _ in range(count):
            started = time.perf_counter()
            await run_command(config, root, "true", None, CommandTracker())
            sandboxed.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            proc = await asyncio.create_subprocess_exec("true")
            await proc.wait()
            bare.append((time.perf_counter() - started) * 1000)
    return sandboxed, bare


async def run(
    events: SlackEvents, control: Control, channels: list[str], kills: int, step_runs: int
) -> ToolResults:
    channel = itertools.cycle(channels)
    kill = [await kill_latency(events, control, next(channel)) for _ in range(kills)]
    steps: list[float] = []
    for _ in range(step_runs):
        steps += await step_overhead(events, control, next(channel))
    sandboxed, bare = await direct(SandboxConfig(), CALLS * max(1, step_runs))
    await control.clear_script()
    return ToolResults(
        kill_ms=Summary.of(kill),
        step_ms=Summary.of(steps),
        sandboxed_ms=Summary.of(sandboxed),
        bare_ms=Summary.of(bare),
    )
