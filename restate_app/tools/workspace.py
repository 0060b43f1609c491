"""One git checkout per Slack thread, rebuilt anywhere from its base commit and its patch.

A session's durable state holds a `WorkspaceRef` (repository, base commit, the binary diff of
the workspace against that commit). The directory on this machine is only a cache of it: when
it is missing (another replica, cleanup), `open` clones the repository again, checks the base
commit out and applies the patch, untracked files included.

Git runs as an async subprocess, never through a shell, isolated from this machine's git
configuration, hooks and prompts. Diffs are taken against a temporary index, so the user's
view of the checkout (its index, what is staged) is never disturbed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import structlog

from common.contract import WorkspaceRef
from restate_app.tools.diffstat import DiffStat, parse_numstat
from restate_app.tools.git import WorkspaceError, git

log = structlog.get_logger(__name__)

__all__ = [
    "DiffStat",
    "Workspace",
    "WorkspaceError",
    "WorkspaceLimits",
    "WorkspaceRef",
    "Workspaces",
    "workspace_diff",
]

# Kept in .git, where neither the diff nor a sandboxed command (.git is read-only there) sees
# it; its mtime is when the workspace was last used.
MARKER = "agent-workspace"
TEMP_PREFIX = ".tmp-"


@dataclass(frozen=True)
class WorkspaceLimits:
    max_patch_bytes: int = 1_000_000
    idle_seconds: float = 7 * 24 * 3600  # cleanup: remove checkouts unused this long
    max_count: int = 200  # cleanup: keep at most this many (least recently used go first)
    max_total_bytes: int = 5_000_000_000  # cleanup: and at most this much disk
    # Cleanup never removes a checkout used this recently: a run touches its workspace at
    # every step, so this covers a run between two steps, on any replica sharing the disk.
    busy_seconds: float = 3600
    git_timeout_seconds: float = 600


@dataclass
class Workspace:
    key: str
    root: Path
    ref: WorkspaceRef


def directory_name(key: str) -> str:
    """A safe, readable directory name for a thread key such as `T0:C0:1700000000.000100`."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", key).strip("-")[:60] or "ws"
    return f"{slug}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


class Workspaces:
    """The checkouts under `root`, one per thread key."""

    def __init__(self, root: Path, limits: WorkspaceLimits = WorkspaceLimits()) -> None:
        # Absolute and without symlinks: git is called with --git-dir and safe.directory,
        # which must name the checkout the way git sees it.
        self.root = root.resolve()
        self.limits = limits
        self._locks: dict[str, asyncio.Lock] = {}
        self._in_use: dict[str, int] = {}

    async def open(
        self, key: str, ref: WorkspaceRef | None, repo: str, sync: bool = False
    ) -> Workspace:
        """The thread's checkout: cloned from `repo` on its first run (`ref` None), reused
        when it is on disk with `ref`'s base commit, else rebuilt from `ref`. With `sync`, a
        checkout on disk whose changes are not `ref`'s (another replica worked on the thread
        since, or a run here was cut off) is rebuilt too."""
        path = self.root / directory_name(key)
        async with self._lock(key):
            if ref is None:
                ref = await self._create(path, repo)
            elif await _base_of(path) != ref.base_commit:
                await self._rebuild(path, ref)
            elif sync and not ref.patch_truncated:
                current = await self.patch(Workspace(key=key, root=path, ref=ref))
                if current.patch != ref.patch:
                    log.info("workspace_out_of_date", workspace=path.name)
                    await self._rebuild(path, ref)
            _touch(path)
        return Workspace(key=key, root=path, ref=ref)

    @contextlib.contextmanager
    def in_use(self, ws: Workspace) -> Iterator[None]:
        """While inside, cleanup leaves `ws` alone (a tool is running in it)."""
        self._in_use[ws.key] = self._in_use.get(ws.key, 0) + 1
        try:
            yield
        finally:
            self._in_use[ws.key] -= 1
            if not self._in_use[ws.key]:
                del self._in_use[ws.key]

    async def patch(self, ws: Workspace) -> WorkspaceRef:
        """`ws.ref` with the workspace's current patch, or flagged truncated when the patch is
        over `max_patch_bytes` (then a rebuild elsewhere would lose the changes)."""
        _touch(ws.root)
        limit, timeout = self.limits.max_patch_bytes, self.limits.git_timeout_seconds
        raw = await _diff_bytes(ws, timeout, max_bytes=limit)
        text = _as_text(raw) if len(raw) <= limit else None
        if text is None and len(raw) <= limit:
            # Text that is not UTF-8 cannot live in a JSON string; as binary it is base85.
            raw = await _diff_bytes(ws, timeout, max_bytes=limit, all_binary=True)
            text = _as_text(raw) if len(raw) <= limit else None
        if text is None:
            log.warning(
                "workspace_patch_not_recorded",
                workspace=ws.root.name,
                bytes=len(raw),
                limit=limit,
            )
            return ws.ref.model_copy(update={"patch": "", "patch_truncated": True})
        return ws.ref.model_copy(update={"patch": text, "patch_truncated": False})

    async def diff(self, ws: Workspace) -> str:
        """The workspace's diff against its base commit, as text (unbounded: callers clip)."""
        return await workspace_diff(ws, self.limits.git_timeout_seconds)

    async def diff_stat(self, ws: Workspace) -> DiffStat:
        """Files changed and lines added and removed against the base commit."""
        async with _temp_index(ws, self.limits.git_timeout_seconds) as (env, _):
            out = await git(
                ["diff", "--cached", "--numstat", "--no-renames", "-z", ws.ref.base_commit],
                ws.root,
                env=env,
                time_limit=self.limits.git_timeout_seconds,
            )
        return parse_numstat(out)

    async def cleanup(self) -> int:
        """Remove idle checkouts, then the least recently used ones while over the count or
        disk limits; never one in use (see `in_use` and `busy_seconds`). Returns how many."""
        if not self.root.is_dir():
            return 0
        entries = await asyncio.to_thread(_survey, self.root)
        now, limits = time.time(), self.limits
        count = sum(1 for e in entries if not e.leftover)
        total = sum(e.size for e in entries)
        removed = 0
        for entry in entries:  # least recently used first
            over = count > limits.max_count or total > limits.max_total_bytes
            idle = entry.leftover or now - entry.used > limits.idle_seconds
            if not (over or idle) or now - entry.used < limits.busy_seconds:
                continue
            if await self._remove(entry.path):
                removed += 0 if entry.leftover else 1
                count -= 0 if entry.leftover else 1
                total -= entry.size
        return removed

    async def _remove(self, path: Path) -> bool:
        key = next((k for k in self._in_use if directory_name(k) == path.name), None)
        lock = next((v for k, v in self._locks.items() if directory_name(k) == path.name), None)
        if key is not None or (lock is not None and lock.locked()):
            return False
        trash = path
        if not path.name.startswith(TEMP_PREFIX):
            # Renamed with no await since the checks above, so no open() can slip in between;
            # from here on open() finds it missing and rebuilds it.
            trash = path.with_name(f"{TEMP_PREFIX}{path.name}-{os.urandom(4).hex()}")
            os.rename(path, trash)
        await asyncio.to_thread(_remove_tree, trash)
        log.info("workspace_removed", workspace=path.name)
        return True

    def _lock(self, key: str) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    async def _create(self, path: Path, repo: str) -> WorkspaceRef:
        await asyncio.to_thread(_remove_tree, path)
        await self._clone_into(path, repo, checkout=None)
        base = (await git(["rev-parse", "HEAD"], path)).decode().strip()
        log.info("workspace_created", workspace=path.name, base=base)
        return WorkspaceRef(repo=repo, base_commit=base)

    async def _rebuild(self, path: Path, ref: WorkspaceRef) -> None:
        if ref.patch_truncated:
            log.warning("workspace_rebuilt_without_changes", workspace=path.name)
        await asyncio.to_thread(_remove_tree, path)
        await self._clone_into(path, ref.repo, checkout=ref)
        log.info("workspace_rebuilt", workspace=path.name, base=ref.base_commit)

    async def _clone_into(self, path: Path, repo: str, checkout: WorkspaceRef | None) -> None:
        """Clone next to `path` and rename into place, so a half-made clone is never reused."""
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{path.name}-", dir=self.root))
        try:
            timeout = self.limits.git_timeout_seconds
            await _clone(repo, staging / "ws", timeout, no_checkout=checkout is not None)
            if checkout is not None:
                await _checkout(staging / "ws", checkout, timeout)
            (staging / "ws").rename(path)
        finally:
            await asyncio.to_thread(_remove_tree, staging)


async def workspace_diff(
    ws: Workspace, time_limit: float = 600, max_bytes: int | None = None
) -> str:
    """The workspace's diff against its base commit (untracked files included), as text;
    cut after `max_bytes` when given."""
    raw = await _diff_bytes(ws, time_limit, max_bytes=max_bytes)
    return raw[:max_bytes].decode("utf-8", errors="replace")


async def _clone(repo: str, dest: Path, time_limit: float, no_checkout: bool) -> None:
    if not repo.strip() or repo.startswith("-"):
        raise WorkspaceError(f"not a repository: {repo!r}")
    args = ["clone", "--quiet", *(["--no-checkout"] if no_checkout else []), "--", repo, str(dest)]
    try:
        await git(args, None, time_limit=time_limit)
    except WorkspaceError as exc:
        raise WorkspaceError(f"could not clone {repo}: {exc}") from exc


async def _checkout(path: Path, ref: WorkspaceRef, time_limit: float) -> None:
    """Check `ref.base_commit` out (fetching it when no branch has it) and apply its patch."""
    commit = ref.base_commit
    if not re.fullmatch(r"[0-9a-f]{7,64}", commit):
        raise WorkspaceError(f"not a commit id: {commit!r}")
    try:
        await git(["cat-file", "-e", f"{commit}^{{commit}}"], path)
    except WorkspaceError:
        try:
            await git(["fetch", "--quiet", "origin", commit], path, time_limit=time_limit)
        except WorkspaceError as exc:
            raise WorkspaceError(f"commit {commit} is not in {ref.repo}") from exc
    await git(["checkout", "--quiet", "--detach", commit], path, time_limit=time_limit)
    if ref.patch and not ref.patch_truncated:
        try:
            patch = ref.patch.encode()
            await git(["apply", "--binary", "--whitespace=nowarn", "-"], path, stdin=patch)
        except WorkspaceError as exc:
            raise WorkspaceError(f"the recorded changes do not apply to {commit}: {exc}") from exc


async def _base_of(path: Path) -> str | None:
    """The commit the checkout at `path` was made from, or None when there is none."""
    if not (path / ".git").is_dir():
        return None
    try:
        return (await git(["rev-parse", "HEAD"], path)).decode().strip()
    except WorkspaceError:
        return None


@contextlib.asynccontextmanager
async def _temp_index(
    ws: Workspace, time_limit: float
) -> AsyncIterator[tuple[dict[str, str], Path]]:
    """An index holding the whole work tree (untracked files too), apart from the real one;
    yields the environment that selects it and a scratch directory."""
    with tempfile.TemporaryDirectory(prefix="agent-index-") as tmp:
        index = Path(tmp) / "index"
        real = ws.root / ".git" / "index"
        if real.exists():
            # Starting from the real index reuses its stat data: only changed files are hashed.
            shutil.copyfile(real, index)
        env = {"GIT_INDEX_FILE": str(index)}
        await git(["add", "--all"], ws.root, env, time_limit)
        yield env, Path(tmp)


async def _diff_bytes(
    ws: Workspace, time_limit: float, max_bytes: int | None = None, all_binary: bool = False
) -> bytes:
    args = ["diff", "--cached", "--binary", "--no-color", "--no-ext-diff", "--no-textconv"]
    async with _temp_index(ws, time_limit) as (env, scratch):
        options: list[str] = []
        if all_binary:
            attributes = scratch / "attributes"
            attributes.write_text("* binary\n")
            options = ["-c", f"core.attributesFile={attributes}"]
        return await git(
            [*options, *args, ws.ref.base_commit], ws.root, env, time_limit, max_bytes=max_bytes
        )


def _as_text(raw: bytes) -> str | None:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


# ------------------------------------------------------------------------------- on disk


def _touch(path: Path) -> None:
    (path / ".git" / MARKER).touch()


@dataclass(frozen=True)
class _Entry:
    path: Path
    used: float
    size: int
    leftover: bool  # of an interrupted clone or removal


def _survey(root: Path) -> list[_Entry]:
    """Every directory under `root` with when it was last used and its size, oldest first."""
    entries = []
    for path in root.iterdir():
        if not path.is_dir() or path.is_symlink():
            continue
        marker = path / ".git" / MARKER
        leftover = path.name.startswith(TEMP_PREFIX)
        if not leftover and not marker.exists():
            continue  # not ours: never removed, whatever else shares the directory
        used = (path if leftover else marker).lstat().st_mtime
        entries.append(_Entry(path, used, _tree_size(path), leftover))
    return sorted(entries, key=lambda e: e.used)


def _tree_size(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
    return total


def _remove_tree(path: Path) -> None:
    """Remove `path` if it exists; directories a command left read-only are opened first."""
    try:
        shutil.rmtree(path)
    except FileNotFoundError:
        pass
    except PermissionError:
        for dirpath, _dirs, _files in os.walk(path):
            with contextlib.suppress(OSError):
                os.chmod(dirpath, 0o700)
        shutil.rmtree(path, ignore_errors=True)
