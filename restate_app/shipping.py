"""Ship a thread's work: push its workspace to a branch `agent/<slug>` on the repository's own
remote and open, or update, one draft pull request for that branch through GitHub's REST API.

Both halves are idempotent, because the durable step that runs them may run again after a
crash: pushing a tree the branch already holds pushes nothing, and the pull request is looked up
by its head branch before one is opened, so a thread never gets a second one.

Which repository on GitHub: the last two path components of the workspace's repository URL
(`https://github.com/OWNER/NAME.git`, `git@github.com:OWNER/NAME.git`, or a local path ending in
`OWNER/NAME.git`, as the sandbox's remote does). That is the URL the workspace was cloned from
and is pushed to, so branch and pull request can never name two different repositories.
"""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import structlog
from githubkit import GitHub, TokenAuthStrategy
from githubkit.exception import GitHubException, RequestFailed
from githubkit_schemas.latest.models import PullRequest, PullRequestSimple
from pydantic import BaseModel, SecretStr

from common.settings import AppSettings
from restate_app.tools.git import WorkspaceError, git
from restate_app.tools.workspace import Workspace

log = structlog.get_logger(__name__)

BRANCH_PREFIX = "agent/"
_SLUG_MAX = 40
_TITLE_MAX = 72
# GitHub refuses a pull request body over 65,536 characters; the footer needs some room.
_BODY_MAX = 60_000
_NAME = re.compile(r"[A-Za-z0-9_.-]+")


class ShipError(Exception):
    """Shipping failed; the message says why for the log and an operator (never a token)."""


@dataclass(frozen=True)
class GitHubConfig:
    """Where pull requests are opened; without a token only the branch is pushed."""

    api_url: str = "https://api.github.com"
    token: SecretStr | None = None
    timeout_seconds: float = 30.0


def github_config(settings: AppSettings) -> GitHubConfig:
    return GitHubConfig(api_url=str(settings.github_api_url), token=settings.github_token)


class PushResult(BaseModel):
    branch: str
    commit: str
    outcome: Literal["created", "updated", "unchanged"]


class PullRequestResult(BaseModel):
    number: int
    url: str
    created: bool


class ShipResult(BaseModel):
    push: PushResult
    pull_request: PullRequestResult | None = None


class PullRequestText(BaseModel):
    title: str
    body: str


# --------------------------------------------------------------------------------- naming


def plain_text(slack_text: str) -> str:
    """Slack mrkdwn as plain text: mentions dropped, links reduced to their labels."""
    text = re.sub(r"<[@#!][^>]*>", "", slack_text)
    text = re.sub(r"<([^|>]+)\|([^>]+)>", r"\2", text)
    text = re.sub(r"<([^>]+)>", r"\1", text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").strip()


def branch_name(thread_key: str, title: str) -> str:
    """`agent/<words of the title>-<hash of the thread key>`: the hash makes it the thread's
    own, the words make it readable. Pass the same title on every run (the thread's opening
    request), or keep the first result in the session, so the branch never changes."""
    ascii_title = unicodedata.normalize("NFKD", plain_text(title)).encode("ascii", "ignore")
    words = re.findall(r"[a-z0-9]+", ascii_title.decode().lower())
    slug = words[0][:_SLUG_MAX] if words else ""
    for word in words[1:]:
        if len(slug) + 1 + len(word) > _SLUG_MAX:
            break
        slug = f"{slug}-{word}"
    digest = hashlib.sha256(thread_key.encode()).hexdigest()[:8]
    return f"{BRANCH_PREFIX}{slug}-{digest}" if slug else f"{BRANCH_PREFIX}thread-{digest}"


def pull_request_text(request: str, answer: str, thread_url: str | None) -> PullRequestText:
    """Title from the request's first line, body from the agent's answer, and a link back."""
    lines = [" ".join(line.split()) for line in plain_text(request).splitlines() if line.strip()]
    title = lines[0] if lines else "Changes from a Slack thread"
    if len(title) > _TITLE_MAX:
        title = title[: _TITLE_MAX - 1].rstrip() + "…"
    body = answer.strip()
    if len(body) > _BODY_MAX:
        body = body[:_BODY_MAX].rstrip() + "\n\n… (cut; the whole answer is in the thread)"
    where = f"[a Slack thread]({thread_url})" if thread_url else "a Slack thread"
    footer = f"Opened as a draft by the coding agent from {where}. Later runs update it."
    return PullRequestText(title=title, body=f"{body}\n\n---\n{footer}" if body else footer)


def repository_of(repo_url: str) -> tuple[str, str]:
    """(owner, name) on GitHub of a remote URL: its last two path components, `.git` off."""
    if "://" in repo_url:
        path = urlsplit(repo_url).path
    elif re.match(r"^[\w.-]+@[\w.-]+:", repo_url):  # scp-like: git@github.com:owner/name.git
        path = repo_url.split(":", 1)[1]
    else:
        path = repo_url
    parts = [part for part in path.rstrip("/").split("/") if part]
    if len(parts) < 2:
        raise ShipError(f"cannot tell the GitHub repository of {_redact(repo_url)}")
    owner, name = parts[-2], parts[-1].removesuffix(".git")
    if not (_NAME.fullmatch(owner) and _NAME.fullmatch(name)):
        raise ShipError(f"cannot tell the GitHub repository of {_redact(repo_url)}")
    return owner, name


# ----------------------------------------------------------------------------------- push


async def push(
    ws: Workspace,
    branch: str,
    message: str,
    github: GitHubConfig | None = None,
    time_limit: float = 600,
) -> PushResult:
    """Push the workspace's current state as one commit on `branch` of its repository.

    A later run adds a commit on top of the branch (reviewers see what each run changed); a
    branch that moved since it was read is never overwritten (`--force-with-lease`), and one
    that no longer descends from the base commit is replaced. The branch is the thread's: a
    commit someone else pushed to it stays in its history, but the next commit holds the
    workspace's tree, which does not have their change. Pushing the tree the branch already
    has is a no-op, so running this twice is harmless.
    """
    _check_branch(branch)
    remote, ref = ws.ref.repo, f"refs/heads/{branch}"
    env = git_auth_env(remote, github)
    try:
        tip = await _remote_tip(ws, remote, ref, env, time_limit)
        tree = await _work_tree(ws, time_limit)
        if tip is not None and await _tree_of(ws, tip) == tree:
            return PushResult(branch=branch, commit=tip, outcome="unchanged")
        base = ws.ref.base_commit
        if tip is None and await _tree_of(ws, base) == tree:
            raise ShipError("the workspace has no changes to push")
        parent = tip if tip is not None and await _descends_from(ws, tip, base) else base
        out = await git(["commit-tree", tree, "-p", parent, "-m", message], ws.root)
        commit = out.decode().strip()
        lease = f"--force-with-lease={ref}:{tip or ''}"
        await git(
            ["push", "--quiet", lease, "--", remote, f"{commit}:{ref}"], ws.root, env, time_limit
        )
    except WorkspaceError as exc:
        raise ShipError(f"could not push {branch}: {_redact(str(exc))}") from None
    outcome: Literal["created", "updated"] = "created" if tip is None else "updated"
    log.info("branch_pushed", branch=branch, commit=commit, outcome=outcome)
    return PushResult(branch=branch, commit=commit, outcome=outcome)


def _check_branch(branch: str) -> None:
    bad = ".." in branch or branch.endswith((".", "/", ".lock")) or "//" in branch
    if bad or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._/-]*", branch):
        raise ShipError(f"not a branch name: {branch!r}")


async def _remote_tip(
    ws: Workspace, remote: str, ref: str, env: dict[str, str], time_limit: float
) -> str | None:
    """The commit `ref` names on the remote (fetched, so its tree can be read), or None."""
    listed = (await git(["ls-remote", "--", remote, ref], ws.root, env, time_limit)).decode()
    tips = [line.split("\t")[0] for line in listed.splitlines() if line.endswith(f"\t{ref}")]
    if not tips:
        return None
    try:
        await git(["cat-file", "-e", f"{tips[0]}^{{commit}}"], ws.root)
    except WorkspaceError:
        await git(["fetch", "--quiet", "--no-tags", "--", remote, ref], ws.root, env, time_limit)
    return tips[0]


async def _work_tree(ws: Workspace, time_limit: float) -> str:
    """The tree of the whole work tree, untracked files too, written through an index of its
    own so the checkout's index (what a command staged) is left alone."""
    with tempfile.TemporaryDirectory(prefix="agent-ship-") as tmp:
        index = Path(tmp) / "index"
        real = ws.root / ".git" / "index"
        if real.exists():
            shutil.copyfile(real, index)  # its stat data spares hashing unchanged files
        env = {"GIT_INDEX_FILE": str(index)}
        await git(["add", "--all"], ws.root, env, time_limit)
        return (await git(["write-tree"], ws.root, env, time_limit)).decode().strip()


async def _tree_of(ws: Workspace, commit: str) -> str:
    return (await git(["rev-parse", f"{commit}^{{tree}}"], ws.root)).decode().strip()


async def _descends_from(ws: Workspace, commit: str, ancestor: str) -> bool:
    try:
        await git(["merge-base", "--is-ancestor", ancestor, commit], ws.root)
    except WorkspaceError:
        return False
    return True


def git_host(api_url: str) -> str | None:
    """The host git is served from for a GitHub API: github.com for api.github.com, the
    same host for GitHub Enterprise (`https://HOST/api/v3`)."""
    host = urlsplit(api_url).hostname
    return "github.com" if host == "api.github.com" else host


def git_auth_env(remote: str, github: GitHubConfig | None) -> dict[str, str]:
    """With a token and an https remote on that GitHub's host, git authenticates with the
    token as an HTTP header given through the environment: never on the command line, which
    any process can read, and never to another host."""
    if github is None or github.token is None:
        return {}
    parts = urlsplit(remote)
    if (
        parts.scheme != "https"
        or parts.hostname is None
        or parts.hostname != git_host(github.api_url)
    ):
        return {}
    secret = f"x-access-token:{github.token.get_secret_value()}".encode()
    host = parts.hostname + (f":{parts.port}" if parts.port else "")
    return {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": f"http.https://{host}/.extraHeader",
        "GIT_CONFIG_VALUE_0": f"Authorization: Basic {base64.b64encode(secret).decode()}",
    }


def _redact(text: str) -> str:
    """Credentials an https URL may carry (`https://user:token@host/`) never reach a log."""
    return re.sub(r"(?<=://)[^/@\s]+@", "***@", text)


# ---------------------------------------------------------------------------- pull request


async def open_or_update_pr(
    repo_url: str,
    branch: str,
    text: PullRequestText,
    config: GitHubConfig,
    base: str | None = None,
) -> PullRequestResult:
    """The open pull request from `branch` with `text` as its title and body: the existing one
    updated, else a new draft into `base` (default: the repository's default branch)."""
    if config.token is None:
        raise ShipError("no GITHUB_TOKEN: the branch can be pushed, a pull request cannot")
    owner, name = repository_of(repo_url)
    async with _client(config) as github:
        try:
            found = await _find_open(github, owner, name, branch)
            if found is None:
                try:
                    return await _create(github, owner, name, branch, text, base)
                except RequestFailed as exc:
                    # Opened meanwhile (a retried step, a second replica): update that one.
                    if exc.response.status_code != 422:
                        raise
                    found = await _find_open(github, owner, name, branch)
                    if found is None:
                        raise
            return await _update(github, owner, name, found, text)
        except RequestFailed as exc:
            raise ShipError(_failure(exc, owner, name)) from exc
        except GitHubException as exc:
            raise ShipError(f"GitHub could not be reached: {exc!r}") from exc


async def ship(
    ws: Workspace, branch: str, message: str, text: PullRequestText, config: GitHubConfig
) -> ShipResult:
    """Push the branch, then, where a token is set, open or update its pull request."""
    pushed = await push(ws, branch, message, config)
    if config.token is None:
        log.info("pull_request_skipped", branch=branch, reason="no_github_token")
        return ShipResult(push=pushed)
    pull = await open_or_update_pr(ws.ref.repo, branch, text, config)
    return ShipResult(push=pushed, pull_request=pull)


def _client(config: GitHubConfig) -> GitHub[TokenAuthStrategy]:
    assert config.token is not None
    # No HTTP cache (a pull request looked up must be the current one) and no retries of its
    # own: the durable step that ships is retried as a whole, and every part is idempotent.
    return GitHub(
        config.token.get_secret_value(),
        base_url=config.api_url,
        http_cache=False,
        auto_retry=False,
        timeout=config.timeout_seconds,
        user_agent="slack-thread-agent",
    )


async def _find_open(
    github: GitHub[TokenAuthStrategy], owner: str, name: str, branch: str
) -> int | None:
    response = await github.rest.pulls.async_list(
        owner, name, state="open", head=f"{owner}:{branch}"
    )
    pulls: list[PullRequestSimple] = response.parsed_data
    return min((pull.number for pull in pulls), default=None)


async def _create(
    github: GitHub[TokenAuthStrategy],
    owner: str,
    name: str,
    branch: str,
    text: PullRequestText,
    base: str | None,
) -> PullRequestResult:
    if base is None:
        base = (await github.rest.repos.async_get(owner, name)).parsed_data.default_branch
    response = await github.rest.pulls.async_create(
        owner, name, title=text.title, body=text.body, head=branch, base=base, draft=True
    )
    pull: PullRequest = response.parsed_data
    log.info("pull_request_opened", repository=f"{owner}/{name}", number=pull.number)
    return PullRequestResult(number=pull.number, url=pull.html_url, created=True)


async def _update(
    github: GitHub[TokenAuthStrategy], owner: str, name: str, number: int, text: PullRequestText
) -> PullRequestResult:
    response = await github.rest.pulls.async_update(
        owner, name, number, title=text.title, body=text.body
    )
    pull: PullRequest = response.parsed_data
    log.info("pull_request_updated", repository=f"{owner}/{name}", number=pull.number)
    return PullRequestResult(number=pull.number, url=pull.html_url, created=False)


def _failure(exc: RequestFailed, owner: str, name: str) -> str:
    """GitHub's refusal in a sentence that says what to fix."""
    status = exc.response.status_code
    try:
        said = exc.response.raw_response.json()
    except ValueError:
        said = None
    said = said if isinstance(said, dict) else {}
    errors = [e for e in said.get("errors", []) if isinstance(e, dict)]
    details = [e.get("message") or e.get("code") for e in errors]
    reason = "; ".join(str(d) for d in details if d) or said.get("message") or str(status)
    if status == 401:
        return f"GitHub refused GITHUB_TOKEN ({status} {reason}): set a valid token"
    if status == 403:
        return f"GITHUB_TOKEN may not open pull requests in {owner}/{name} ({reason})"
    if status == 404:
        return f"{owner}/{name} is not on GitHub, or GITHUB_TOKEN cannot see it"
    return f"GitHub refused the pull request for {owner}/{name} ({status}: {reason})"
