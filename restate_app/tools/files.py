"""The file tools: list, read, search, edit, write, and the diff; each returns bounded text.

Paths are relative to the workspace root. `resolve` refuses absolute paths, `..` escapes,
symlinks that lead out of the workspace and writes into `.git/`; nothing here follows a
symlink out. Blocking file work runs in a thread, off the event loop.

Edits are "make the file contain X", so a step retried after it already applied (Restate runs
steps at least once) never applies twice: `edit_file` then fails harmlessly ("not found") or
recognises its own result ("already applied"); `write_file` simply writes the same content.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import posixpath
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from restate_app.tools.bounds import clip, clip_lines
from restate_app.tools.workspace import Workspace, workspace_diff

MAX_LIST_ENTRIES = 400
MAX_COUNTED_ENTRIES = 100_000
MAX_READ_LINES = 400
MAX_READ_CHARS = 40_000
MAX_LINE_CHARS = 2_000
MAX_WRITE_BYTES = 1_000_000
MAX_DIFF_CHARS = 30_000
MAX_DIFF_READ_BYTES = 4_000_000
MAX_SNIPPET_LINES = 30
BINARY_SNIFF_BYTES = 8192


class ToolError(Exception):
    """A tool call that cannot be done as asked; the message is for the model."""


# ------------------------------------------------------------------------------- paths


def resolve(ws_root: Path, rel: str, write: bool = False) -> Path:
    """The real path of `rel` inside the workspace, or a `ToolError` saying why not."""
    if "\0" in rel:
        raise ToolError("the path contains a NUL character")
    rel = rel.strip() or "."
    if rel.startswith("/"):
        raise ToolError(f"absolute paths are not allowed: {rel} (use a path relative to the root)")
    normal = posixpath.normpath(rel)
    if normal == ".." or normal.startswith("../"):
        raise ToolError(f"path escapes the workspace: {rel}")
    root = ws_root.resolve()
    try:
        target = (root / normal).resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop
        raise ToolError(f"cannot resolve {rel}: {exc}") from exc
    if target != root and root not in target.parents:
        raise ToolError(f"path escapes the workspace through a symlink: {rel}")
    if write and (".git" in Path(normal).parts or ".git" in target.relative_to(root).parts):
        raise ToolError(f"writing into .git/ is not allowed: {rel}")
    if write and target == root:
        raise ToolError("that is the workspace root, not a file")
    return target


def shown_path(root: Path, path: Path) -> str:
    """`path` as the model names it: relative to the workspace root."""
    return path.relative_to(root.resolve()).as_posix() or "."


# ---------------------------------------------------------------------------- list_files


async def list_files(ws: Workspace, path: str = ".") -> str:
    """Files and directories under `path` (directories end in `/`), sorted, bounded."""
    target = resolve(ws.root, path)
    return await asyncio.to_thread(_list, ws.root, target, path)


def _list(root: Path, target: Path, asked: str) -> str:
    if not target.exists():
        raise ToolError(f"no such file or directory: {asked}")
    if not target.is_dir():
        return shown_path(root, target)
    lines: list[str] = []
    more = 0
    for entry in walk(target):
        if len(lines) < MAX_LIST_ENTRIES:
            lines.append(_entry_line(root, entry))
        elif more < MAX_COUNTED_ENTRIES:
            more += 1
        else:
            break
    if not lines:
        return f"{asked} is empty"
    if more:
        counted = f"more than {more}" if more >= MAX_COUNTED_ENTRIES else str(more)
        lines.append(f"… and {counted} more entries (list a subdirectory to see them)")
    return "\n".join(lines)


def walk(top: Path) -> Iterator[os.DirEntry[str]]:
    """Entries under `top` in sorted tree order, without `.git` and without following links."""
    stack = [_sorted_entries(top)]
    while stack:
        entry = next(stack[-1], None)
        if entry is None:
            stack.pop()
            continue
        yield entry
        if entry.is_dir(follow_symlinks=False):
            stack.append(_sorted_entries(Path(entry.path)))


def _sorted_entries(directory: Path) -> Iterator[os.DirEntry[str]]:
    try:
        with os.scandir(directory) as it:
            entries = sorted((e for e in it if e.name != ".git"), key=lambda e: e.name)
    except OSError:
        entries = []
    return iter(entries)


def _entry_line(root: Path, entry: os.DirEntry[str]) -> str:
    shown = shown_path(root, Path(entry.path))
    if entry.is_symlink():
        with contextlib.suppress(OSError):
            return f"{shown} -> {os.readlink(entry.path)}"
    return shown + "/" if entry.is_dir(follow_symlinks=False) else shown


# ----------------------------------------------------------------------------- read_file


async def read_file(
    ws: Workspace, path: str, start_line: int | None = None, end_line: int | None = None
) -> str:
    """Numbered lines of a text file, a window of at most 400 lines or 40 kB at a time."""
    target = resolve(ws.root, path)
    start = max(1, start_line or 1)
    if end_line is not None and end_line < start:
        raise ToolError(f"end_line {end_line} is before start_line {start}")
    end = min(end_line or start + MAX_READ_LINES - 1, start + MAX_READ_LINES - 1)
    return await asyncio.to_thread(_read, target, path, start, end)


def _read(target: Path, asked: str, start: int, end: int) -> str:
    _check_text_file(target, asked)
    shown: list[tuple[int, str]] = []
    chars, total, crlf = 0, 0, False
    with target.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            total = number
            if number < start:
                continue
            text = clip(raw.decode("utf-8", errors="replace").rstrip("\r\n"), MAX_LINE_CHARS)
            if number > end or (shown and chars + len(text) > MAX_READ_CHARS):
                total += _lines_after(f)
                break
            crlf = crlf or raw.endswith(b"\r\n")
            shown.append((number, text))
            chars += len(text) + 1
    if total == 0:
        return f"{asked} is empty"
    if not shown:
        raise ToolError(f"{asked} has {total} lines; start_line {start} is past the end")
    return _numbered(shown) + _read_footer(shown, total, crlf)


def _check_text_file(target: Path, asked: str) -> None:
    if not target.exists():
        raise ToolError(f"no such file: {asked}")
    if target.is_dir():
        raise ToolError(f"{asked} is a directory; use list_files to see what is in it")
    if not target.is_file():
        raise ToolError(f"{asked} is not a regular file")
    with target.open("rb") as f:
        if b"\0" in f.read(BINARY_SNIFF_BYTES):
            size = target.stat().st_size
            raise ToolError(f"{asked} is a binary file ({size} bytes); read_file shows text only")


def _lines_after(f: BinaryIO) -> int:
    """How many lines are left in `f`, counted in chunks rather than line by line."""
    count, last = 0, b""
    while chunk := f.read(1 << 20):
        count += chunk.count(b"\n")
        last = chunk
    return count + (1 if last and not last.endswith(b"\n") else 0)


def _numbered(lines: list[tuple[int, str]]) -> str:
    width = max(4, len(str(lines[-1][0])))
    return "\n".join(f"{number:>{width}}│{text}" for number, text in lines)


def _read_footer(shown: list[tuple[int, str]], total: int, crlf: bool) -> str:
    first, last = shown[0][0], shown[-1][0]
    notes = [" (this file has CRLF line endings)"] if crlf else []
    if last < total:
        more = f"call read_file with start_line={last + 1} to read more"
        return f"\n(lines {first}-{last} of {total}; {more}){''.join(notes)}"
    if first > 1 or notes:
        return f"\n(lines {first}-{last} of {total}){''.join(notes)}"
    return ""


# -------------------------------------------------------------------------------- search


async def edit_file(ws: Workspace, path: str, old_text: str, new_text: str) -> str:
    """Replace `old_text`, which must occur exactly once, by `new_text`."""
    target = resolve(ws.root, path, write=True)
    if not old_text:
        raise ToolError("old_text is empty; to create or replace a whole file use write_file")
    if old_text == new_text:
        raise ToolError("old_text and new_text are the same; nothing to change")
    return await asyncio.to_thread(_edit, target, path, old_text, new_text)


def _edit(target: Path, asked: str, old: str, new: str) -> str:
    _check_text_file(target, asked)
    try:
        text = target.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ToolError(f"{asked} is not UTF-8 text; rewrite it with write_file") from exc
    if _already_applied(text, old, new):
        first, last = _span(text, text.index(new), new)
        return f"{asked} already contains this edit (lines {first}-{last}); nothing changed"
    count = text.count(old)
    if count != 1:
        raise ToolError(_no_unique_match(text, asked, old, new, count))
    at = text.index(old)
    updated = text[:at] + new + text[at + len(old) :]
    _write_atomic(target, updated.encode())
    first, last = _span(updated, at, new)
    snippet = clip_lines(updated.splitlines()[first - 1 : last], MAX_SNIPPET_LINES)
    numbered = _numbered([(first + i, clip(s, MAX_LINE_CHARS)) for i, s in enumerate(snippet)])
    return f"Edited {asked}: lines {first}-{last} now read:\n{numbered}"


def _span(text: str, at: int, piece: str) -> tuple[int, int]:
    """The first and last line of `piece`, found at offset `at` of `text`."""
    body = piece.removesuffix("\n")  # its last line's newline ends that line, starts none
    return _line_of(text, at), _line_of(text, at + len(body))


def _already_applied(text: str, old: str, new: str) -> bool:
    """True when the file holds `new` once and every `old` in it lies inside that `new`: a
    replay of an edit whose `new` contains its `old` (a re-run would apply it twice)."""
    return old in new and text.count(new) == 1 and text.count(old) == new.count(old)


def _no_unique_match(text: str, asked: str, old: str, new: str, count: int) -> str:
    if count == 0:
        message = (
            f"old_text was not found in {asked}; it must match the file exactly, including "
            "whitespace and indentation (read the file again to copy it)"
        )
        if new and new in text:
            message += (
                f". Note: new_text is already in the file (line {_line_of(text, text.index(new))})"
                ", so this edit may have been applied already"
            )
        if "\r\n" in text and "\r\n" not in old:
            message += ". Note: this file has CRLF line endings"
        return message
    starts = [m.start() for m in re.finditer(re.escape(old), text)][:10]
    where = ", ".join(str(_line_of(text, s)) for s in starts)
    return (
        f"old_text matches {count} places in {asked} (lines {where}); include more of the "
        "surrounding lines so that it matches exactly once"
    )


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


async def write_file(ws: Workspace, path: str, content: str) -> str:
    """Create or overwrite a file with `content` (its directories are created)."""
    data = content.encode()
    if len(data) > MAX_WRITE_BYTES:
        raise ToolError(
            f"content is {len(data)} bytes; write_file takes at most {MAX_WRITE_BYTES} "
            "(generate big files with run_command)"
        )
    target = resolve(ws.root, path, write=True)
    return await asyncio.to_thread(_write, target, path, data)


def _write(target: Path, asked: str, data: bytes) -> str:
    if target.is_dir():
        raise ToolError(f"{asked} is a directory")
    existed = target.exists()
    target.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(target, data)
    lines = data.count(b"\n") + (0 if not data or data.endswith(b"\n") else 1)
    verb = "Overwrote" if existed else "Created"
    return f"{verb} {asked} ({lines} lines, {len(data)} bytes)"


def _write_atomic(target: Path, data: bytes) -> None:
    """Write through a temporary file and a rename: a crash leaves the old or the new file,
    never half of one; the file keeps its permissions."""
    mode = target.stat().st_mode & 0o7777 if target.exists() else 0o644
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            os.fchmod(f.fileno(), mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# ----------------------------------------------------------------------------- show_diff


async def show_diff(ws: Workspace) -> str:
    """The workspace's changes against its base commit, bounded (head and tail)."""
    diff = await workspace_diff(ws, max_bytes=MAX_DIFF_READ_BYTES)
    if not diff.strip():
        return f"no changes against the base commit {ws.ref.base_commit[:12]}"
    return clip(diff, MAX_DIFF_CHARS)
