"""Workspaces: one checkout per thread, recorded as base commit + patch, rebuilt anywhere."""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import pytest

from restate_app.tools.diffstat import summary_of
from restate_app.tools.workspace import (
    MARKER,
    Workspace,
    WorkspaceError,
    WorkspaceLimits,
    WorkspaceRef,
    Workspaces,
    directory_name,
)
from tests.tools.conftest import git


def make_changes(root: Path) -> None:
    """An edit, a deletion, a new untracked file, a new binary file, a non-UTF-8 text file."""
    (root / "src/dates.py").write_text("def parse_date(text):\n    return text.strip().lower()\n")
    (root / "README.md").unlink()
    (root / "notes").mkdir()
    (root / "notes/todo.md").write_text("- untracked but recorded\n")
    (root / "data/new.bin").write_bytes(bytes(range(256))[::-1] * 3)
    (root / "latin1.txt").write_bytes("café\n".encode("latin-1"))


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(root).parts
    }


def test_directory_names_are_safe_readable_and_distinct() -> None:
    name = directory_name("T0:C0:1700000000.000100")
    assert re.fullmatch(r"T0-C0-1700000000-000100-[0-9a-f]{12}", name)
    assert directory_name("T0:C0:1700000000.000100") == name
    assert directory_name("T0:C0:1700000000-000100") != name
    assert "/" not in directory_name("../../etc:x")


async def test_first_open_clones_the_repository_at_its_head(
    workspaces: Workspaces, origin: Path, thread_key: str
) -> None:
    ws = await workspaces.open(thread_key, None, str(origin))
    assert ws.ref.base_commit == git(origin, "rev-parse", "HEAD").strip()
    assert ws.ref.repo == str(origin)
    assert (ws.root / "src/dates.py").read_text().startswith("def parse_date")
    assert ws.root.parent == workspaces.root


async def test_edits_survive_in_the_patch_and_a_rebuild_reproduces_them(
    workspaces: Workspaces, ws: Workspace, thread_key: str
) -> None:
    make_changes(ws.root)
    ref = await workspaces.patch(ws)
    diff = await workspaces.diff(ws)
    files = snapshot(ws.root)
    assert not ref.patch_truncated
    assert "notes/todo.md" in ref.patch
    # latin1.txt is not UTF-8, so the patch carries it as a binary (base85) hunk.
    assert "GIT binary patch" in ref.patch

    # Another replica, or cleanup: the directory is gone; the durable ref is all there is.
    shutil.rmtree(ws.root)
    stored = WorkspaceRef.model_validate_json(ref.model_dump_json())
    rebuilt = await workspaces.open(thread_key, stored, stored.repo)

    assert rebuilt.root == ws.root
    assert snapshot(rebuilt.root) == files
    assert await workspaces.diff(rebuilt) == diff
    # Untracked files come back untracked: the user's view is as it was.
    assert "?? notes/" in git(rebuilt.root, "status", "--porcelain")


async def test_an_existing_checkout_with_the_same_base_is_reused_as_it_is(
    workspaces: Workspaces, ws: Workspace, thread_key: str
) -> None:
    (ws.root / "scratch.txt").write_text("made after the last patch\n")
    again = await workspaces.open(thread_key, ws.ref, ws.ref.repo)
    assert (again.root / "scratch.txt").read_text() == "made after the last patch\n"


async def test_diff_stat_counts_files_and_lines(workspaces: Workspaces, ws: Workspace) -> None:
    (ws.root / "src/util.py").write_text("VALUE = 2\n\n\ndef helper():\n    return VALUE\n")
    (ws.root / "added.txt").write_text("one\ntwo\n")
    (ws.root / "README.md").unlink()
    stat = await workspaces.diff_stat(ws)
    assert sorted(stat.files) == ["README.md", "added.txt", "src/util.py"]
    assert (stat.added, stat.removed) == (3, 2)
    assert stat.files_changed == 3


async def test_a_patch_over_the_bound_is_flagged_not_recorded(
    shared_dir: Path, origin: Path, thread_key: str
) -> None:
    workspaces = Workspaces(shared_dir / "small", WorkspaceLimits(max_patch_bytes=2_000))
    ws = await workspaces.open(thread_key, None, str(origin))
    (ws.root / "big.txt").write_text("x" * 10_000)
    ref = await workspaces.patch(ws)
    assert (ref.patch, ref.patch_truncated) == ("", True)
    (ws.root / "big.txt").unlink()
    assert (await workspaces.patch(ws)).patch_truncated is False


async def test_a_missing_repository_is_a_clear_error(
    workspaces: Workspaces, shared_dir: Path, thread_key: str
) -> None:
    with pytest.raises(WorkspaceError, match="could not clone"):
        await workspaces.open(thread_key, None, str(shared_dir / "no-such-repo"))
    assert not (workspaces.root / directory_name(thread_key)).exists()


async def test_a_missing_base_commit_is_a_clear_error(
    workspaces: Workspaces, origin: Path, thread_key: str
) -> None:
    ref = WorkspaceRef(repo=str(origin), base_commit="0123456789abcdef0123456789abcdef01234567")
    with pytest.raises(WorkspaceError, match=r"commit 0123456789ab\w+ is not in"):
        await workspaces.open(thread_key, ref, ref.repo)


async def test_a_patch_that_does_not_apply_is_a_clear_error(
    workspaces: Workspaces, ws: Workspace, thread_key: str
) -> None:
    (ws.root / "src/util.py").write_text("changed\n")
    ref = await workspaces.patch(ws)
    shutil.rmtree(ws.root)
    broken = ref.model_copy(update={"patch": ref.patch.replace("VALUE = 1", "VALUE = 9")})
    with pytest.raises(WorkspaceError, match="recorded changes do not apply"):
        await workspaces.open(thread_key, broken, broken.repo)


# ------------------------------------------------------------------------------ cleanup


async def open_aged(workspaces: Workspaces, origin: Path, ages: list[float]) -> list[Workspace]:
    """Checkouts last used `ages` seconds ago."""
    opened = []
    for i, age in enumerate(ages):
        ws = await workspaces.open(f"T0:C0:170000000{i}.000100", None, str(origin))
        used = time.time() - age
        os.utime(ws.root / ".git" / MARKER, (used, used))
        opened.append(ws)
    return opened


DAY = 86_400.0


async def test_cleanup_removes_checkouts_idle_too_long(shared_dir: Path, origin: Path) -> None:
    workspaces = Workspaces(shared_dir / "ws", WorkspaceLimits(idle_seconds=7 * DAY))
    old, recent = await open_aged(workspaces, origin, [8 * DAY, 2 * DAY])
    assert await workspaces.cleanup() == 1
    assert not old.root.exists()
    assert recent.root.exists()


async def test_cleanup_keeps_at_most_max_count_least_recently_used_first(
    shared_dir: Path, origin: Path
) -> None:
    workspaces = Workspaces(shared_dir / "ws", WorkspaceLimits(max_count=2))
    oldest, older, newer, newest = await open_aged(
        workspaces, origin, [4 * DAY, 3 * DAY, 2 * DAY, 1 * DAY]
    )
    assert await workspaces.cleanup() == 2
    assert [ws.root.exists() for ws in (oldest, older, newer, newest)] == [
        False,
        False,
        True,
        True,
    ]


async def test_cleanup_keeps_the_disk_bound(shared_dir: Path, origin: Path) -> None:
    workspaces = Workspaces(shared_dir / "ws", WorkspaceLimits(max_total_bytes=1))
    opened = await open_aged(workspaces, origin, [3 * DAY, 2 * DAY])
    assert await workspaces.cleanup() == 2
    assert not any(ws.root.exists() for ws in opened)


async def test_cleanup_never_removes_a_checkout_in_use_or_used_just_now(
    shared_dir: Path, origin: Path
) -> None:
    workspaces = Workspaces(shared_dir / "ws", WorkspaceLimits(max_count=1, idle_seconds=DAY))
    busy, just_used = await open_aged(workspaces, origin, [9 * DAY, 0])
    with workspaces.in_use(busy):
        assert await workspaces.cleanup() == 0
    assert busy.root.exists()
    assert just_used.root.exists()
    assert await workspaces.cleanup() == 1
    assert not busy.root.exists()


async def test_cleanup_leaves_directories_that_are_not_checkouts_alone(
    shared_dir: Path, origin: Path
) -> None:
    workspaces = Workspaces(shared_dir / "ws", WorkspaceLimits(max_count=1, idle_seconds=1))
    await open_aged(workspaces, origin, [DAY])
    stranger = workspaces.root / "not-ours"
    stranger.mkdir()
    old = time.time() - 30 * DAY
    os.utime(stranger, (old, old))
    assert await workspaces.cleanup() == 1
    assert stranger.exists()


async def test_a_removed_checkout_is_rebuilt_on_the_next_open(
    shared_dir: Path, origin: Path
) -> None:
    workspaces = Workspaces(shared_dir / "ws", WorkspaceLimits(idle_seconds=DAY))
    (ws,) = await open_aged(workspaces, origin, [2 * DAY])
    (ws.root / "kept.txt").write_text("recorded\n")
    ref = await workspaces.patch(ws)
    os.utime(ws.root / ".git" / MARKER, (0, 0))
    assert await workspaces.cleanup() == 1
    again = await workspaces.open(ws.key, ref, ref.repo)
    assert (again.root / "kept.txt").read_text() == "recorded\n"


async def test_a_relative_workspaces_directory_works(
    shared_dir: Path, origin: Path, monkeypatch: pytest.MonkeyPatch, thread_key: str
) -> None:
    monkeypatch.chdir(shared_dir)
    workspaces = Workspaces(Path(".run/workspaces"))
    ws = await workspaces.open(thread_key, None, str(origin))
    (ws.root / "new.txt").write_text("x\n")
    assert "new.txt" in (await workspaces.patch(ws)).patch
    assert ws.root.is_absolute()


async def test_a_checkout_that_is_not_the_recorded_state_is_rebuilt_when_synced(
    workspaces: Workspaces, ws: Workspace, thread_key: str
) -> None:
    """Another replica worked on the thread since: the checkout here is older than the
    session's recorded changes, and opening it with `sync` brings it up to date."""
    (ws.root / "src/dates.py").write_text("recorded\n")
    recorded = await workspaces.patch(ws)
    (ws.root / "src/dates.py").write_text("stale, from an older run\n")
    unsynced = await workspaces.open(thread_key, recorded, recorded.repo)
    assert (unsynced.root / "src/dates.py").read_text() == "stale, from an older run\n"
    synced = await workspaces.open(thread_key, recorded, recorded.repo, sync=True)
    assert (synced.root / "src/dates.py").read_text() == "recorded\n"


async def test_the_change_summary_is_read_from_the_patch_as_git_counts_it(
    workspaces: Workspaces, ws: Workspace
) -> None:
    (ws.root / "src/util.py").write_text("VALUE = 2\n\n\ndef helper():\n    return VALUE\n")
    (ws.root / "added.txt").write_text("one\ntwo\n")
    (ws.root / "README.md").unlink()
    from_patch = summary_of((await workspaces.patch(ws)).patch)
    from_git = await workspaces.diff_stat(ws)
    assert from_patch is not None
    assert sorted(from_patch.files) == sorted(from_git.files)
    assert (from_patch.added, from_patch.removed) == (from_git.added, from_git.removed)
    (ws.root / "data/new.bin").write_bytes(bytes(range(256)))
    assert summary_of((await workspaces.patch(ws)).patch) is None, "binary hunks: ask git"
