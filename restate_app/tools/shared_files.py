"""Copies of the files people shared in the thread, in the session's workspace.

Before a run's first tool call (and after any steering message that brings more), every
text-like file the conversation names (`common.file_refs.FileRef`) is downloaded with the bot
token into `.slack-files/<id>/<name>`, unless it is there already: the agent's tools can then
read, search, run or apply it. The directory is in the checkout's `.git/info/exclude`, so a
shared file never joins the session's changes, branch or pull request. A file Slack will not
give (deleted, or the host is not Slack's) is logged and skipped: the turn's text still has
the start of it.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

import structlog

from common.contract import Turn, WorkStep
from common.file_refs import FILES_DIR, FileRef
from common.slack_files import is_binary
from restate_app.tools.files import ToolError, resolve

log = structlog.get_logger(__name__)

# A workspace keeps at most this many shared files (the newest).
MAX_SHARED_FILES = 50
MAX_FILE_BYTES = 2 * 1024 * 1024
EXCLUDE_LINE = f"/{FILES_DIR}/"

Fetch = Callable[[FileRef, int], Awaitable[bytes | None]]


def shared_in(turns: Iterable[Turn], work: Iterable[WorkStep] = ()) -> list[FileRef]:
    """The files the conversation's people shared, oldest first, each once."""
    steps = [s for t in turns for s in t.work if s.role == "user"]
    found = [f for t in turns for f in t.files] + [f for s in steps for f in s.files]
    found += [f for s in work if s.role == "user" for f in s.files]
    unique = {f.id: f for f in found}
    return list(unique.values())[-MAX_SHARED_FILES:]


async def copy_shared(root: Path, files: Iterable[FileRef], fetch: Fetch) -> list[str]:
    """Put the files missing from the workspace at `root` in place; returns the paths made."""
    wanted = [f for f in files if not (root / f.path).is_file()]
    if not wanted:
        return []
    _ignore(root)
    made: list[str] = []
    for ref in wanted:
        try:
            data = await fetch(ref, MAX_FILE_BYTES)
        except Exception as exc:  # a copy is a convenience: the run goes on without it
            log.warning("shared_file_not_copied", file=ref.id, error=type(exc).__name__)
            continue
        if data is None or len(data) > MAX_FILE_BYTES or is_binary(data):
            log.info("shared_file_not_copied", file=ref.id, reason="unavailable or not text")
            continue
        try:
            _write(root, ref.path, data)
        except (OSError, ToolError) as exc:
            log.warning("shared_file_not_copied", file=ref.id, error=str(exc))
            continue
        made.append(ref.path)
    if made:
        log.info("shared_files_copied", files=len(made))
    return made


def _ignore(root: Path) -> None:
    """Tell git to leave the copies out of the session's changes."""
    exclude = root / ".git" / "info" / "exclude"
    exclude.parent.mkdir(parents=True, exist_ok=True)
    lines = exclude.read_text().splitlines() if exclude.is_file() else []
    if EXCLUDE_LINE not in lines:
        with exclude.open("a") as out:
            out.write(("\n" if lines and lines[-1] else "") + EXCLUDE_LINE + "\n")


def _write(root: Path, rel: str, data: bytes) -> None:
    """Write `data` at `rel` inside `root`, never through a symlink a command left there."""
    target = resolve(root, rel, write=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Checked again once the directories exist: none of them may lead out of the workspace.
    target = resolve(root, rel, write=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
    fd = os.open(target, flags, 0o644)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
