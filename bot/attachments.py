"""What a person attached to a message, made part of the turn: forwarded messages (their text
and where they came from), and shared files (name, type and size always; the text of text-like
files, downloaded with the bot token, bounded).

A file is downloaded only from Slack's own file host (or the host of the configured Web API,
the sandbox's on loopback): the bot token goes nowhere else, whatever URL an event names.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import structlog

log = structlog.get_logger(__name__)

# The turn keeps at most this many files and forwarded messages; the rest are only counted.
MAX_FILES = 5
MAX_FORWARDS = 5
MAX_FORWARD_CHARS = 4_000
# Text read per file, and bytes downloaded for it (the rest of a long log is cut).
MAX_FILE_CHARS = 12_000
MAX_DOWNLOAD_BYTES = 256 * 1024
# Slack wants its events acknowledged within 3 s, and the forward comes before the ack.
DOWNLOAD_SECONDS = 1.5
SLACK_FILE_HOSTS = frozenset({"files.slack.com"})
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


def forwarded(event: dict[str, Any]) -> list[str]:
    """Messages forwarded or shared into this one (`attachments` marked `is_share` or
    `is_msg_unfurl`), each as a quoted block naming its author and link. Link previews of web
    pages are not a person's words and are left out."""
    blocks: list[str] = []
    attachments = event.get("attachments")
    for item in attachments if isinstance(attachments, list) else []:
        if not isinstance(item, dict) or not (item.get("is_share") or item.get("is_msg_unfurl")):
            continue
        # `fallback` stands in only where Slack sent no `text` at all: a forward of a message
        # with no words still has one ("[date] alice: "), and is nothing a person wrote.
        text = _text(item.get("text") if "text" in item else item.get("fallback"))
        if not text.strip():
            continue
        if len(text) > MAX_FORWARD_CHARS:
            text = text[:MAX_FORWARD_CHARS] + " …[cut]"
        author = _text(item.get("author_name")) or _text(item.get("author_subname"))
        source = _text(item.get("from_url")) or _text(item.get("original_url"))
        head = "Forwarded message" + (f" from {author}" if author else "")
        head += f" ({source})" if source else ""
        quoted = "\n".join(f"> {line}" for line in text.splitlines())
        blocks.append(f"{head}:\n{quoted}")
    return blocks[:MAX_FORWARDS]


def attachment_lines(event: dict[str, Any]) -> str:
    """What the turn always says of its attachments: forwarded messages, and one line per file
    (the text of text-like files is added by `read_texts` once downloaded)."""
    parts = forwarded(event)
    files = shared_files(event)
    parts += [f"[Attached file: {f.label()}]" for f in files[:MAX_FILES]]
    if len(files) > MAX_FILES:
        parts.append(f"[{len(files) - MAX_FILES} more attached files not shown]")
    return "\n\n".join(parts)


def allowed_hosts(api_url: str | None) -> frozenset[str]:
    """Slack's file host, and the configured Web API's host (a sandbox or a proxy)."""
    host = urlsplit(api_url).hostname if api_url else None
    return SLACK_FILE_HOSTS | ({host} if host else set())


async def _download(
    session: aiohttp.ClientSession, token: str, file: SharedFile, hosts: frozenset[str]
) -> str | None:
    parts = urlsplit(file.url)
    local = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if parts.hostname not in hosts or not (parts.scheme == "https" or local):
        log.warning("file_not_downloaded", file=file.id, reason="not Slack's file host")
        return None
    headers = {"Authorization": f"Bearer {token}"}
    async with session.get(file.url, headers=headers, allow_redirects=False) as response:
        if response.status != 200 or "text/html" in response.headers.get("Content-Type", ""):
            # Slack answers a missing token or scope with its sign-in page, not an error.
            log.warning("file_not_downloaded", file=file.id, status=response.status)
            return None
        data = await response.content.read(MAX_DOWNLOAD_BYTES)
    if b"\x00" in data[:4096]:
        return None
    return data.decode("utf-8", errors="replace")


async def read_texts(
    session: aiohttp.ClientSession, token: str, event: dict[str, Any], hosts: frozenset[str]
) -> str:
    """The text of the message's text-like files, each in a labelled code block; a file that
    could not be read in time is named as such. Empty when there is nothing to read."""
    files = [f for f in shared_files(event)[:MAX_FILES] if f.text_like and f.url]
    if not files:
        return ""
    jobs = [_download(session, token, f, hosts) for f in files]
    try:
        async with asyncio.timeout(DOWNLOAD_SECONDS):
            texts = await asyncio.gather(*jobs, return_exceptions=True)
    except TimeoutError:
        texts = [TimeoutError()] * len(files)
    blocks = [_block(f, t) for f, t in zip(files, texts, strict=True)]
    return "\n\n".join(b for b in blocks if b)


def _block(file: SharedFile, text: str | BaseException | None) -> str:
    if isinstance(text, BaseException):
        log.warning("file_not_downloaded", file=file.id, error=type(text).__name__)
        return f"[{file.name} could not be read]"
    if text is None:
        return ""
    cut = len(text) > MAX_FILE_CHARS
    body = text[:MAX_FILE_CHARS]
    # A fence longer than any run of backticks inside, so the file cannot close it early.
    runs = re.findall(r"`+", body)
    fence = "`" * max(3, 1 + max((len(r) for r in runs), default=0))
    note = f"\n[{file.name} cut after {MAX_FILE_CHARS} characters]" if cut else ""
    return f"Contents of {file.name}:\n{fence}\n{body}\n{fence}{note}"
