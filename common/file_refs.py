"""A file a person shared in Slack, as the session keeps it: enough to fetch it again and the
place it gets in the session's workspace, never its content (the turn's text has that, bounded).

The bot names the text-like files of a message; `restate_app` downloads each into the
workspace before the run's first tool call, so the agent's tools can read, search or apply
them (a log, a patch, a CSV). They sit under `FILES_DIR`, which git is told to ignore: a shared
file never becomes part of the session's changes, its branch or its pull request.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, Field

FILES_DIR = ".slack-files"
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")


class FileRef(BaseModel):
    """A shared text-like file: its Slack id, name, size and private download URL."""

    id: str = Field(pattern=r"^[A-Z0-9]{2,40}$")
    name: str = Field(max_length=255)
    url: str = Field(max_length=2000)
    size: int = Field(default=0, ge=0)

    @property
    def path(self) -> str:
        """Where it goes in the workspace, relative to the root: `.slack-files/<id>/<name>`,
        the name made safe (no separators, no leading dot)."""
        name = _UNSAFE.sub("_", self.name).lstrip(".")[:100] or "file"
        return f"{FILES_DIR}/{self.id}/{name}"


def paths_note(files: list[FileRef]) -> str:
    """What the model is told of the copies in its workspace."""
    if not files:
        return ""
    listed = ", ".join(f"`{f.path}`" for f in files)
    return f"[Shared files, copied into your workspace: {listed}]"
