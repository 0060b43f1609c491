"""run_command: one shell command in the workspace, sandboxed, bounded, killable.

Each command is a fresh process in its own session. Its output (stdout and stderr merged) is
read as it comes into a tracker that keeps the head and the tail and counts the rest, so what
a killed command printed stays readable. A timeout or a cancellation kills the whole process
group (SIGTERM, then SIGKILL within a second); in bubblewrap that takes the sandbox's PID
namespace, and everything in it, down with it; a cancelled `run_command` re-raises only once
those processes are gone. When the command's own process ends, whatever it left running in
its group is killed too, so nothing outlives a command.

Commands are at-least-once: a crash between a command's end and the journal write runs it
again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel

from restate_app.tools.bounds import OutputBuffer
from restate_app.tools.sandbox import (
    SANDBOX_TMP,
    Identity,
    Launch,
    SandboxConfig,
    bubblewrap_launch,
    hand_over,
    identity_for,
    plain_launch,
    reach_problem,
)

KILL_GRACE_SECONDS = 1.0
# After the command's own process ended: how long the rest of its output may take.
DRAIN_SECONDS = 2.0


class SandboxError(Exception):
    """The command could not be started; the message says why."""


@dataclass
class CommandTracker:
    """The command in flight, readable while it runs and after a cancellation."""

    command: str = ""
    started: bool = False
    running: bool = False
    killed: bool = False
    timed_out: bool = False
    exit_code: int | None = None
    buffer: OutputBuffer = field(default_factory=lambda: OutputBuffer(64_000))

    def begin(self, command: str, max_output_bytes: int) -> None:
        self.command = command
        self.started, self.running, self.killed, self.timed_out = False, False, False, False
        self.exit_code = None
        self.buffer = OutputBuffer(max_output_bytes)

    @property
    def output(self) -> str:
        """What the command printed so far, bounded (head and tail)."""
        return self.buffer.text()

    @property
    def output_bytes(self) -> int:
        return self.buffer.total


class CommandResult(BaseModel):
    exit_code: int | None
    output: str
    timed_out: bool
    killed: bool
    duration_seconds: float
    output_bytes: int


async def run_command(
    config: SandboxConfig,
    ws_root: Path,
    command: str,
    timeout: float | None,  # noqa: ASYNC109 (the command's own limit, enforced on its process)
    tracker: CommandTracker,
) -> CommandResult:
    """Run `command` in `ws_root` under `config`; a cancellation kills it and re-raises."""
    limit = config.timeout_for(timeout)
    tracker.begin(command, config.max_output_bytes)
    identity = identity_for(config, ws_root)
    if identity is not None:
        await asyncio.to_thread(_prepare, ws_root, identity)
    with _home(config, identity) as home:
        if config.mode == "bubblewrap":
            launch = bubblewrap_launch(config, ws_root, command, identity)
        else:
            launch = plain_launch(config, ws_root, command, identity, home)
        started = time.monotonic()
        transport, proto = await _spawn(launch, tracker)
        tracker.started = tracker.running = True
        try:
            await _supervise(transport, proto, tracker, limit)
        finally:
            tracker.running = False
            transport.close()
    return CommandResult(
        exit_code=tracker.exit_code,
        output=tracker.output,
        timed_out=tracker.timed_out,
        killed=tracker.killed,
        duration_seconds=time.monotonic() - started,
        output_bytes=tracker.output_bytes,
    )


def _prepare(ws_root: Path, identity: Identity) -> None:
    """Make the workspace the command's: reachable by its uid, its work tree owned by it."""
    if problem := reach_problem(ws_root.parent):
        raise SandboxError(problem)
    hand_over(ws_root, identity)


class _Watch(asyncio.SubprocessProtocol):
    """Feeds the output to the tracker as it comes; knows when the process has ended (which
    `Process.wait` does not say while a descendant holds the pipe open) and when the pipe is
    closed."""

    def __init__(self, tracker: CommandTracker) -> None:
        loop = asyncio.get_running_loop()
        self.tracker = tracker
        self.exited: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        self.tracker.buffer.feed(data)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)


async def _spawn(
    launch: Launch, tracker: CommandTracker
) -> tuple[asyncio.SubprocessTransport, _Watch]:
    identity = launch.identity
    loop = asyncio.get_running_loop()
    try:
        return await loop.subprocess_exec(
            lambda: _Watch(tracker),
            *launch.argv,
            cwd=launch.cwd,
            env=launch.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            pass_fds=launch.pass_fds,
            user=identity.uid if identity else None,
            group=identity.gid if identity else None,
            extra_groups=[] if identity else None,
            preexec_fn=launch.preexec,
        )
    except OSError as exc:
        raise SandboxError(f"could not start the command: {exc}") from exc
    finally:
        for fd in launch.pass_fds:
            os.close(fd)


async def _supervise(
    transport: asyncio.SubprocessTransport, proto: _Watch, tracker: CommandTracker, limit: float
) -> None:
    """Wait for the command to end or `limit` to pass; kill on timeout and on cancellation
    (then re-raise); record how it ended in `tracker`."""
    pgid = transport.get_pid()
    try:
        async with asyncio.timeout(limit):
            await asyncio.shield(proto.exited)
    except TimeoutError:
        tracker.timed_out = tracker.killed = True
        await _kill_group(pgid, proto)
    except BaseException:  # cancelled: _kill_group signals before its first await
        tracker.killed = True
        await _kill_group(pgid, proto)
        raise
    # Whatever the command left running in its group goes with it.
    _signal_group(pgid, signal.SIGKILL)
    with contextlib.suppress(TimeoutError):
        # The rest of the output; a process that escaped the group and holds the pipe open
        # is not waited for.
        await asyncio.wait_for(asyncio.shield(proto.closed), DRAIN_SECONDS)
    code = transport.get_returncode()
    if not tracker.killed and code is not None:
        tracker.exit_code = code if code >= 0 else 128 - code


async def _kill_group(pgid: int, proto: _Watch) -> None:
    """SIGTERM the group, SIGKILL it a second later at most, and return only once the
    command's children are gone too. In bubblewrap the group is bwrap itself, and its child
    the sandbox's init: bwrap's death kills that init (--die-with-parent), and the init's
    death the whole PID namespace, whatever session the command moved into."""
    children = _child_pidfds(pgid)
    _signal_group(pgid, signal.SIGTERM)
    try:
        try:
            await asyncio.wait_for(asyncio.shield(proto.exited), KILL_GRACE_SECONDS)
        except TimeoutError:
            pass
        finally:
            _signal_group(pgid, signal.SIGKILL)
        for pidfd in children:
            if not await _pidfd_exited(pidfd, KILL_GRACE_SECONDS):
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                await _pidfd_exited(pidfd, KILL_GRACE_SECONDS)
    finally:
        for pidfd in children:
            os.close(pidfd)


def _child_pidfds(pid: int) -> list[int]:
    """pidfds of `pid`'s children, each checked to be its child once pinned by the pidfd, so
    a reused pid can never be signalled."""
    try:
        listed = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:  # no such process, or a kernel without the file: bwrap's own kill holds
        return []
    pidfds = []
    for child in map(int, listed):
        try:
            pidfd = os.pidfd_open(child)
        except OSError:
            continue
        if _parent_of(child) == pid:
            pidfds.append(pidfd)
        else:
            os.close(pidfd)
    return pidfds


def _parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


async def _pidfd_exited(pidfd: int, seconds: float) -> bool:
    """Wait (at most `seconds`) for the process behind `pidfd` to end; True when it did."""
    loop = asyncio.get_running_loop()
    ended: asyncio.Future[None] = loop.create_future()

    def readable() -> None:
        if not ended.done():
            ended.set_result(None)

    loop.add_reader(pidfd, readable)
    try:
        await asyncio.wait_for(ended, seconds)
    except TimeoutError:
        return False
    finally:
        loop.remove_reader(pidfd)
    return True


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


@contextlib.contextmanager
def _home(config: SandboxConfig, identity: Identity | None) -> Iterator[Path]:
    """HOME and TMPDIR of a command: bubblewrap's private /tmp, else a fresh directory
    owned by the command's uid and removed afterwards."""
    if config.mode == "bubblewrap":
        yield Path(SANDBOX_TMP)
        return
    home = Path(tempfile.mkdtemp(prefix="agent-home-"))
    try:
        if identity is not None:
            os.chown(home, identity.uid, identity.gid)
        yield home
    finally:
        shutil.rmtree(home, ignore_errors=True)
