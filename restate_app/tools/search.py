"""The `search` tool: ripgrep when it is installed, else the same search in Python; matches
bounded per file and in all, never following a symlink out of the workspace."""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

from restate_app.tools.bounds import clip
from restate_app.tools.files import BINARY_SNIFF_BYTES, ToolError, resolve, shown_path, walk
from restate_app.tools.processes import reap
from restate_app.tools.workspace import Workspace

MAX_MATCHES = 200
MAX_MATCHES_PER_FILE = 20
MAX_MATCH_CHARS = 400
MAX_SEARCH_CHARS = 30_000
MAX_SEARCH_FILE_BYTES = 10_000_000
SEARCH_SECONDS = 60


async def search(ws: Workspace, pattern: str, path: str = ".") -> str:
    """Lines matching the regular expression `pattern` under `path`, as `file:line:text`."""
    if not pattern:
        raise ToolError("the pattern is empty")
    target = resolve(ws.root, path)
    if not target.exists():
        raise ToolError(f"no such file or directory: {path}")
    if shutil.which("rg") is not None:
        matches, more = await search_ripgrep(ws.root, target, pattern)
    else:
        matches, more = await asyncio.to_thread(search_python, ws.root, target, pattern)
    return _search_result(matches, more, pattern, path)


def _search_result(matches: list[str], more: int, pattern: str, path: str) -> str:
    if not matches:
        return f"no matches for `{pattern}` in {path}"
    lines = [clip(m, MAX_MATCH_CHARS) for m in matches]
    if more:
        lines.append(f"… and {more} more matches (narrow the pattern or the path)")
    return clip("\n".join(lines), MAX_SEARCH_CHARS)


async def search_ripgrep(root: Path, target: Path, pattern: str) -> tuple[list[str], int]:
    """ripgrep, run in the workspace: respects .gitignore (not `.git/info/exclude`, which
    only keeps the files people shared out of the changes), never follows symlinks."""
    rel = shown_path(root, target)
    argv = ["rg", "--no-config", "--line-number", "--with-filename", "--no-heading"]
    argv += ["--color", "never"]
    argv += ["--max-count", str(MAX_MATCHES_PER_FILE), "--max-columns", str(MAX_MATCH_CHARS)]
    argv += ["--max-columns-preview", "--max-filesize", str(MAX_SEARCH_FILE_BYTES)]
    argv += ["--hidden", "--no-ignore-exclude", "--glob", "!.git", "--sort", "path"]
    argv += ["-e", pattern, "--", rel]
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=root,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(SEARCH_SECONDS):
            matches, more, err = await _collect_matches(proc)
    except TimeoutError:
        raise ToolError(f"the search took longer than {SEARCH_SECONDS} s; narrow it") from None
    finally:
        await reap(proc)
    if proc.returncode == 2 and not matches:
        reason = err.decode(errors="replace").strip()
        raise ToolError(f"the search failed: {clip(reason, 600) or 'ripgrep exit 2'}")
    return matches, more


async def _collect_matches(proc: asyncio.subprocess.Process) -> tuple[list[str], int, bytes]:
    assert proc.stdout is not None
    assert proc.stderr is not None
    errors = asyncio.create_task(proc.stderr.read())
    matches: list[str] = []
    more = 0
    async for raw in proc.stdout:
        line = raw.decode("utf-8", errors="replace").rstrip("\n")
        if len(matches) < MAX_MATCHES:
            matches.append(line.removeprefix("./"))
        else:
            more += 1
    await proc.wait()
    return matches, more, await errors


def search_python(root: Path, target: Path, pattern: str) -> tuple[list[str], int]:
    """The same search with Python's `re`, for machines without ripgrep (it does not read
    .gitignore; it skips `.git`, symlinks, binary and very large files)."""
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise ToolError(f"invalid regular expression: {exc}") from exc
    files = [target] if target.is_file() else (Path(e.path) for e in walk(target))
    matches: list[str] = []
    more = 0
    for file in files:
        for number, line in _matching_lines(file, regex):
            if len(matches) < MAX_MATCHES:
                matches.append(f"{shown_path(root, file)}:{number}:{line}")
            else:
                more += 1
    return matches, more


def _matching_lines(file: Path, regex: re.Pattern[str]) -> Iterator[tuple[int, str]]:
    if file.is_symlink() or not file.is_file() or file.stat().st_size > MAX_SEARCH_FILE_BYTES:
        return
    data = file.read_bytes()
    if b"\0" in data[:BINARY_SNIFF_BYTES]:
        return
    found = 0
    for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
        if regex.search(line):
            yield number, line
            found += 1
            if found >= MAX_MATCHES_PER_FILE:
                return


# ----------------------------------------------------------------------- edit and write
