"""The sandbox GitHub's pull requests: numbered per repository, kept in a JSON file beside the
repositories (so a restarted `make run` still knows the pull request a thread opened), and
announced to listeners (the sandbox page) on every change."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def now_iso() -> str:
    """A timestamp the way GitHub writes them: UTC, whole seconds, `Z`."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class PullRecord:
    """One pull request as the sandbox stores it; its JSON shape is built in `github_shapes`."""

    owner: str
    repo: str
    number: int
    title: str
    body: str | None
    head: str
    base: str
    draft: bool
    user: str
    maintainer_can_modify: bool = False
    state: str = "open"
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)
    closed_at: str | None = None
    updates: int = 0  # PATCHes since it was opened, so tests can tell an update from a create

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.repo}"


class PullStore:
    """Every pull request of every repository; `path`, when given, keeps them across runs."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.pulls: list[PullRecord] = []
        self.listeners: list[Callable[[], None]] = []
        # The sandbox GitHub's web address, for links shown on other origins (the page).
        self.web_url: str | None = None
        if path is not None and path.exists():
            self.pulls = [PullRecord(**item) for item in json.loads(path.read_text())]

    def of_repo(self, owner: str, repo: str) -> list[PullRecord]:
        return [p for p in self.pulls if (p.owner, p.repo) == (owner, repo)]

    def get(self, owner: str, repo: str, number: int) -> PullRecord | None:
        return next((p for p in self.of_repo(owner, repo) if p.number == number), None)

    def open_for(self, owner: str, repo: str, head: str, base: str) -> PullRecord | None:
        return next(
            (
                p
                for p in self.of_repo(owner, repo)
                if p.state == "open" and p.head == head and p.base == base
            ),
            None,
        )

    def add(self, owner: str, repo: str, **fields: Any) -> PullRecord:
        number = max((p.number for p in self.of_repo(owner, repo)), default=0) + 1
        record = PullRecord(owner=owner, repo=repo, number=number, **fields)
        self.pulls.append(record)
        self.changed()
        return record

    def clear(self) -> None:
        self.pulls.clear()
        self.changed()

    def changed(self) -> None:
        """Save, then tell the listeners; call after every change to a record."""
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_text(json.dumps([asdict(p) for p in self.pulls], indent=1))
            os.replace(tmp, self.path)
        for listener in self.listeners:
            listener()
