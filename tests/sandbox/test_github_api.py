"""The sandbox GitHub answers the pull-request calls as GitHub does: its shapes (checked against
githubkit's models, generated from GitHub's OpenAPI description), its token auth and its 422s;
lists pull requests for tests and on the sandbox page; and keeps its bare remotes."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp.test_utils import TestClient, TestServer
from githubkit_schemas.latest.models import FullRepository, PullRequest, PullRequestSimple
from playwright.async_api import async_playwright, expect

from sandbox.github_page import show_on_page
from sandbox.github_repos import ensure_bare_remote
from sandbox.github_state import PullStore
from sandbox.slack_workspace import WorkspaceConfig, create_workspace_app
from tests.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.github_sandbox import (
    NAME,
    OWNER,
    TOKEN,
    SandboxGitHub,
    branches,
    git,
)

REPO = f"/repos/{OWNER}/{NAME}"


def push_branch(remote: Path, tmp_path: Path, branch: str, content: str = "changed\n") -> str:
    """A commit on `branch` of `remote`, as a person would push it."""
    clone = tmp_path / f"clone-{branch.replace('/', '-')}"
    git(tmp_path, "clone", "-q", str(remote), str(clone))
    (clone / "README.md").write_text(content)
    git(clone, "commit", "-q", "-am", "change")
    git(clone, "push", "-q", "origin", f"HEAD:refs/heads/{branch}")
    return git(clone, "rev-parse", "HEAD")


@pytest.fixture
async def http(github: SandboxGitHub) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {TOKEN}", "Accept": "application/vnd.github+json"}
    async with httpx.AsyncClient(base_url=github.api_url, headers=headers) as client:
        yield client


def new_pull(head: str, **extra: Any) -> dict[str, Any]:
    return {
        "title": "Fix dates",
        "body": "Why",
        "head": head,
        "base": "main",
        "draft": True,
    } | extra


async def test_a_repository_and_its_pull_requests_have_githubs_shapes(
    http: httpx.AsyncClient, remote: Path, tmp_path: Path
) -> None:
    head_sha = push_branch(remote, tmp_path, "agent/fix")
    repo = await http.get(REPO)
    assert FullRepository.model_validate(repo.json()).default_branch == "main"
    created = await http.post(REPO + "/pulls", json=new_pull("agent/fix"))
    assert created.status_code == 201
    pull = PullRequest.model_validate(created.json())
    assert (pull.number, pull.draft, pull.head.sha, pull.commits) == (1, True, head_sha, 1)
    assert pull.html_url.endswith(f"/{OWNER}/{NAME}/pull/1")
    assert created.headers["Location"] == pull.url
    listed = await http.get(REPO + "/pulls", params={"head": f"{OWNER}:agent/fix"})
    assert [PullRequestSimple.model_validate(p).number for p in listed.json()] == [1]


async def test_a_token_is_required_and_checked(github: SandboxGitHub) -> None:
    async with httpx.AsyncClient(base_url=github.api_url) as anonymous:
        missing = await anonymous.get(REPO)
        wrong = await anonymous.get(REPO, headers={"Authorization": "Bearer ghp_wrong"})
        as_token = await anonymous.get(REPO, headers={"Authorization": f"token {TOKEN}"})
    assert (missing.status_code, missing.json()["message"]) == (401, "Requires authentication")
    assert (wrong.status_code, wrong.json()["message"]) == (401, "Bad credentials")
    assert as_token.status_code == 200


async def test_a_second_pull_request_for_one_head_is_refused_like_github(
    http: httpx.AsyncClient, remote: Path, tmp_path: Path
) -> None:
    push_branch(remote, tmp_path, "agent/fix")
    assert (await http.post(REPO + "/pulls", json=new_pull("agent/fix"))).status_code == 201
    again = await http.post(REPO + "/pulls", json=new_pull(f"{OWNER}:agent/fix"))
    assert again.status_code == 422
    assert again.json()["message"] == "Validation Failed"
    message = f"A pull request already exists for {OWNER}:agent/fix."
    assert again.json()["errors"] == [
        {"resource": "PullRequest", "code": "custom", "message": message}
    ]


async def test_unknown_branches_repositories_and_empty_heads_are_refused(
    http: httpx.AsyncClient, remote: Path
) -> None:
    git(remote, "branch", "agent/empty", "main")
    no_head = await http.post(REPO + "/pulls", json=new_pull("agent/missing"))
    assert no_head.status_code == 422
    assert no_head.json()["errors"][0]["field"] == "head"
    no_base = await http.post(REPO + "/pulls", json=new_pull("agent/empty", base="develop"))
    assert no_base.json()["errors"][0]["field"] == "base"
    empty = await http.post(REPO + "/pulls", json=new_pull("agent/empty"))
    assert empty.json()["errors"][0]["message"] == "No commits between main and agent/empty"
    no_title = await http.post(REPO + "/pulls", json=new_pull("agent/empty", title=None))
    assert no_title.json()["errors"][0]["code"] == "missing_field"
    assert (await http.get(f"/repos/{OWNER}/other/pulls")).status_code == 404


async def test_a_head_without_its_owner_filters_nothing_as_on_github(
    http: httpx.AsyncClient, remote: Path, tmp_path: Path
) -> None:
    push_branch(remote, tmp_path, "agent/one", "one\n")
    push_branch(remote, tmp_path, "agent/two", "two\n")
    for head in ("agent/one", "agent/two"):
        assert (await http.post(REPO + "/pulls", json=new_pull(head))).status_code == 201
    by_owner = await http.get(REPO + "/pulls", params={"head": f"{OWNER}:agent/two"})
    bare = await http.get(REPO + "/pulls", params={"head": "agent/two"})
    assert [p["head"]["ref"] for p in by_owner.json()] == ["agent/two"]
    assert len(bare.json()) == 2


async def test_an_update_changes_title_and_body_and_is_counted(
    http: httpx.AsyncClient, github: SandboxGitHub, remote: Path, tmp_path: Path
) -> None:
    push_branch(remote, tmp_path, "agent/fix")
    await http.post(REPO + "/pulls", json=new_pull("agent/fix"))
    patched = await http.patch(REPO + "/pulls/1", json={"title": "Fix dates, v2", "body": "More"})
    assert PullRequest.model_validate(patched.json()).title == "Fix dates, v2"
    assert (await http.patch(REPO + "/pulls/9", json={"title": "x"})).status_code == 404
    async with httpx.AsyncClient() as control:
        listed = (await control.get(github.web_url + "/_sandbox/pulls")).json()["pulls"]
    assert [(p["number"], p["title"], p["body"], p["updates"]) for p in listed] == [
        (1, "Fix dates, v2", "More", 1)
    ]


async def test_the_pull_request_page_escapes_what_people_wrote_and_shows_the_diff(
    http: httpx.AsyncClient, github: SandboxGitHub, remote: Path, tmp_path: Path
) -> None:
    push_branch(remote, tmp_path, "agent/fix", "<b>new</b>\n")
    title = '<script>alert("x")</script>'
    await http.post(REPO + "/pulls", json=new_pull("agent/fix", title=title))
    async with httpx.AsyncClient() as browser:
        page = await browser.get(f"{github.web_url}/{OWNER}/{NAME}/pull/1")
    assert page.status_code == 200
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    assert "<script>" not in page.text
    assert "&lt;script&gt;" in page.text
    assert '<span class="add">+&lt;b&gt;new&lt;/b&gt;</span>' in page.text


async def test_pull_requests_outlive_a_restart_and_reset_through_the_control_api(
    http: httpx.AsyncClient, github: SandboxGitHub, remote: Path, tmp_path: Path
) -> None:
    push_branch(remote, tmp_path, "agent/fix")
    await http.post(REPO + "/pulls", json=new_pull("agent/fix"))
    reloaded = PullStore(tmp_path / "github" / "pulls.json")
    assert [(p.number, p.head) for p in reloaded.pulls] == [(1, "agent/fix")]
    async with httpx.AsyncClient() as control:
        assert (await control.delete(github.web_url + "/_sandbox/pulls")).json() == {"ok": True}
        assert (await control.get(github.web_url + "/_sandbox/pulls")).json() == {"pulls": []}


def test_the_bare_remote_follows_its_source_and_keeps_other_branches(
    remote: Path, tmp_path: Path
) -> None:
    push_branch(remote, tmp_path, "agent/fix")
    source = tmp_path / "source"
    (source / "NEW.md").write_text("new\n")
    git(source, "add", "-A")
    git(source, "commit", "-q", "-m", "second")
    assert ensure_bare_remote(source, remote) == remote
    assert branches(remote)["main"] == git(source, "rev-parse", "HEAD")
    assert "agent/fix" in branches(remote)
    assert git(remote, "symbolic-ref", "HEAD") == "refs/heads/main"


@pytest.fixture
async def page_app(
    github: SandboxGitHub, workspace_config: WorkspaceConfig
) -> AsyncIterator[TestClient[Any, Any]]:
    """The sandbox Slack page's app with the pull requests shown on it, as `python -m sandbox`
    serves it."""
    github.store.web_url = github.web_url
    app = create_workspace_app(workspace_config)
    show_on_page(app, github.store)
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
        yield client


async def test_the_sandbox_page_lists_pull_requests_and_hears_of_each_change(
    http: httpx.AsyncClient,
    page_app: TestClient[Any, Any],
    github: SandboxGitHub,
    remote: Path,
    tmp_path: Path,
) -> None:
    push_branch(remote, tmp_path, "agent/fix")
    feed = await page_app.get("/_sandbox/events")
    assert (await feed.content.readline()) == b": connected\n"
    await http.post(REPO + "/pulls", json=new_pull("agent/fix"))
    async with asyncio.timeout(10):
        while (await feed.content.readline()) != b"event: pulls\n":
            pass
        event = json.loads((await feed.content.readline()).removeprefix(b"data: "))
    feed.close()
    (pull,) = event["pulls"]
    assert (pull["number"], pull["head"], pull["draft"]) == (1, "agent/fix", True)
    assert pull["html_url"] == f"{github.web_url}/{OWNER}/{NAME}/pull/1"
    listed = await (await page_app.get("/_sandbox/pulls")).json()
    assert listed == {"pulls": event["pulls"]}


async def test_the_page_shows_each_pull_request_live_as_text_linking_to_its_page(
    http: httpx.AsyncClient, page_app: TestClient[Any, Any], remote: Path, tmp_path: Path
) -> None:
    if shutil.which(CHROMIUM) is None:
        pytest.skip("Debian's chromium is missing: run `make test`")
    push_branch(remote, tmp_path, "agent/fix")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            page.set_default_timeout(15_000)
            await page.goto(str(page_app.make_url("/")))
            await expect(page.locator("#conn")).to_have_text("live")
            await expect(page.locator("#pulls")).to_have_text("None yet")
            title = "<img src=x> Fix dates"
            await http.post(REPO + "/pulls", json=new_pull("agent/fix", title=title))
            link = page.locator("#pulls a")
            await expect(link).to_contain_text(f"#1 {title}")
            await expect(link).to_contain_text("draft · agent/fix")
            assert await page.locator("#pulls img").count() == 0
            assert (await link.get_attribute("href") or "").endswith(f"/{OWNER}/{NAME}/pull/1")
        finally:
            await browser.close()
