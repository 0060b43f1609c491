"""run_command for real: bubblewrap, an unprivileged uid, limits, kills that leave nothing.

Every check that a process is gone polls with a deadline (a killed process can take a moment
to be reaped); nothing here asserts how long anything took.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from restate_app.tools import files
from restate_app.tools.commands import CommandTracker, SandboxError, run_command
from restate_app.tools.sandbox import SandboxConfig, identity_for, sandbox_problem
from restate_app.tools.workspace import Workspace, Workspaces
from tests.tools.conftest import git

BWRAP = SandboxConfig()
NONE = SandboxConfig(mode="none")
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="commands change uid only under root")


def live(config: SandboxConfig, ws: Workspace, token: str) -> list[psutil.Process]:
    """Processes still running (not zombies) that belong to the workspace's commands: its
    sandbox uid when we are root, else anything whose command line carries `token`."""
    identity = identity_for(config, ws.root)
    found = []
    for proc in psutil.process_iter(["uids", "status", "cmdline"]):
        if proc.info["status"] == psutil.STATUS_ZOMBIE or proc.pid == os.getpid():
            continue
        mine = identity is not None and proc.info["uids"].real == identity.uid
        if mine or token in " ".join(proc.info["cmdline"] or []):
            found.append(proc)
    return found


def on_host(path: str | Path) -> bool:
    return Path(path).exists()


async def eventually(check: Callable[[], bool], seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "condition not reached before the deadline"
        await asyncio.sleep(0.01)


async def nothing_left(config: SandboxConfig, ws: Workspace, token: str) -> None:
    await eventually(lambda: not live(config, ws, token))


@pytest.fixture
def token() -> str:
    """A marker that makes this test's commands findable in the process table."""
    return f"tok{uuid.uuid4().hex[:10]}"


# ------------------------------------------------------------------------------- basics


async def test_a_command_runs_in_the_workspace_with_merged_output_and_exit_code(
    ws: Workspace,
) -> None:
    tracker = CommandTracker()
    result = await run_command(BWRAP, ws.root, "pwd; echo out; echo err >&2; exit 3", None, tracker)
    assert result.exit_code == 3
    assert result.output == "/workspace\nout\nerr\n"
    assert (result.timed_out, result.killed, tracker.running) == (False, False, False)


@as_root
async def test_a_command_never_runs_as_root(ws: Workspace) -> None:
    result = await run_command(BWRAP, ws.root, "id -u; id -un", None, CommandTracker())
    identity = identity_for(BWRAP, ws.root)
    assert identity is not None
    assert result.output.split() == [str(identity.uid), "agent"]


async def test_a_command_can_write_the_workspace_and_git_sees_the_changes(
    workspaces: Workspaces, ws: Workspace
) -> None:
    await files.write_file(ws, "by_tool.txt", "written by the file tool\n")
    command = (
        "echo made > made.txt && mkdir -p pkg && echo x > pkg/mod.py && "
        "sed -i 's/VALUE = 1/VALUE = 5/' src/util.py && echo more >> by_tool.txt && "
        "git status --short"
    )
    result = await run_command(BWRAP, ws.root, command, None, CommandTracker())
    assert result.exit_code == 0, result.output
    # git inside the sandbox works on the read-only .git.
    assert " M src/util.py" in result.output
    assert "?? made.txt" in result.output
    stat = await workspaces.diff_stat(ws)
    assert sorted(stat.files) == ["by_tool.txt", "made.txt", "pkg/mod.py", "src/util.py"]
    assert (ws.root / "by_tool.txt").read_text() == "written by the file tool\nmore\n"
    # Our own git, as root, still works on files the command owns.
    assert "?? made.txt" in git(ws.root, "status", "--porcelain")
    identity = identity_for(BWRAP, ws.root)
    if identity is not None:
        assert (ws.root / "made.txt").stat().st_uid == identity.uid
        assert (ws.root / ".git").stat().st_uid == 0


async def test_a_command_cannot_write_outside_the_workspace(
    ws: Workspace, shared_dir: Path, token: str
) -> None:
    outside = shared_dir / "outside"
    outside.mkdir()
    outside.chmod(0o777)  # only the sandbox stands in the way
    probes = [
        f"mkdir -p {outside} && echo x > {outside}/probe",
        f"touch /usr/{token}",
        f"touch /etc/{token}",
        f"touch .git/{token}",
        "echo x > .git/config",
        f"echo x > /workspace/../{token}",
    ]
    command = "; ".join(f"({probe}) 2>&1 && echo WROTE" for probe in probes)
    result = await run_command(BWRAP, ws.root, command, None, CommandTracker())
    for probe in (outside / "probe", f"/usr/{token}", f"/etc/{token}", ws.root / ".git" / token):
        assert not on_host(probe), probe
    assert "[core]" in (ws.root / ".git/config").read_text()
    # The first probe "succeeds" into the sandbox's private /tmp only; the rest fail.
    assert result.output.count("WROTE") == 1
    assert "Read-only file system" in result.output


async def test_a_command_cannot_reach_the_network(ws: Workspace) -> None:
    connections = 0

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    probe = (
        "python3 -c \"import socket; socket.create_connection(('127.0.0.1', "
        f"{port}), timeout=5); print('connected')\""
    )
    try:
        blocked = await run_command(BWRAP, ws.root, probe, 60, CommandTracker())
        allowed = await run_command(
            SandboxConfig(network=True), ws.root, probe, 60, CommandTracker()
        )
    finally:
        server.close()
        await server.wait_closed()
    assert blocked.exit_code != 0
    assert "Connection refused" in blocked.output
    # The same probe with the network switched on reaches the server: the test can fail.
    assert allowed.exit_code == 0, allowed.output
    assert "connected" in allowed.output
    assert connections == 1


# --------------------------------------------------------------------- kills and limits


async def test_cancelling_a_command_kills_it_at_once_and_keeps_its_output(
    ws: Workspace, token: str
) -> None:
    tracker = CommandTracker()
    task = asyncio.create_task(
        run_command(BWRAP, ws.root, f"echo before; sleep 60; touch done # {token}", None, tracker)
    )
    await eventually(lambda: "before" in tracker.output)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The cancelled call returns only once the sandbox is empty: no need to wait here.
    assert not live(BWRAP, ws, token)
    assert not (ws.root / "done").exists()
    assert tracker.output == "before\n"
    assert (tracker.killed, tracker.running) == (True, False)


async def test_a_command_past_its_timeout_is_killed_with_everything_it_started(
    ws: Workspace, token: str
) -> None:
    tracker = CommandTracker()
    command = f"echo start; (sleep 300; echo late) & sleep 300 # {token}"
    result = await run_command(BWRAP, ws.root, command, 1, tracker)
    assert (result.timed_out, result.killed, result.exit_code) == (True, True, None)
    assert result.output == "start\n"
    assert not live(BWRAP, ws, token)


async def test_a_process_that_moves_to_its_own_session_dies_with_the_sandbox(
    ws: Workspace, token: str
) -> None:
    command = f"setsid sh -c 'sleep 300 # {token}' & echo spawned"
    result = await run_command(BWRAP, ws.root, command, 60, CommandTracker())
    assert result.exit_code == 0
    await nothing_left(BWRAP, ws, token)


FORKS = """
import os, sys, time
count = 0
try:
    for _ in range(1000):
        if os.fork() == 0:
            time.sleep(300)
            os._exit(0)
        count += 1
except BlockingIOError:
    print("refused after", count, "forks")
    sys.exit(0)
print("forked all", count)
"""


@as_root
async def test_the_process_limit_binds_in_the_sandbox(ws: Workspace, token: str) -> None:
    config = SandboxConfig(max_processes=32)
    command = f"python3 - <<'EOF' # {token}\n{FORKS}\nEOF"
    result = await run_command(config, ws.root, command, 60, CommandTracker())
    assert result.exit_code == 0, result.output
    refused = result.output.split()
    assert refused[:3] == ["refused", "after", refused[2]]
    assert int(refused[2]) < 32
    await nothing_left(config, ws, token)


@as_root
async def test_a_fork_bomb_is_contained_and_leaves_nothing_behind(
    ws: Workspace, token: str
) -> None:
    config = SandboxConfig(max_processes=64)
    identity = identity_for(config, ws.root)
    assert identity is not None
    peak = 0

    async def watch() -> None:
        nonlocal peak
        while True:
            count = sum(
                1 for p in psutil.process_iter(["uids"]) if p.info["uids"].real == identity.uid
            )
            peak = max(peak, count)
            await asyncio.sleep(0.05)

    watcher = asyncio.create_task(watch())
    try:
        result = await run_command(
            config,
            ws.root,
            f"bomb() {{ bomb | bomb & }}; bomb; sleep 300 # {token}",
            5,
            CommandTracker(),
        )
    finally:
        watcher.cancel()
    assert result.timed_out
    assert 0 < peak <= config.max_processes
    await nothing_left(config, ws, token)


async def test_a_gigabyte_of_output_is_bounded_in_the_result_and_in_memory(
    ws: Workspace,
) -> None:
    config = SandboxConfig(max_output_bytes=10_000)
    rss_before = psutil.Process().memory_info().rss
    result = await run_command(
        config, ws.root, "yes | head -c 1000000000; echo; echo the-end", 300, CommandTracker()
    )
    grown = psutil.Process().memory_info().rss - rss_before
    assert result.exit_code == 0
    assert result.output_bytes == 1_000_000_009
    assert len(result.output.encode()) <= config.max_output_bytes + 100
    assert result.output.startswith("y\ny\n")
    assert result.output.endswith("\nthe-end\n")
    assert "1000000009" not in result.output  # the marker counts what was dropped
    assert "[… 999990009 bytes elided …]" in result.output
    assert grown < 100 * 1024**2


async def test_the_default_timeout_and_its_ceiling() -> None:
    config = SandboxConfig(timeout_seconds=600, max_timeout_seconds=1800)
    assert config.timeout_for(None) == 600
    assert config.timeout_for(30) == 30
    assert config.timeout_for(99_999) == 1800


# ------------------------------------------------------------------------- no sandbox


async def test_mode_none_runs_the_command_with_the_same_bounds(
    workspaces: Workspaces, ws: Workspace, token: str
) -> None:
    command = f"echo hi > made.txt; sh -c 'sleep 300 # {token}' & echo $PWD; exit 4"
    result = await run_command(NONE, ws.root, command, 60, CommandTracker())
    assert result.exit_code == 4
    assert result.output.strip() == str(ws.root)
    assert "made.txt" in (await workspaces.diff_stat(ws)).files
    # What it left running in its group went with it.
    await nothing_left(NONE, ws, token)


async def test_mode_none_cancellation_kills_the_group(ws: Workspace, token: str) -> None:
    tracker = CommandTracker()
    task = asyncio.create_task(
        run_command(NONE, ws.root, f"echo before; sleep 60; touch done # {token}", None, tracker)
    )
    await eventually(lambda: "before" in tracker.output)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await nothing_left(NONE, ws, token)
    assert not (ws.root / "done").exists()
    assert tracker.killed


# ------------------------------------------------------------------- sandbox_problem


def test_the_sandbox_works_on_this_machine(shared_dir: Path) -> None:
    assert sandbox_problem(BWRAP, shared_dir / "workspaces") is None
    assert sandbox_problem(NONE) is None


def test_a_missing_bwrap_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    problem = sandbox_problem(BWRAP)
    assert problem is not None
    assert "bubblewrap (bwrap) is not installed" in problem
    assert sandbox_problem(NONE) is None


@as_root
def test_workspaces_other_uids_cannot_reach_are_reported(tmp_path: Path) -> None:
    hidden = tmp_path / "private"
    hidden.mkdir(mode=0o700)
    problem = sandbox_problem(BWRAP, hidden / "workspaces")
    assert problem is not None
    assert "is not searchable by other users" in problem


@as_root
async def test_a_command_in_an_unreachable_workspace_is_refused(
    tmp_path: Path, origin: Path
) -> None:
    hidden = tmp_path / "private"
    hidden.mkdir(mode=0o700)
    ws = await Workspaces(hidden).open("T0:C0:1.1", None, str(origin))
    with pytest.raises(SandboxError, match="not searchable by other users"):
        await run_command(BWRAP, ws.root, "true", None, CommandTracker())
