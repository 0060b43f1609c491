"""The sandbox GitHub's REST API: the calls shipping makes, as GitHub answers them.

`register_api(app)` serves, with GitHub's request and response shapes, its
token auth (`Authorization: Bearer` or `token`; 401 "Bad credentials") and its 422s:

    GET   /api/v3/repos/{owner}/{repo}
    GET   /api/v3/repos/{owner}/{repo}/pulls?state=&head=OWNER:BRANCH&base=
    POST  /api/v3/repos/{owner}/{repo}/pulls                {title, body, head, base, draft}
    PATCH /api/v3/repos/{owner}/{repo}/pulls/{number}       {title, body, state, base}

and, beyond GitHub's API, a control API for tests: `GET /_sandbox/pulls` lists every pull
request, `DELETE` forgets them. Repositories are the bare git repositories under
`config.root` (`sandbox.github_repos`).
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError

from sandbox import github_shapes as shapes
from sandbox.github_repos import (
    branch_tip,
    compare,
    default_branch,
    repo_path,
    valid_branch,
)
from sandbox.github_state import PullRecord, PullStore, now_iso

JSON = dict[str, Any]
API = "/api/v3"


@dataclass(frozen=True)
class GitHubConfig:
    """`token`: the one token accepted (None: every API call is refused); `root`: where the
    repositories are (None: there are none); `user`: the token's owner, the author of PRs."""

    token: str | None
    root: Path | None
    user: str = "coding-agent"


CONFIG_KEY = web.AppKey("github_config", GitHubConfig)
STORE_KEY = web.AppKey("github_pulls", PullStore)


@dataclass(frozen=True)
class Repo:
    owner: str
    name: str
    path: Path
    json: JSON


_ERRORS: dict[int, type[web.HTTPException]] = {
    400: web.HTTPBadRequest,
    401: web.HTTPUnauthorized,
    404: web.HTTPNotFound,
    422: web.HTTPUnprocessableEntity,
}


def fail(status: int, message: str, **extra: Any) -> web.HTTPException:
    """An error answered the way GitHub does: `{message, documentation_url, status, ...}`."""
    body = json.dumps(shapes.error(message, status, **extra))
    return _ERRORS[status](text=body, content_type="application/json")


def invalid(field: str, code: str = "invalid") -> web.HTTPException:
    return fail(
        422,
        "Validation Failed",
        errors=[{"resource": "PullRequest", "field": field, "code": code}],
    )


def custom(message: str) -> web.HTTPException:
    errors = [{"resource": "PullRequest", "code": "custom", "message": message}]
    return fail(422, "Validation Failed", errors=errors)


def urls_of(request: web.Request) -> shapes.Urls:
    return shapes.Urls(web=str(request.url.origin()))


@web.middleware
async def _auth(request: web.Request, handler: Any) -> web.StreamResponse:
    """The REST API wants the configured token, as `Bearer` or `token` (both GitHub's)."""
    if request.path.startswith(API + "/"):
        expected = request.app[CONFIG_KEY].token
        header = request.headers.get("Authorization", "")
        if not header:
            raise fail(401, "Requires authentication")
        scheme, _, token = header.partition(" ")
        good = scheme.lower() in ("bearer", "token") and expected is not None
        if not (good and hmac.compare_digest(token.strip().encode(), str(expected).encode())):
            raise fail(401, "Bad credentials")
    response: web.StreamResponse = await handler(request)
    return response


async def find_repo(request: web.Request) -> Repo:
    """The repository the path names, or GitHub's 404."""
    owner, name = request.match_info["owner"], request.match_info["repo"]
    root = request.app[CONFIG_KEY].root
    path = repo_path(root, owner, name) if root is not None else None
    if path is None or not path.is_dir():
        raise fail(404, "Not Found")
    default = await default_branch(path)
    repo_json = shapes.repository(urls_of(request), owner, name, default, clone_url=str(path))
    return Repo(owner, name, path, repo_json)


async def branches_of(repo: Repo, pull: PullRecord) -> shapes.Branches:
    head = await branch_tip(repo.path, pull.head) or "0" * 40
    base = await branch_tip(repo.path, pull.base) or "0" * 40
    return shapes.Branches(head, base, await compare(repo.path, base, head))


async def pull_json(request: web.Request, repo: Repo, pull: PullRecord, full: bool) -> JSON:
    branches = await branches_of(repo, pull)
    return shapes.pull_request(urls_of(request), pull, repo.json, branches, full)


def _body(raw: bytes, model: type[BaseModel]) -> Any:
    try:
        data = json.loads(raw or b"{}")
    except ValueError:
        raise fail(400, "Problems parsing JSON") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        field = str(exc.errors()[0]["loc"][0]) if exc.errors()[0]["loc"] else "body"
        missing = exc.errors()[0]["type"] == "missing"
        raise invalid(field, "missing_field" if missing else "invalid") from None


class CreatePull(BaseModel):
    model_config = ConfigDict(extra="ignore")

    title: str | None = None
    head: str
    base: str
    body: str | None = None
    draft: bool = False
    maintainer_can_modify: bool = True
    issue: int | None = None


class UpdatePull(BaseModel):
    model_config = ConfigDict(extra="ignore")

    title: str | None = None
    body: str | None = None
    state: str | None = None
    base: str | None = None
    maintainer_can_modify: bool | None = None


# ------------------------------------------------------------------------------ handlers


async def get_repo(request: web.Request) -> web.Response:
    repo = await find_repo(request)
    return web.json_response(repo.json)


async def list_pulls(request: web.Request) -> web.Response:
    repo = await find_repo(request)
    query = request.query
    state = query.get("state", "open")
    if state not in ("open", "closed", "all"):
        raise invalid("state")
    pulls = request.app[STORE_KEY].of_repo(repo.owner, repo.name)
    pulls = [p for p in pulls if state in ("all", p.state)]
    head = query.get("head", "")
    # Like GitHub, a head without its `owner:` is no filter at all (a classic trap).
    if ":" in head:
        head_owner, _, ref = head.partition(":")
        pulls = [p for p in pulls if head_owner.lower() == p.owner.lower() and ref == p.head]
    if query.get("base"):
        pulls = [p for p in pulls if p.base == query["base"]]
    pulls.sort(key=lambda p: p.number, reverse=query.get("direction", "desc") == "desc")
    per_page = min(max(int(query.get("per_page", "30") or 30), 1), 100)
    page = max(int(query.get("page", "1") or 1), 1)
    chosen = pulls[(page - 1) * per_page : page * per_page]
    return web.json_response([await pull_json(request, repo, p, full=False) for p in chosen])


async def create_pull(request: web.Request) -> web.Response:
    repo = await find_repo(request)
    data: CreatePull = _body(await request.read(), CreatePull)
    if not data.title:
        raise invalid("title", "missing_field")
    head = data.head.removeprefix(f"{repo.owner}:")
    if not valid_branch(data.base) or await branch_tip(repo.path, data.base) is None:
        raise invalid("base")
    head_sha = await branch_tip(repo.path, head) if valid_branch(head) else None
    if head_sha is None:
        raise invalid("head")
    store = request.app[STORE_KEY]
    if store.open_for(repo.owner, repo.name, head, data.base) is not None:
        raise custom(f"A pull request already exists for {repo.owner}:{head}.")
    base_sha = await branch_tip(repo.path, data.base)
    if (await compare(repo.path, str(base_sha), head_sha)).commits == 0:
        raise custom(f"No commits between {data.base} and {head}")
    pull = store.add(
        repo.owner,
        repo.name,
        title=data.title,
        body=data.body,
        head=head,
        base=data.base,
        draft=data.draft,
        user=request.app[CONFIG_KEY].user,
        maintainer_can_modify=data.maintainer_can_modify,
    )
    shape = await pull_json(request, repo, pull, full=True)
    return web.json_response(shape, status=201, headers={"Location": shape["url"]})


async def update_pull(request: web.Request) -> web.Response:
    repo = await find_repo(request)
    store = request.app[STORE_KEY]
    number = request.match_info["number"]
    pull = store.get(repo.owner, repo.name, int(number)) if number.isdigit() else None
    if pull is None:
        raise fail(404, "Not Found")
    data: UpdatePull = _body(await request.read(), UpdatePull)
    if data.state not in (None, "open", "closed"):
        raise invalid("state")
    if data.base is not None and await branch_tip(repo.path, data.base) is None:
        raise invalid("base")
    reopening = data.state == "open" and pull.state == "closed"
    if reopening and store.open_for(repo.owner, repo.name, pull.head, data.base or pull.base):
        raise custom(f"A pull request already exists for {repo.owner}:{pull.head}.")
    _apply(pull, data)
    store.changed()
    return web.json_response(await pull_json(request, repo, pull, full=True))


def _apply(pull: PullRecord, data: UpdatePull) -> None:
    if data.title is not None:
        pull.title = data.title
    if data.body is not None:
        pull.body = data.body
    if data.base is not None:
        pull.base = data.base
    if data.maintainer_can_modify is not None:
        pull.maintainer_can_modify = data.maintainer_can_modify
    if data.state is not None and data.state != pull.state:
        pull.state = data.state
        pull.closed_at = now_iso() if data.state == "closed" else None
    pull.updated_at = now_iso()
    pull.updates += 1


# ------------------------------------------------------------------------------- control


def summary(pull: PullRecord, web_url: str) -> JSON:
    """A pull request as the control API and the sandbox page show it."""
    return {
        "repository": pull.full_name,
        "number": pull.number,
        "title": pull.title,
        "body": pull.body,
        "head": pull.head,
        "base": pull.base,
        "draft": pull.draft,
        "state": pull.state,
        "html_url": f"{web_url}/{pull.full_name}/pull/{pull.number}",
        "created_at": pull.created_at,
        "updated_at": pull.updated_at,
        "updates": pull.updates,
    }


def pulls_json(store: PullStore, web_url: str) -> JSON:
    return {"pulls": [summary(p, store.web_url or web_url) for p in store.pulls]}


async def control_list(request: web.Request) -> web.Response:
    return web.json_response(pulls_json(request.app[STORE_KEY], str(request.url.origin())))


async def control_reset(request: web.Request) -> web.Response:
    request.app[STORE_KEY].clear()
    return web.json_response({"ok": True})


def register_api(app: web.Application) -> None:
    """GitHub's REST API under `/api/v3` (token checked) and the control API."""
    app.middlewares.append(_auth)
    repo = API + "/repos/{owner}/{repo}"
    app.router.add_get(repo, get_repo)
    app.router.add_get(repo + "/pulls", list_pulls)
    app.router.add_post(repo + "/pulls", create_pull)
    app.router.add_patch(repo + "/pulls/{number}", update_pull)
    app.router.add_get("/_sandbox/pulls", control_list)
    app.router.add_delete("/_sandbox/pulls", control_reset)
