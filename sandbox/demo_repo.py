"""The demo repository the offline model works on: what is in it, its bug's fix, and a git copy.

The files live in `sandbox/demo_repo/` (a tiny, stdlib-only project whose one failing test
comes from a real timezone bug). `ensure_demo_repo` turns them into a git repository with one
commit whose id is the same on every machine, so sessions, tests and demos agree on it.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

FILES_DIR = Path(__file__).with_name("demo_repo")

MODULE = "dates.py"
TEST_FILE = "tests/test_dates.py"
TEST_COMMAND = "python3 -m unittest -v"
FAILING_TEST = "test_summer_meeting_in_berlin_is_in_daylight_saving_time"

# The fix is one contiguous replacement, so a single `edit_file` makes it.
FIX_OLD_TEXT = '''from datetime import datetime, timedelta, timezone

# Hours ahead of UTC for the timezones the team works in.
UTC_OFFSETS = {
    "America/New_York": -5,
    "Europe/Berlin": 1,
    "Asia/Tokyo": 9,
}


def local_timezone(name: str) -> timezone:
    """The timezone called `name`, e.g. "Europe/Berlin"."""
    return timezone(timedelta(hours=UTC_OFFSETS[name]))
'''

FIX_NEW_TEXT = '''from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo


def local_timezone(name: str) -> tzinfo:
    """The timezone called `name`, e.g. "Europe/Berlin", with its daylight-saving rules."""
    return ZoneInfo(name)
'''

# The step between the fix and the test run that waits for a person's approval: a pip install
# matches the default `AGENT_APPROVAL_PATTERNS`. It needs no network all the same: pip installs
# this package, editable, into a throwaway virtual environment in the command's own temporary
# directory (private to the command in the sandbox), from the workspace alone (`--no-index`,
# `--no-deps`, the system's setuptools with `--no-build-isolation`). It leaves nothing in the
# workspace, so the diff and the pull request stay the fix alone.
INSTALL_COMMAND = (
    "python3 -m venv --system-site-packages --without-pip $TMPDIR/venv && "
    "$TMPDIR/venv/bin/python -m pip install --no-index --no-deps --no-build-isolation -e ."
)
INSTALL_REASON = (
    "Before the tests I'll check that the package still installs with the fix: pip installs "
    "it, editable, into a throwaway virtual environment from this workspace alone (nothing is "
    "downloaded). Installing packages needs a person's approval here."
)

# Lines that tell the two versions of the module apart however a read shows it (with line
# numbers, cut to a head and a tail).
BUGGY_MARKER = "UTC_OFFSETS[name]"
FIXED_MARKER = "ZoneInfo(name)"

# How the demo agent explains the bug: while fixing it, and in its answer.
EDIT_REASON = (
    f"`{FAILING_TEST}` fails by one hour: `local_timezone` uses fixed UTC offsets, which ignore "
    "daylight saving time. I'll look the zone up with `zoneinfo` instead."
)
WHAT_WAS_WRONG = (
    "`local_timezone` in `dates.py` turned each timezone into a fixed UTC offset "
    "(`UTC_OFFSETS`), which ignores daylight saving time. A meeting at 09:00 UTC on 15 July "
    "showed as 10:00 in Berlin instead of 11:00 (Berlin is UTC+2 in summer), so "
    f"`{FAILING_TEST}` failed."
)


_IDENTITY = {
    "GIT_AUTHOR_NAME": "Demo Author",
    "GIT_AUTHOR_EMAIL": "demo@example.com",
    "GIT_AUTHOR_DATE": "2024-01-15T09:00:00+00:00",
    "GIT_COMMITTER_NAME": "Demo Author",
    "GIT_COMMITTER_EMAIL": "demo@example.com",
    "GIT_COMMITTER_DATE": "2024-01-15T09:00:00+00:00",
}
_MESSAGE = "Meeting times in each person's timezone\n"
_BRANCH = "main"
# Caches and other by-products of running or linting the demo in place are not part of it.
_SKIPPED_DIRS = {"__pycache__"}


def fixed_answer(
    label: str,
    notes: list[str],
    passed: str,
    failed: str | None,
    diff_shown: bool,
    install: str | None = None,
) -> str:
    """The demo agent's final answer once the fix is in and the tests pass; `install` says
    how the install check went."""
    was = f" Before the fix: {failed}." if failed else ""
    checked = [f"- **Install check:** {install}"] if install else []
    lines = [
        f"{label} **Fixed:** meeting times now follow each timezone's daylight-saving rules, "
        "and the tests pass.",
        "",
        *(line for note in notes for line in (note, "")),
        f"**What was wrong:** {WHAT_WAS_WRONG}",
        "",
        "**The fix:** look the timezone up with `zoneinfo`, which knows each zone's rules:",
        "",
        "```python",
        FIX_NEW_TEXT.rstrip("\n"),
        "```",
        "",
        "**Checks:**",
        *checked,
        f"- **Tests:** `{TEST_COMMAND}` now passes: {passed}.{was}",
    ]
    if diff_shown:
        lines += ["", "The whole change is in the diff attached to this thread."]
    return "\n".join(lines)


def demo_files() -> list[str]:
    """The demo repository's files, as sorted POSIX paths relative to its root."""
    found: list[str] = []
    for path in FILES_DIR.rglob("*"):
        relative = path.relative_to(FILES_DIR)
        hidden = any(part.startswith(".") for part in relative.parts[:-1])
        cache = any(part in _SKIPPED_DIRS for part in relative.parts)
        own_dotfile = relative.name.startswith(".") and relative.name != ".gitignore"
        if path.is_file() and not (hidden or cache or own_dotfile or path.suffix == ".pyc"):
            found.append(relative.as_posix())
    return sorted(found)


def _git_env() -> dict[str, str]:
    # The machine's git config (signing, hooks, autocrlf, default branch) must not change the
    # commit: only the repository's own config applies.
    keep = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    return keep | _IDENTITY | {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}


def _git(repo: Path, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(  # noqa: S603 (fixed argv, no shell)
        ["git", "-C", str(repo), *args],  # noqa: S607 (git from PATH, as everywhere here)
        input=stdin,
        env=_git_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def _commit_files(repo: Path) -> str:
    """Write the demo files as one commit (file modes fixed at 100644) and return its id."""
    files = demo_files()
    paths = "\n".join(str(FILES_DIR / name) for name in files) + "\n"
    blobs = _git(repo, "hash-object", "-w", "--no-filters", "--stdin-paths", stdin=paths).split()
    index = "".join(f"100644 {blob}\t{name}\n" for blob, name in zip(blobs, files, strict=True))
    _git(repo, "read-tree", "--empty")
    _git(repo, "update-index", "--index-info", stdin=index)
    tree = _git(repo, "write-tree")
    return _git(repo, "commit-tree", tree, "-m", _MESSAGE)


def _is_up_to_date(repo: Path, commit: str) -> bool:
    head = subprocess.run(  # noqa: S603
        ["git", "-C", str(repo), "rev-parse", "--verify", "-q", "HEAD"],  # noqa: S607
        env=_git_env(),
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return head == commit and not _git(repo, "status", "--porcelain")


def ensure_demo_repo(dest: Path) -> Path:
    """Make `dest` a git repository holding the demo files in one fixed commit; returns it.

    Reuses `dest` when it already is exactly that (same commit, clean work tree); a git
    repository in any other state is reset to it. Refuses a non-empty directory that is not
    a git repository rather than overwrite something that is not ours.
    """
    dest = dest.resolve()
    if dest.exists() and any(dest.iterdir()) and not (dest / ".git").exists():
        raise ValueError(f"{dest} is not empty and not a git repository; not touching it")
    dest.mkdir(parents=True, exist_ok=True)
    if not (dest / ".git").exists():
        _git(dest, "init", "-q", f"--initial-branch={_BRANCH}")
    commit = _commit_files(dest)
    if _is_up_to_date(dest, commit):
        return dest
    _git(dest, "update-ref", f"refs/heads/{_BRANCH}", commit)
    _git(dest, "symbolic-ref", "HEAD", f"refs/heads/{_BRANCH}")
    _git(dest, "reset", "-q", "--hard", commit)
    _git(dest, "clean", "-q", "-d", "-x", "-f")
    return dest
