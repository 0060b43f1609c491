"""Sandbox GitHub: a local stand-in for the parts of GitHub that shipping uses.

`create_github_app(config, store)` builds an aiohttp application serving GitHub's REST API
under `/api/v3` (as GitHub Enterprise does; `sandbox.github_api`), each pull request's page
at its `html_url` (`sandbox.github_page`) and the control API under `/_sandbox/`. Git itself
goes straight to the bare repositories under `config.root`, as to any remote.
"""

from __future__ import annotations

from aiohttp import web

from sandbox.github_api import CONFIG_KEY, STORE_KEY, GitHubConfig, register_api
from sandbox.github_page import register_page
from sandbox.github_state import PullStore

__all__ = ["GitHubConfig", "PullStore", "create_github_app"]


def create_github_app(config: GitHubConfig, store: PullStore) -> web.Application:
    app = web.Application()
    app[CONFIG_KEY] = config
    app[STORE_KEY] = store
    register_api(app)
    register_page(app)
    return app
