"""Files people share in Slack: what a message's file objects say (name, type, size, whether
it is text), which of them a session copies into its workspace (`file_refs`), and reading one
with the bot token: for the bot (the text of the turn), and for `restate_app` (the copy in the
workspace, and the files of a thread it joins).

A file is downloaded only from Slack's own file host (or the host of the configured Web API,
the sandbox's on loopback): the bot token goes nowhere else, whatever URL an event names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import structlog
from pydantic import ValidationError

from common.file_refs import FileRef

log = structlog.get_logger(__name__)

SLACK_FILE_HOSTS = frozenset({"files.slack.com"})
# A message's files the turn names (and the session copies); the rest are only counted.
MAX_FILES = 5
# Larger text files are not copied into a session's workspace.
MAX_WORKSPACE_FILE_BYTES = 2 * 1024 * 1024
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def allowed_hosts(api_url: str | None) -> frozenset[str]:
    """Slack's file host, and the configured Web API's host (a sandbox or a proxy)."""
    host = urlsplit(api_url).hostname if api_url else None
    return SLACK_FILE_HOSTS | ({host} if host else set())


async def download(
    session: aiohttp.ClientSession,
    token: str,
    file_id: str,
    url: str,
    hosts: frozenset[str],
    max_bytes: int,
) -> bytes | None:
    """The file's first `max_bytes` bytes (one more says it is longer); None when it is not on
    an allowed host (https, or http on loopback) or Slack would not give it."""
    parts = urlsplit(url)
    local = parts.hostname in _LOOPBACK
    if parts.hostname not in hosts or not (parts.scheme == "https" or local):
        log.warning("file_not_downloaded", file=file_id, reason="not Slack's file host")
        return None
    headers = {"Authorization": f"Bearer {token}"}
    async with session.get(url, headers=headers, allow_redirects=False) as response:
        if response.status != 200 or "text/html" in response.headers.get("Content-Type", ""):
            # Slack answers a missing token or scope with its sign-in page, not an error.
            log.warning("file_not_downloaded", file=file_id, status=response.status)
            return None
        data = bytearray()
        # `read(n)` gives what has arrived, not n bytes: read until the end or past the bound.
        async for chunk in response.content.iter_chunked(64 * 1024):
            data += chunk
            if len(data) > max_bytes:
                break
        return bytes(data[: max_bytes + 1])


def is_binary(data: bytes) -> bool:
    """Whether downloaded bytes are not text (a NUL early on, as git decides)."""
    return b"\x00" in data[:8000]


_TEXT_MIMETYPES = frozenset(
    {"application/json", "application/xml", "application/x-yaml", "application/javascript"}
)
_TEXT_FILETYPES = frozenset(
    {"text", "diff", "patch", "csv", "tsv", "json", "yaml", "xml", "markdown", "python"}
    | {"javascript", "typescript", "shell", "go", "rust", "java", "c", "cpp", "sql", "toml"}
    | {"ruby", "php", "html", "css", "kotlin", "swift", "log", "ini", "dockerfile", "makefile"}
)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


@dataclass(frozen=True)
class SharedFile:
    """A file shared with a message, as its event describes it."""

    id: str
    name: str
    mimetype: str
    filetype: str
    size: int
    url: str

    @property
    def text_like(self) -> bool:
        return (
            self.mimetype.startswith("text/")
            or self.mimetype in _TEXT_MIMETYPES
            or self.filetype in _TEXT_FILETYPES
        )

    def label(self) -> str:
        kind = self.mimetype or self.filetype or "unknown type"
        return f"{self.name} ({kind}, {_size(self.size)})"


def _size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} kB"
    return f"{size / 1024 / 1024:.1f} MB"


def shared_files(event: dict[str, Any]) -> list[SharedFile]:
    """The files a message event shares (hidden or deleted ones have no name and are left out)."""
    found: list[SharedFile] = []
    files = event.get("files")
    for item in files if isinstance(files, list) else []:
        if not isinstance(item, dict) or not _text(item.get("name")):
            continue
        size = item.get("size")
        found.append(
            SharedFile(
                id=_text(item.get("id")),
                name=_text(item.get("name")),
                mimetype=_text(item.get("mimetype")),
                filetype=_text(item.get("filetype")),
                size=size if isinstance(size, int) and size >= 0 else 0,
                url=_text(item.get("url_private_download")) or _text(item.get("url_private")),
            )
        )
    return found


def file_refs(event: dict[str, Any]) -> list[FileRef]:
    """The message's text-like files for the session's workspace (at most `MAX_FILES`, none
    over `MAX_WORKSPACE_FILE_BYTES`, none without a download URL or a usable id)."""
    refs: list[FileRef] = []
    for f in shared_files(event)[:MAX_FILES]:
        if not (f.text_like and f.url) or f.size > MAX_WORKSPACE_FILE_BYTES:
            continue
        try:
            refs.append(FileRef(id=f.id, name=f.name, url=f.url, size=f.size))
        except ValidationError:
            log.warning("file_not_kept", file=f.id[:40], reason="unexpected id or name")
    return refs
