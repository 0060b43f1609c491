"""The sandbox GitHub's pages: a pull request's own page (the `html_url` a thread links to),
and the pull-request list on the sandbox Slack page, kept live through its event feed.

Everything shown comes from people or the model, so it is escaped, and the page forbids
scripts, frames and every other origin outright (its only style is inline).
"""

from __future__ import annotations

from html import escape

from aiohttp import web

from sandbox.github_api import STORE_KEY, branches_of, fail, find_repo, pulls_json
from sandbox.github_repos import diff_text
from sandbox.github_state import PullStore
from sandbox.workspace import WORKSPACE_KEY

PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
_STYLE = """
body { font: 14px/1.45 -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       margin: 24px auto; max-width: 980px; color: #1f2328; padding: 0 16px; }
.badge { background: #ecb22e; border-radius: 4px; padding: 1px 6px; font-size: 12px; }
.state { background: #59636e; color: #fff; border-radius: 12px; padding: 2px 10px; }
.state.open { background: #1f883d; }
code { background: #eff1f3; border-radius: 4px; padding: 0 4px; }
pre { background: #f6f8fa; border: 1px solid #d1d9e0; border-radius: 6px; padding: 12px;
      white-space: pre-wrap; overflow-wrap: anywhere; }
pre.diff { white-space: pre; overflow-x: auto; font-size: 12px; }
.add { background: #e6ffec; } .del { background: #ffebe9; } .hunk { color: #0550ae; }
"""


def _diff_html(diff: str) -> str:
    rows = []
    for line in diff.splitlines():
        kind = ""
        if line.startswith("@@"):
            kind = "hunk"
        elif line.startswith("+") and not line.startswith("+++"):
            kind = "add"
        elif line.startswith("-") and not line.startswith("---"):
            kind = "del"
        rows.append(f'<span class="{kind}">{escape(line)}</span>' if kind else escape(line))
    return "\n".join(rows) or "(no changes)"


async def pull_page(request: web.Request) -> web.Response:
    """`/{owner}/{repo}/pull/{number}`: title, state, branches, body and the diff."""
    repo = await find_repo(request)
    number = request.match_info["number"]
    store = request.app[STORE_KEY]
    pull = store.get(repo.owner, repo.name, int(number)) if number.isdigit() else None
    if pull is None:
        raise fail(404, "Not Found")
    branches = await branches_of(repo, pull)
    diff = await diff_text(repo.path, branches.base_sha, branches.head_sha)
    stats = branches.comparison
    state = "draft" if pull.draft and pull.state == "open" else pull.state
    html = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{escape(pull.title)} · Pull Request #{pull.number} · {escape(pull.full_name)}</title>
<style>{_STYLE}</style></head><body>
<p><span class="badge">sandbox GitHub, not real GitHub</span> {escape(pull.full_name)}</p>
<h1>{escape(pull.title)} <small>#{pull.number}</small></h1>
<p><span class="state {escape(pull.state)}">{escape(state)}</span>
  {escape(pull.user)} wants to merge {stats.commits} commit(s) into
  <code>{escape(pull.base)}</code> from <code>{escape(pull.head)}</code> ·
  {stats.changed_files} file(s), +{stats.additions} &minus;{stats.deletions} ·
  updated {escape(pull.updated_at)}</p>
<pre>{escape(pull.body or "No description provided.")}</pre>
<h2>Files changed</h2>
<pre class="diff">{_diff_html(diff)}</pre>
</body></html>"""
    headers = {"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-cache"}
    return web.Response(text=html, content_type="text/html", headers=headers)


def register_page(app: web.Application) -> None:
    app.router.add_get("/{owner}/{repo}/pull/{number}", pull_page)


async def _page_pulls(request: web.Request) -> web.Response:
    return web.json_response(pulls_json(request.app[STORE_KEY], str(request.url.origin())))


def show_on_page(page_app: web.Application, store: PullStore) -> None:
    """List `store`'s pull requests on the sandbox Slack page (`page_app`, the workspace app):
    `/_sandbox/pulls` there too, and a `pulls` event on its feed at every change."""
    page_app[STORE_KEY] = store
    page_app.router.add_get("/_sandbox/pulls", _page_pulls)
    hub = page_app[WORKSPACE_KEY].hub
    store.listeners.append(lambda: hub.publish("pulls", pulls_json(store, store.web_url or "")))
