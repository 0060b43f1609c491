"""GitHub's REST API JSON for users, repositories and pull requests, as GitHub documents them.

Every field GitHub's OpenAPI description requires is here, with the values a private
repository on a fresh GitHub would have, so a typed client (githubkit validates responses
against that description) reads the sandbox exactly as it reads GitHub.
"""

from __future__ import annotations

import hashlib
from base64 import b64encode
from dataclasses import dataclass
from typing import Any

from sandbox.github_repos import Comparison
from sandbox.github_state import PullRecord

JSON = dict[str, Any]
CREATED_AT = "2024-01-15T09:00:00Z"  # the demo repository's commit date
DOCS = "https://docs.github.com/rest"


@dataclass(frozen=True)
class Urls:
    """The sandbox GitHub's two roots: `web` (pages, like github.com) and `api` (its REST
    API, like api.github.com; here `<web>/api/v3`, as GitHub Enterprise serves it)."""

    web: str

    @property
    def api(self) -> str:
        return f"{self.web}/api/v3"


def _id(kind: str, key: str) -> tuple[int, str]:
    number = int(hashlib.sha256(f"{kind}:{key}".encode()).hexdigest()[:8], 16)
    return number, b64encode(f"{kind}:{number}".encode()).decode()


def error(message: str, status: int, **extra: Any) -> JSON:
    return {"message": message, "documentation_url": DOCS, "status": str(status), **extra}


def user(urls: Urls, login: str, kind: str = "User") -> JSON:
    number, node = _id(kind, login)
    api = f"{urls.api}/users/{login}"
    return {
        "login": login,
        "id": number,
        "node_id": node,
        "avatar_url": f"{urls.web}/{login}.png",
        "gravatar_id": "",
        "url": api,
        "html_url": f"{urls.web}/{login}",
        "followers_url": f"{api}/followers",
        "following_url": f"{api}/following{{/other_user}}",
        "gists_url": f"{api}/gists{{/gist_id}}",
        "starred_url": f"{api}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{api}/subscriptions",
        "organizations_url": f"{api}/orgs",
        "repos_url": f"{api}/repos",
        "events_url": f"{api}/events{{/privacy}}",
        "received_events_url": f"{api}/received_events",
        "type": kind,
        "user_view_type": "public",
        "site_admin": False,
    }


_TEMPLATED = {
    "archive_url": "/{archive_format}{/ref}",
    "assignees_url": "/assignees{/user}",
    "blobs_url": "/git/blobs{/sha}",
    "branches_url": "/branches{/branch}",
    "collaborators_url": "/collaborators{/collaborator}",
    "comments_url": "/comments{/number}",
    "commits_url": "/commits{/sha}",
    "compare_url": "/compare/{base}...{head}",
    "contents_url": "/contents/{+path}",
    "contributors_url": "/contributors",
    "deployments_url": "/deployments",
    "downloads_url": "/downloads",
    "events_url": "/events",
    "forks_url": "/forks",
    "git_commits_url": "/git/commits{/sha}",
    "git_refs_url": "/git/refs{/sha}",
    "git_tags_url": "/git/tags{/sha}",
    "hooks_url": "/hooks",
    "issue_comment_url": "/issues/comments{/number}",
    "issue_events_url": "/issues/events{/number}",
    "issues_url": "/issues{/number}",
    "keys_url": "/keys{/key_id}",
    "labels_url": "/labels{/name}",
    "languages_url": "/languages",
    "merges_url": "/merges",
    "milestones_url": "/milestones{/number}",
    "notifications_url": "/notifications{?since,all,participating}",
    "pulls_url": "/pulls{/number}",
    "releases_url": "/releases{/id}",
    "stargazers_url": "/stargazers",
    "statuses_url": "/statuses/{sha}",
    "subscribers_url": "/subscribers",
    "subscription_url": "/subscription",
    "tags_url": "/tags",
    "teams_url": "/teams",
    "trees_url": "/git/trees{/sha}",
}


def repository(urls: Urls, owner: str, name: str, default_branch: str, clone_url: str) -> JSON:
    """A private repository of the organisation `owner`; `clone_url` is where git reaches it."""
    number, node = _id("Repository", f"{owner}/{name}")
    api = f"{urls.api}/repos/{owner}/{name}"
    html = f"{urls.web}/{owner}/{name}"
    return {
        "id": number,
        "node_id": node,
        "name": name,
        "full_name": f"{owner}/{name}",
        "owner": user(urls, owner, "Organization"),
        "private": True,
        "html_url": html,
        "description": None,
        "fork": False,
        "url": api,
        **{key: api + suffix for key, suffix in _TEMPLATED.items()},
        "git_url": clone_url,
        "ssh_url": clone_url,
        "clone_url": clone_url,
        "svn_url": html,
        "mirror_url": None,
        "homepage": None,
        "language": "Python",
        "forks_count": 0,
        "forks": 0,
        "stargazers_count": 0,
        "watchers_count": 0,
        "watchers": 0,
        "size": 0,
        "default_branch": default_branch,
        "open_issues_count": 0,
        "open_issues": 0,
        "is_template": False,
        "topics": [],
        "has_issues": True,
        "has_projects": False,
        "has_wiki": False,
        "has_pages": False,
        "has_downloads": True,
        "has_discussions": False,
        "archived": False,
        "disabled": False,
        "visibility": "private",
        "pushed_at": CREATED_AT,
        "created_at": CREATED_AT,
        "updated_at": CREATED_AT,
        "permissions": {
            "admin": True,
            "maintain": True,
            "push": True,
            "triage": True,
            "pull": True,
        },
        "allow_rebase_merge": True,
        "allow_squash_merge": True,
        "allow_merge_commit": True,
        "allow_auto_merge": False,
        "delete_branch_on_merge": False,
        "allow_forking": False,
        "web_commit_signoff_required": False,
        "license": None,
        "subscribers_count": 1,
        "network_count": 0,
    }


@dataclass(frozen=True)
class Branches:
    """The live state of a pull request's two branches in the repository."""

    head_sha: str
    base_sha: str
    comparison: Comparison


def pull_request(
    urls: Urls, pull: PullRecord, repo: JSON, branches: Branches, full: bool = True
) -> JSON:
    """A pull request: `full` as `GET/POST/PATCH .../pulls/{n}` answer, else as in a list."""
    number, node = _id("PullRequest", f"{pull.full_name}#{pull.number}")
    api = f"{urls.api}/repos/{pull.full_name}"
    html = f"{urls.web}/{pull.full_name}/pull/{pull.number}"
    author = user(urls, pull.user)

    def side(ref: str, sha: str) -> JSON:
        label = f"{pull.owner}:{ref}"
        return {"label": label, "ref": ref, "sha": sha, "user": repo["owner"], "repo": repo}

    links = {
        "self": f"{api}/pulls/{pull.number}",
        "html": html,
        "issue": f"{api}/issues/{pull.number}",
        "comments": f"{api}/issues/{pull.number}/comments",
        "review_comments": f"{api}/pulls/{pull.number}/comments",
        "review_comment": f"{api}/pulls/comments{{/number}}",
        "commits": f"{api}/pulls/{pull.number}/commits",
        "statuses": f"{api}/statuses/{branches.head_sha}",
    }
    shape: JSON = {
        "url": links["self"],
        "id": number,
        "node_id": node,
        "html_url": html,
        "diff_url": f"{html}.diff",
        "patch_url": f"{html}.patch",
        "issue_url": links["issue"],
        "commits_url": links["commits"],
        "review_comments_url": links["review_comments"],
        "review_comment_url": links["review_comment"],
        "comments_url": links["comments"],
        "statuses_url": links["statuses"],
        "number": pull.number,
        "state": pull.state,
        "locked": False,
        "title": pull.title,
        "user": author,
        "body": pull.body,
        "labels": [],
        "milestone": None,
        "active_lock_reason": None,
        "created_at": pull.created_at,
        "updated_at": pull.updated_at,
        "closed_at": pull.closed_at,
        "merged_at": None,
        "merge_commit_sha": None,
        "assignee": None,
        "assignees": [],
        "requested_reviewers": [],
        "requested_teams": [],
        "head": side(pull.head, branches.head_sha),
        "base": side(pull.base, branches.base_sha),
        "_links": {key: {"href": href} for key, href in links.items()},
        "author_association": "MEMBER",
        "auto_merge": None,
        "draft": pull.draft,
    }
    if not full:
        return shape
    stats = branches.comparison
    return shape | {
        "merged": False,
        "mergeable": True,
        "rebaseable": True,
        "mergeable_state": "draft" if pull.draft else "clean",
        "merged_by": None,
        "comments": 0,
        "review_comments": 0,
        "maintainer_can_modify": pull.maintainer_can_modify,
        "commits": stats.commits,
        "additions": stats.additions,
        "deletions": stats.deletions,
        "changed_files": stats.changed_files,
    }
