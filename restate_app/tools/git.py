"""Git for the workspaces: an async subprocess, never a shell, isolated from this machine's
git configuration, hooks and prompts, bounded in time and in what it may print."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from restate_app.tools.processes import reap

GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Coding Agent",
    "GIT_AUTHOR_EMAIL": "agent@localhost",
    "GIT_COMMITTER_NAME": "Coding Agent",
    "GIT_COMMITTER_EMAIL": "agent@localhost",
}


class WorkspaceError(Exception):
    """A workspace could not be made, rebuilt or read; the message says why."""


def git_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of every git call: no system or user config, no prompts."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env |= GIT_IDENTITY | {
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_SSH_COMMAND": os.environ.get("GIT_SSH_COMMAND", "ssh -oBatchMode=yes"),
        "LC_ALL": "C",
    }
    return env | (extra or {})


def _git_options(cwd: Path | None) -> list[str]:
    # safe.directory: sandboxed commands own the work tree (so they can write it), but .git
    # and its config stay ours and read-only to them, so trusting this one path is safe.
    options = ["-c", "core.hooksPath=/dev/null", "-c", "protocol.file.allow=always"]
    options += ["-c", "core.fsmonitor=false", "-c", "advice.detachedHead=false"]
    if cwd is not None:
        options += ["-c", f"safe.directory={cwd}", "--git-dir", str(cwd / ".git")]
        options += ["--work-tree", str(cwd)]
    return options


async def git(
    args: list[str],
    cwd: Path | None,
    env: dict[str, str] | None = None,
    time_limit: float = 600,
    stdin: bytes | None = None,
    max_bytes: int | None = None,
) -> bytes:
    """Run git; its stdout (cut after `max_bytes` + 1 bytes, when given), or a
    `WorkspaceError` carrying what git said."""
    proc = await asyncio.create_subprocess_exec(
        "git",
        *_git_options(cwd),
        *args,
        cwd=cwd,
        env=git_env(env),
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(time_limit):
            out, err, cut = await _exchange(proc, stdin, max_bytes)
    except TimeoutError:
        raise WorkspaceError(f"git {args[0]} took longer than {time_limit:.0f} s") from None
    finally:
        await reap(proc)
    if proc.returncode != 0 and not cut:
        reason = err.decode(errors="replace").strip().splitlines()
        raise WorkspaceError(f"git {args[0]} failed: {reason[-1] if reason else proc.returncode}")
    return out


async def _exchange(
    proc: asyncio.subprocess.Process, stdin: bytes | None, max_bytes: int | None
) -> tuple[bytes, bytes, bool]:
    """Feed `stdin`, collect stdout (up to `max_bytes` + 1) and stderr; True when cut."""
    assert proc.stdout is not None
    assert proc.stderr is not None

    async def feed() -> None:
        if stdin is not None and proc.stdin is not None:
            proc.stdin.write(stdin)
            await proc.stdin.drain()
            proc.stdin.close()

    async def collect() -> tuple[bytes, bool]:
        assert proc.stdout is not None
        out = bytearray()
        while chunk := await proc.stdout.read(1 << 16):
            out += chunk
            if max_bytes is not None and len(out) > max_bytes:
                proc.kill()  # more is not wanted; the caller sees the overflow
                return bytes(out[: max_bytes + 1]), True
        return bytes(out), False

    (out, cut), err, _ = await asyncio.gather(collect(), proc.stderr.read(), feed())
    await proc.wait()
    return out, err, cut
