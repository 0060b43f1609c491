"""Fixtures of the tool-layer tests: real git repositories and checkouts on a real disk."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from restate_app.tools.workspace import Workspace, Workspaces

GIT_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}

ORIGIN_FILES: dict[str, str | bytes] = {
    "README.md": "# Demo\n",
    "src/dates.py": "def parse_date(text):\n    return text.strip()\n",
    "src/util.py": "VALUE = 1\n\n\ndef helper():\n    return VALUE\n",
    "data/blob.bin": bytes(range(256)) * 4,
}


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", f"safe.directory={cwd}", *args],
        cwd=cwd,
        env={**os.environ, **GIT_ENV},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def make_repo(path: Path, files: dict[str, str | bytes]) -> Path:
    """A git repository at `path` with `files` in one commit."""
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    for name, content in files.items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "initial")
    return path


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory sandboxed commands (other uids) can reach: pytest's tmp_path sits under a
    directory only its owner may enter."""
    path = Path(tempfile.mkdtemp(prefix="tools-test-"))
    path.chmod(0o711)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "origin", ORIGIN_FILES)


@pytest.fixture
def workspaces(shared_dir: Path) -> Workspaces:
    return Workspaces(shared_dir / "workspaces")


@pytest.fixture
def thread_key() -> str:
    return f"T0:C{uuid.uuid4().hex[:8]}:1700000000.000100"


@pytest.fixture
async def ws(workspaces: Workspaces, origin: Path, thread_key: str) -> Workspace:
    return await workspaces.open(thread_key, None, str(origin))
