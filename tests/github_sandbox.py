"""The sandbox GitHub for tests: a bare remote on a real disk and the pull-request endpoint
in-process on port 0, as `make run` has them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from aiohttp.test_utils import TestServer

from sandbox.github_repos import demo_remote_path, ensure_bare_remote
from sandbox.github_server import GitHubConfig, PullStore, create_github_app
from tests.tools.conftest import git as tools_git

TOKEN = "ghp_sandbox_test_token"
OWNER, NAME = "sandbox", "demo"


def git(cwd: Path, *args: str) -> str:
    """git's output, stripped (the tools' helper, with the same isolated environment)."""
    return tools_git(cwd, *args).strip()


def make_remote(tmp_path: Path) -> Path:
    """`<tmp>/github/sandbox/demo.git`: a bare clone of a small repository on `main`."""
    source = tmp_path / "source"
    (source / "src").mkdir(parents=True)
    (source / "README.md").write_text("# Demo\n")
    (source / "src" / "dates.py").write_text("def parse(text):\n    return text\n")
    git(source, "init", "-q", "-b", "main")
    git(source, "add", "-A")
    git(source, "commit", "-q", "-m", "initial")
    return ensure_bare_remote(source, demo_remote_path(tmp_path / "github"))


def branches(remote: Path) -> dict[str, str]:
    """Branch name -> commit, as the remote has them."""
    out = git(remote, "for-each-ref", "--format=%(refname:short) %(objectname)", "refs/heads")
    return dict(line.split(" ", 1) for line in out.splitlines())


@dataclass
class SandboxGitHub:
    web_url: str
    store: PullStore

    @property
    def api_url(self) -> str:
        return f"{self.web_url}/api/v3"


@asynccontextmanager
async def serve_github(root: Path, token: str | None = TOKEN) -> AsyncIterator[SandboxGitHub]:
    store = PullStore(root / "pulls.json")
    app = create_github_app(GitHubConfig(token=token, root=root), store)
    async with TestServer(app, host="127.0.0.1", port=0) as server:
        yield SandboxGitHub(str(server.make_url("")).rstrip("/"), store)
