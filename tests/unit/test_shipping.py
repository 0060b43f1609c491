"""Shipping a thread's work: its branch on a real bare remote, its one draft pull request
through githubkit against the sandbox GitHub (in-process, port 0), idempotent throughout."""

from __future__ import annotations

import base64
import socket
from pathlib import Path

import pytest
from pydantic import SecretStr

from common.settings import AppSettings
from restate_app.shipping import (
    GitHubConfig,
    PullRequestText,
    ShipError,
    branch_name,
    git_auth_env,
    git_host,
    github_config,
    open_or_update_pr,
    pull_request_text,
    push,
    repository_of,
    ship,
)
from restate_app.tools.workspace import Workspace, Workspaces
from tests.github_sandbox import TOKEN, SandboxGitHub, branches, git

KEY = "T0SANDBOX:C0GENERAL:1700000000.000100"
TEXT = PullRequestText(title="Fix summer meeting times", body="The fix.")


@pytest.fixture
def config(github: SandboxGitHub) -> GitHubConfig:
    return GitHubConfig(api_url=github.api_url, token=SecretStr(TOKEN))


@pytest.fixture
async def ws(tmp_path: Path, remote: Path) -> Workspace:
    workspace = await Workspaces(tmp_path / "workspaces").open(KEY, None, str(remote))
    (workspace.root / "src" / "dates.py").write_text("def parse(text):\n    return text.strip()\n")
    (workspace.root / "NOTES.md").write_text("untracked, shipped all the same\n")
    return workspace


# ------------------------------------------------------------------------------- naming


def test_a_branch_name_is_readable_and_the_threads_own() -> None:
    name = branch_name(KEY, "<@U0BOT> Fix the *summer* meeting times in Berlin, please!")
    assert name.startswith("agent/fix-the-summer-meeting-times-in-")
    assert name == branch_name(KEY, "<@U0BOT> Fix the *summer* meeting times in Berlin, please!")
    assert name != branch_name(KEY.replace("0100", "0200"), "Fix the summer meeting times")
    assert len(name) <= len("agent/") + 40 + 9
    assert branch_name(KEY, "💥 ≠ …").startswith("agent/thread-")
    assert branch_name(KEY, "Crème brûlée").startswith("agent/creme-brulee-")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://github.com/acme/api.git", ("acme", "api")),
        ("https://x-access-token:secret@github.com/acme/api", ("acme", "api")),
        ("git@github.com:acme/api.git", ("acme", "api")),
        ("ssh://git@ghe.example.com:2222/acme/api.git", ("acme", "api")),
        ("/srv/github/sandbox/demo.git", ("sandbox", "demo")),
    ],
)
def test_the_github_repository_is_read_from_the_remote_url(
    url: str, expected: tuple[str, str]
) -> None:
    assert repository_of(url) == expected


def test_a_remote_url_naming_no_repository_is_refused_without_its_credentials() -> None:
    with pytest.raises(ShipError) as caught:
        repository_of("https://user:hunter2@example.com/")
    assert "hunter2" not in str(caught.value)


def test_the_pull_request_text_comes_from_the_conversation_with_a_link_back() -> None:
    long = "Please <@U0BOT> fix " + "the meeting times " * 10
    text = pull_request_text(long + "\nmore detail", "**Fixed.**", "https://slack/archives/C/p1")
    assert text.title.startswith("Please fix the meeting times")
    assert len(text.title) <= 72
    assert text.title.endswith("…")
    assert text.body.startswith("**Fixed.**")
    assert "[a Slack thread](https://slack/archives/C/p1)" in text.body


def test_the_token_reaches_git_only_for_that_githubs_https_remotes() -> None:
    cloud = GitHubConfig(token=SecretStr("ghp_abc"))
    env = git_auth_env("https://github.com/acme/api.git", cloud)
    assert env["GIT_CONFIG_KEY_0"] == "http.https://github.com/.extraHeader"
    secret = base64.b64decode(env["GIT_CONFIG_VALUE_0"].removeprefix("Authorization: Basic "))
    assert secret == b"x-access-token:ghp_abc"
    assert git_auth_env("https://gitlab.com/acme/api.git", cloud) == {}
    assert git_auth_env("git@github.com:acme/api.git", cloud) == {}
    assert git_auth_env("https://github.com/acme/api.git", GitHubConfig()) == {}
    enterprise = GitHubConfig(api_url="https://ghe.example.com/api/v3", token=SecretStr("t"))
    assert git_host(enterprise.api_url) == "ghe.example.com"
    assert git_auth_env("https://ghe.example.com/acme/api.git", enterprise) != {}


def test_shipping_defaults_to_githubs_api_and_no_token(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GITHUB_TOKEN", "GITHUB_API_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = AppSettings(
        slack_bot_token=SecretStr("xoxb-x"),
        openai_api_key=SecretStr("sk-x"),
        _env_file=None,  # type: ignore[call-arg]
    )
    assert github_config(settings) == GitHubConfig(api_url="https://api.github.com/")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_x")
    monkeypatch.setenv("GITHUB_API_URL", "https://ghe.example.com/api/v3")
    configured = github_config(
        AppSettings(
            slack_bot_token=SecretStr("xoxb-x"),
            openai_api_key=SecretStr("sk-x"),
            _env_file=None,  # type: ignore[call-arg]
        )
    )
    assert configured.api_url == "https://ghe.example.com/api/v3"
    assert configured.token is not None
    assert configured.token.get_secret_value() == "ghp_x"


# --------------------------------------------------------------------------------- push


async def test_pushing_twice_makes_one_branch_and_a_later_run_updates_it(
    ws: Workspace, remote: Path
) -> None:
    branch = branch_name(KEY, "Fix summer meeting times")
    first = await push(ws, branch, "Fix summer meeting times")
    again = await push(ws, branch, "Fix summer meeting times")
    assert (first.outcome, again.outcome, again.commit) == ("created", "unchanged", first.commit)
    assert set(branches(remote)) == {"main", branch}
    assert git(remote, "show", f"{branch}:NOTES.md") == "untracked, shipped all the same"
    assert git(remote, "rev-parse", f"{branch}^") == ws.ref.base_commit

    (ws.root / "README.md").write_text("# Demo, now documented\n")
    later = await push(ws, branch, "Document the fix")
    assert later.outcome == "updated"
    assert git(remote, "rev-parse", f"{branch}^") == first.commit
    assert branches(remote)[branch] == later.commit
    assert git(ws.root, "diff", "--cached", "--name-only") == ""  # its index left alone


async def test_a_replica_that_rebuilt_the_workspace_pushes_nothing_new(
    ws: Workspace, remote: Path, tmp_path: Path
) -> None:
    branch = branch_name(KEY, "Fix")
    first = await push(ws, branch, "Fix")
    elsewhere = Workspaces(tmp_path / "replica-2")
    rebuilt = await elsewhere.open(KEY, await Workspaces(ws.root.parent).patch(ws), str(remote))
    assert (await push(rebuilt, branch, "Fix")).commit == first.commit


async def test_a_push_builds_on_what_someone_else_pushed_to_the_branch(
    ws: Workspace, remote: Path, tmp_path: Path
) -> None:
    branch = branch_name(KEY, "Fix")
    await push(ws, branch, "Fix")
    person = tmp_path / "person"
    git(tmp_path, "clone", "-q", "-b", branch, str(remote), str(person))
    (person / "THEIRS.md").write_text("a reviewer's note\n")
    git(person, "add", "-A")
    git(person, "commit", "-q", "-m", "note")
    git(person, "push", "-q", "origin", branch)
    theirs = git(person, "rev-parse", "HEAD")

    result = await push(ws, branch, "Fix again")
    assert result.outcome == "updated"
    assert git(remote, "rev-parse", f"{branch}^") == theirs
    assert "THEIRS.md" not in git(remote, "ls-tree", "--name-only", branch)  # not merged


async def test_a_workspace_without_changes_is_not_pushed(tmp_path: Path, remote: Path) -> None:
    clean = await Workspaces(tmp_path / "ws").open(KEY, None, str(remote))
    with pytest.raises(ShipError, match="no changes"):
        await push(clean, "agent/nothing-1234abcd", "Nothing")
    assert set(branches(remote)) == {"main"}


async def test_a_branch_name_git_would_misread_is_refused(ws: Workspace) -> None:
    for bad in ("--upload-pack=x", "agent/../main", "agent/x.lock", ""):
        with pytest.raises(ShipError, match="not a branch name"):
            await push(ws, bad, "x")


# ------------------------------------------------------------------------- pull request


async def test_two_runs_open_one_draft_pull_request_and_then_update_it(
    ws: Workspace, github: SandboxGitHub, config: GitHubConfig
) -> None:
    branch = branch_name(KEY, TEXT.title)
    first = await ship(ws, branch, TEXT.title, TEXT, config)
    (ws.root / "README.md").write_text("# Demo, now documented\n")
    second_text = TEXT.model_copy(update={"body": "The fix, documented."})
    second = await ship(ws, branch, TEXT.title, second_text, config)

    assert first.pull_request is not None
    assert second.pull_request is not None
    assert (first.pull_request.created, second.pull_request.created) == (True, False)
    assert second.pull_request.number == first.pull_request.number
    assert second.pull_request.url == first.pull_request.url
    assert first.pull_request.url.startswith(github.web_url + "/sandbox/demo/pull/")
    (pull,) = github.store.pulls
    assert (pull.head, pull.base, pull.draft, pull.updates) == (branch, "main", True, 1)
    assert pull.body == "The fix, documented."


async def test_an_existing_open_pull_request_is_updated_never_duplicated(
    ws: Workspace, github: SandboxGitHub, config: GitHubConfig
) -> None:
    branch = branch_name(KEY, TEXT.title)
    await push(ws, branch, TEXT.title)
    results = [await open_or_update_pr(ws.ref.repo, branch, TEXT, config) for _ in range(3)]
    assert [r.created for r in results] == [True, False, False]
    assert len(github.store.pulls) == 1


async def test_a_bad_token_is_a_clear_error(ws: Workspace, github: SandboxGitHub) -> None:
    branch = branch_name(KEY, TEXT.title)
    await push(ws, branch, TEXT.title)
    bad = GitHubConfig(api_url=github.api_url, token=SecretStr("ghp_wrong"))
    with pytest.raises(ShipError) as caught:
        await open_or_update_pr(ws.ref.repo, branch, TEXT, bad)
    assert "GITHUB_TOKEN" in str(caught.value)
    assert "401 Bad credentials" in str(caught.value)
    assert "ghp_wrong" not in str(caught.value)
    assert github.store.pulls == []


async def test_without_a_token_only_the_branch_is_pushed(
    ws: Workspace, github: SandboxGitHub, remote: Path
) -> None:
    branch = branch_name(KEY, TEXT.title)
    result = await ship(ws, branch, TEXT.title, TEXT, GitHubConfig(api_url=github.api_url))
    assert result.pull_request is None
    assert result.push.outcome == "created"
    assert branch in branches(remote)
    assert github.store.pulls == []


async def test_an_unreachable_github_is_a_clear_error(ws: Workspace) -> None:
    with socket.socket() as sock:  # a port just freed, so nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = GitHubConfig(api_url=f"http://127.0.0.1:{port}/api/v3", token=SecretStr(TOKEN))
    with pytest.raises(ShipError, match="GitHub could not be reached"):
        await open_or_update_pr(ws.ref.repo, "agent/x-1234abcd", TEXT, config)
