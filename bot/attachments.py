"""What a person attached to a message, made part of the turn: forwarded messages (their text
and where they came from), and shared files (name, type and size always; the text of text-like
files, downloaded with the bot token, bounded).

Files are read as `common.slack_files` allows: from Slack's file host only. Text-like files
also go to the session as `FileRef`s, for `restate_app` to copy into its workspace.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import aiohttp
import structlog

from common.slack_files import MAX_FILES, SharedFile, download, is_binary, shared_files

log = structlog.get_logger(__name__)

# The turn keeps at most this many forwarded messages (and `MAX_FILES` files).
MAX_FORWARDS = 5
MAX_FORWARD_CHARS = 4_000
# Text read per file, and bytes downloaded for it (the rest of a long log is cut).
MAX_FILE_CHARS = 12_000
MAX_DOWNLOAD_BYTES = 256 * 1024
# Slack wants its events acknowledged within 3 s, and the forward comes before the ack.
DOWNLOAD_SECONDS = 1.5


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


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


async def _download(
    session: aiohttp.ClientSession, token: str, file: SharedFile, hosts: frozenset[str]
) -> str | None:
    data = await download(session, token, file.id, file.url, hosts, MAX_DOWNLOAD_BYTES)
    if data is None or is_binary(data):
        return None
    return data[:MAX_DOWNLOAD_BYTES].decode("utf-8", errors="replace")


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
