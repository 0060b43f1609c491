"""The sandbox GitHub's repositories: bare git repositories on disk, `<root>/<owner>/<name>.git`.

Sessions clone from and push to them as from a real remote (`make run` works on the demo
repository's, `<root>/sandbox/demo.git`), and the pull-request endpoint reads branches, commit
counts and diffs from them, as GitHub does from its own.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

DEMO_OWNER = "sandbox"
DEMO_NAME = "demo"

_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_BRANCH = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]*")


def _git_env() -> dict[str, str]:
    # The machine's git configuration (hooks, signing, default branch) must not apply.
    keep = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    return keep | {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "LC_ALL": "C"}


def repo_path(root: Path, owner: str, name: str) -> Path | None:
    """Where `owner/name` lives under `root`, or None for a name GitHub would not allow."""
    if not (_NAME.fullmatch(owner) and _NAME.fullmatch(name)) or ".." in (owner + name):
        return None
    return root / owner / f"{name}.git"


def demo_remote_path(root: Path) -> Path:
    """Where the demo repository's remote lives in the sandbox GitHub: `sandbox/demo`."""
    return root / DEMO_OWNER / f"{DEMO_NAME}.git"


def valid_branch(name: str) -> bool:
    bad = ".." in name or "//" in name or name.endswith((".", "/", ".lock"))
    return not bad and bool(_BRANCH.fullmatch(name))


def ensure_bare_remote(source: Path, dest: Path, branch: str = "main") -> Path:
    """Make `dest` a bare repository whose `branch` is `source`'s; returns it.

    Created by a bare clone the first time; later calls move `branch` to `source`'s commit
    (the demo may have changed) and leave every other branch, such as the agent's, alone.
    """
    dest = dest.resolve()
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        _run(["clone", "--quiet", "--bare", "--", str(source), str(dest)], None)
    else:
        _run(["fetch", "--quiet", "--no-tags", str(source), f"+{branch}:refs/heads/{branch}"], dest)
    _run(["symbolic-ref", "HEAD", f"refs/heads/{branch}"], dest)
    return dest


def _run(args: list[str], git_dir: Path | None) -> None:
    where = ["--git-dir", str(git_dir)] if git_dir is not None else []
    subprocess.run(  # noqa: S603 (fixed argv, no shell)
        ["git", "-c", "protocol.file.allow=always", *where, *args],  # noqa: S607
        env=_git_env(),
        capture_output=True,
        check=True,
    )


async def git_out(git_dir: Path, *args: str) -> str | None:
    """A git command's output in the bare repository, or None when it fails."""
    proc = await asyncio.create_subprocess_exec(
        "git",
        "--git-dir",
        str(git_dir),
        *args,
        env=_git_env(),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    out, _ = await proc.communicate()
    return out.decode("utf-8", errors="replace") if proc.returncode == 0 else None


async def default_branch(git_dir: Path) -> str:
    head = await git_out(git_dir, "symbolic-ref", "--short", "HEAD")
    return head.strip() if head else "main"


async def branch_tip(git_dir: Path, branch: str) -> str | None:
    """The commit `branch` points at, or None when there is no such branch."""
    if not valid_branch(branch):
        return None
    out = await git_out(git_dir, "rev-parse", "--verify", "-q", f"refs/heads/{branch}^{{commit}}")
    return out.strip() if out else None


@dataclass(frozen=True)
class Comparison:
    """What a pull request's head adds to its base, as GitHub counts it."""

    commits: int = 0
    additions: int = 0
    deletions: int = 0
    changed_files: int = 0


async def compare(git_dir: Path, base: str, head: str) -> Comparison:
    """Commits on `head` not on `base`, and the lines and files of the three-dot diff."""
    count = await git_out(git_dir, "rev-list", "--count", f"{base}..{head}")
    numstat = await git_out(git_dir, "diff", "--numstat", "--no-renames", f"{base}...{head}")
    additions = deletions = files = 0
    for line in (numstat or "").splitlines():
        added, removed, _ = line.split("\t", 2)
        additions += int(added) if added.isdigit() else 0
        deletions += int(removed) if removed.isdigit() else 0
        files += 1
    return Comparison(int(count or 0), additions, deletions, files)


async def diff_text(git_dir: Path, base: str, head: str, max_chars: int = 200_000) -> str:
    """The three-dot diff `base...head`, cut at `max_chars`."""
    out = await git_out(git_dir, "diff", "--no-color", "--no-ext-diff", f"{base}...{head}")
    text = out or ""
    return text if len(text) <= max_chars else text[:max_chars] + "\n… (diff cut)\n"
