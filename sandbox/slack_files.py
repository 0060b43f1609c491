"""Slack's external file upload, as `files_upload_v2` drives it, plus files.info and downloads.

1. `files.getUploadURLExternal` (filename, length) reserves a file id and an upload URL on this
   same web app (`/_upload/{file_id}/{ticket}`; no token, like Slack's pre-signed URL).
2. The client POSTs the bytes there (raw body or a multipart form); exactly `length` bytes are
   accepted, answered `200 OK - {length}` in text/plain as Slack does. Faults queued for the
   method `upload` (control API) apply here.
3. `files.completeUploadExternal` (files=[{"id","title"}], channel_id, thread_ts,
   initial_comment, blocks) shares them: a bot message with `files` and a `file_share` event.

`url_private` serves the bytes only with the bot token as Bearer; without it, as on Slack, the
client is redirected to the sign-in page (HTML, not the file).
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from urllib.parse import quote

from aiohttp import BodyPartReader, web

from sandbox.slack_api import (
    JSON,
    MAX_TEXT,
    SlackError,
    arg_str,
    parse_blocks,
)
from sandbox.slack_state import Channel, SlackFile
from sandbox.workspace import WORKSPACE_KEY, Workspace

# Slack takes up to 1 GB; the sandbox keeps files in memory, so it refuses more than this.
MAX_FILE_BYTES = 50 * 1024 * 1024
MAX_SNIPPET_BYTES = 1024 * 1024
MAX_ALT_TXT = 1000
# Slack checks channel_id against SLACK_CHANNEL_ID; sandbox ids such as C0QUEUE are shorter.
SLACK_CHANNEL_ID = "^[CGDZ][A-Z0-9]{8,}$"
CHANNEL_ID_ARG_RE = re.compile(r"[CGDZ][A-Z0-9]{2,}")
USER_ID_RE = re.compile(r"[UW][A-Z0-9]{2,}")
CHUNK = 64 * 1024
# Faults queued for this pseudo-method apply to POSTs to upload URLs (Slack's step 2).
UPLOAD_FAULT = "upload"

# Extension -> (filetype, pretty_type, mimetype), as Slack labels uploads.
TYPES: dict[str, tuple[str, str, str]] = {
    **dict.fromkeys(("txt", "log"), ("text", "Plain Text", "text/plain")),
    **dict.fromkeys(("diff", "patch"), ("diff", "Diff", "text/x-diff")),
    **dict.fromkeys(("yaml", "yml"), ("yaml", "YAML", "text/yaml")),
    **dict.fromkeys(("jpg", "jpeg"), ("jpg", "JPEG", "image/jpeg")),
    "md": ("markdown", "Markdown (raw)", "text/markdown"),
    "py": ("python", "Python", "text/x-python"),
    "js": ("javascript", "JavaScript/JSON", "text/javascript"),
    "json": ("json", "JSON", "application/json"),
    "sh": ("shell", "Shell", "text/x-sh"),
    "csv": ("csv", "CSV", "text/csv"),
    "html": ("html", "HTML", "text/html"),
    "png": ("png", "PNG", "image/png"),
    "gif": ("gif", "GIF", "image/gif"),
    "pdf": ("pdf", "PDF", "application/pdf"),
    "zip": ("zip", "Zip", "application/zip"),
}
PRETTY = {filetype: pretty for filetype, pretty, _ in TYPES.values()}
SNIPPET_TYPES = frozenset(PRETTY) | {
    "auto", "c", "cpp", "csharp", "css", "dockerfile", "go", "java", "kotlin", "php", "ruby",
    "rust", "scala", "sql", "swift", "toml", "typescript", "xml",
}  # fmt: skip


def invalid(message: str) -> SlackError:
    """Slack's schema error: `invalid_arguments` with the reason in response_metadata."""
    return SlackError("invalid_arguments", response_metadata={"messages": [f"[ERROR] {message}"]})


def url_name(name: str) -> str:
    """The file name as Slack puts it in URLs: lowercase, unsafe characters as '_'."""
    return re.sub(r"[^a-z0-9._-]+", "_", name.lower()).strip("_") or "file"


def classify(name: str, snippet_type: str | None, data: bytes) -> tuple[str, str, str]:
    """(filetype, pretty_type, mimetype) for an upload, from its snippet type or extension."""
    if snippet_type and snippet_type != "auto":
        return snippet_type, PRETTY.get(snippet_type, snippet_type.title()), "text/plain"
    _, dot, ext = name.rpartition(".")
    if dot and ext.lower() in TYPES:
        return TYPES[ext.lower()]
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return "binary", "Binary", "application/octet-stream"
    return "text", "Plain Text", "text/plain"


def is_text(file: SlackFile) -> bool:
    return file.mimetype.startswith("text/") or file.mimetype == "application/json"


def file_json(ws: Workspace, file: SlackFile, *, public: bool) -> JSON:
    """The file object as messages and events carry it (no share lists)."""
    base = f"{file.base_url}/files-pri/{ws.config.team_id}-{file.id}"
    name = url_name(file.name)
    out: JSON = {
        "id": file.id,
        "created": file.created,
        "timestamp": file.created,
        "name": file.name,
        "title": file.title,
        "mimetype": file.mimetype,
        "filetype": file.filetype,
        "pretty_type": file.pretty_type,
        "user": file.user,
        "user_team": ws.config.team_id,
        "editable": file.snippet_type is not None,
        "size": len(file.data) if file.data is not None else file.length,
        "mode": "snippet" if file.snippet_type else "hosted",
        "is_external": False,
        "external_type": "",
        "is_public": public,
        "public_url_shared": False,
        "display_as_bot": False,
        "username": "",
        "url_private": f"{base}/{name}",
        "url_private_download": f"{base}/download/{name}",
        "media_display_type": "unknown",
        "permalink": f"{file.base_url}/files/{file.user}/{file.id}/{name}",
        "comments_count": 0,
        "is_starred": False,
        "has_rich_preview": False,
        "file_access": "visible",
    }
    if file.alt_txt:
        out["alt_txt"] = file.alt_txt
    return out


def _share_entry(ws: Workspace, file: SlackFile, channel: Channel, ts: str) -> JSON:
    """One share of `file`: the message at `ts` shared it, and its author is the sharer."""
    message = ws.state.get(channel.id, ts)
    root_ts = message.thread_ts if message is not None and message.thread_ts else ts
    replies = ws.state.replies(channel.id, root_ts)
    users = list(dict.fromkeys(r.user for r in replies))
    entry: JSON = {
        "reply_users": users,
        "reply_users_count": len(users),
        "reply_count": len(replies),
        "ts": ts,
    }
    if root_ts != ts:
        entry["thread_ts"] = root_ts
    if replies:
        entry["latest_reply"] = replies[-1].ts
    if not channel.is_im:
        entry["channel_name"] = channel.name
    sharer = message.user if message is not None else file.user
    return entry | {"team_id": ws.config.team_id, "share_user_id": sharer}


def shared_file_json(ws: Workspace, file: SlackFile) -> JSON:
    """The file object files.info answers: with where it is shared (`channels`, `shares`)."""
    public: dict[str, list[JSON]] = {}
    private: dict[str, list[JSON]] = {}
    for channel_id, ts in file.shares:
        channel = ws.state.channels[channel_id]
        target = private if channel.is_im else public
        target.setdefault(channel_id, []).append(_share_entry(ws, file, channel, ts))
    shares = {k: v for k, v in (("public", public), ("private", private)) if v}
    listing = {"channels": list(public), "groups": [], "ims": list(private), "shares": shares}
    return file_json(ws, file, public=bool(public)) | listing


def unshared_file_json(ws: Workspace, file: SlackFile) -> JSON:
    """The file as completeUploadExternal answers: Slack shares it asynchronously, so the
    answer's share lists are still empty (poll files.info for the message ts)."""
    listing: JSON = {"channels": [], "groups": [], "ims": [], "shares": {}}
    return file_json(ws, file, public=False) | listing


def _length(args: JSON) -> int:
    raw = args.get("length")
    if raw is None or raw == "":
        raise invalid("missing required field: length")
    try:
        length = int(str(raw))
    except ValueError as exc:
        raise invalid("must be an integer [json-pointer:/length]") from exc
    if length == 0:
        raise SlackError("missing_argument")
    if length < 0:
        raise invalid("must be greater than 0 [json-pointer:/length]")
    if length > MAX_FILE_BYTES:
        raise SlackError("file_upload_size_restricted")
    return length


def get_upload_url_external(ws: Workspace, args: JSON, request: web.Request) -> JSON:
    filename = arg_str(args, "filename")
    if filename is None:
        raise invalid("missing required field: filename")
    length = _length(args)
    snippet_type = arg_str(args, "snippet_type")
    if snippet_type is not None and snippet_type not in SNIPPET_TYPES:
        raise SlackError("unknown_snippet_type")
    if snippet_type is not None and length > MAX_SNIPPET_BYTES:
        raise SlackError("snippet_too_large")
    alt_txt = arg_str(args, "alt_txt")
    if alt_txt is not None and len(alt_txt) > MAX_ALT_TXT:
        raise SlackError("alt_txt_too_large")
    file = SlackFile(
        id="F" + secrets.token_hex(5).upper(),
        name=filename,
        title=filename,
        user=ws.config.bot_user_id,
        length=length,
        ticket=secrets.token_urlsafe(24),
        base_url=str(request.url.origin()),
        created=int(time.time()),
        snippet_type=snippet_type,
        alt_txt=alt_txt,
    )
    ws.state.files[file.id] = file
    return {"upload_url": f"{file.base_url}/_upload/{file.id}/{file.ticket}", "file_id": file.id}


def _requested_files(args: JSON) -> list[JSON]:
    """The `files` argument: a JSON string (form/query) or an array (JSON body)."""
    raw = args.get("files")
    if raw is None or raw == "":
        raise invalid("missing required field: files")
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise invalid("json not parseable [json-pointer:/files]") from exc
    if not isinstance(raw, list) or not raw:
        raise invalid("must be a non-empty array [json-pointer:/files]")
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item["id"]:
            raise invalid("missing required field: id [json-pointer:/files]")
        if not isinstance(item.get("title", ""), str):
            raise invalid("must be a string [json-pointer:/files/title]")
    return raw


def _uploaded_file(ws: Workspace, file_id: str) -> SlackFile:
    # An id never reserved, whose bytes never arrived, or already completed has no ticket left.
    file = ws.state.files.get(file_id)
    if file is None or file.data is None or file.completed:
        raise SlackError("file_not_found")
    return file


def _targets(ws: Workspace, args: JSON) -> list[Channel]:
    """Channels named by `channel_id` (an id) and `channels` (ids or user ids, for DMs)."""
    refs: list[str] = []
    channel_id = arg_str(args, "channel_id")
    if channel_id is not None:
        if not CHANNEL_ID_ARG_RE.fullmatch(channel_id):
            raise invalid(
                f"input must match regex pattern: {SLACK_CHANNEL_ID} [json-pointer:/channel_id]"
            )
        refs.append(channel_id)
    for ref in (arg_str(args, "channels") or "").split(","):
        ref = ref.strip()
        if ref and not (CHANNEL_ID_ARG_RE.fullmatch(ref) or USER_ID_RE.fullmatch(ref)):
            raise invalid("channels must be channel or user ids [json-pointer:/channels]")
        if ref:
            refs.append(ref)
    found: list[Channel] = []
    for ref in dict.fromkeys(refs):
        channel = ws.state.resolve_channel(ref)
        if channel is None:
            raise SlackError("channel_not_found")
        if not ws.state.is_member(channel, ws.config.bot_user_id):
            raise SlackError("not_in_channel")
        found.append(channel)
    return found


def complete_upload_external(ws: Workspace, args: JSON, request: web.Request) -> JSON:
    requested = _requested_files(args)
    files = [_uploaded_file(ws, item["id"]) for item in requested]
    channels = _targets(ws, args)
    thread_ts = arg_str(args, "thread_ts")
    if thread_ts is not None and len(channels) > 1:
        raise invalid("thread_ts needs exactly one channel [json-pointer:/thread_ts]")
    comment = arg_str(args, "initial_comment")
    if comment is not None and len(comment) > MAX_TEXT:
        raise SlackError("msg_too_long")
    # As documented: blocks are ignored when there is an initial_comment.
    blocks = parse_blocks(args) if comment is None else None
    for item, file in zip(requested, files, strict=True):
        file.title = item.get("title") or file.title
        file.completed = True
    for channel in channels:
        shared = [file_json(ws, f, public=not channel.is_im) for f in files]
        # Posting the message records each file's share in the channel.
        ws.post_bot_message(channel, comment or "", blocks, thread_ts, shared)
    return {"files": [unshared_file_json(ws, f) for f in files]}


def files_info(ws: Workspace, args: JSON, request: web.Request) -> JSON:
    file_id = arg_str(args, "file")
    if file_id is None:
        raise invalid("missing required field: file")
    file = ws.state.files.get(file_id)
    if file is None or file.data is None:
        raise SlackError("file_not_found")
    meta = {"next_cursor": ""}
    return {"file": shared_file_json(ws, file), "comments": [], "response_metadata": meta}


FILE_METHODS = {
    "files.getUploadURLExternal": get_upload_url_external,
    "files.completeUploadExternal": complete_upload_external,
    "files.info": files_info,
}


async def _read_bounded(read: Callable[[int], Awaitable[bytes]], limit: int) -> bytes:
    """Read chunks from `read(size)` until it is empty or more than `limit` bytes came."""
    data = bytearray()
    while len(data) <= limit:
        chunk = await read(CHUNK)
        if not chunk:
            break
        data += chunk
    return bytes(data)


async def read_upload(request: web.Request, limit: int) -> bytes:
    """The uploaded bytes: the raw body, or the file part of a multipart form."""
    if not request.content_type.startswith("multipart/"):
        return await _read_bounded(request.content.read, limit)
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if isinstance(part, BodyPartReader) and (
            part.filename or part.name in ("file", "filename")
        ):
            return await _read_bounded(part.read_chunk, limit)
    return b""


def _text(status: int, body: str) -> web.Response:
    return web.Response(status=status, text=body, content_type="text/plain")


async def handle_upload(request: web.Request) -> web.Response:
    """The upload URL: exactly the reserved number of bytes, until the upload is completed.

    A repeated POST (a client's retry) replaces the bytes.
    """
    ws = request.app[WORKSPACE_KEY]
    file = ws.state.files.get(request.match_info["file_id"])
    if file is None or file.completed or request.match_info["ticket"] != file.ticket:
        return _text(404, "upload not found")
    fault = ws.faults.take(UPLOAD_FAULT)
    if fault is not None:
        await asyncio.sleep(fault.delay)
        if fault.status is not None:
            return _text(fault.status, fault.error or "upload failed")
    data = await read_upload(request, file.length)
    if len(data) != file.length:
        return _text(400, f"length mismatch: reserved {file.length} bytes, received {len(data)}")
    file.data = data
    file.filetype, file.pretty_type, file.mimetype = classify(file.name, file.snippet_type, data)
    return _text(200, f"OK - {len(data)}")


def content_response(file: SlackFile, data: bytes, download: bool) -> web.Response:
    """The bytes, typed but never as something the browser would run on this origin.

    Text (HTML included) goes out as text/plain; `classify` gives every other file an inert
    type (images, PDF, archives, octet-stream), and the CSP sandboxes whatever is opened.
    """
    kind = "text/plain" if is_text(file) else file.mimetype
    disposition = "attachment" if download else "inline"
    headers = {
        "Content-Disposition": f"{disposition}; filename*=UTF-8''{quote(file.name)}",
        "Content-Security-Policy": "sandbox; default-src 'none'",
        "X-Content-Type-Options": "nosniff",
    }
    resp = web.Response(body=data, headers=headers, content_type=kind)
    if kind == "text/plain":
        resp.charset = "utf-8"
    return resp


async def handle_download(request: web.Request) -> web.StreamResponse:
    """`url_private` / `url_private_download`: the bytes for the bot token, else sign-in."""
    ws = request.app[WORKSPACE_KEY]
    auth = request.headers.get("Authorization", "")
    if auth.removeprefix("Bearer ").strip() != ws.config.bot_token:
        # Slack answers an unauthenticated url_private with its sign-in page, not an error.
        raise web.HTTPFound(f"/?redir={quote(request.path_qs, safe='')}")
    team, _, file_id = request.match_info["team_file"].partition("-")
    file = ws.state.files.get(file_id)
    if team != ws.config.team_id or file is None or file.data is None:
        return _text(404, "file not found")
    download = request.match_info["rest"].startswith("download/")
    return content_response(file, file.data, download)


async def handle_permalink(request: web.Request) -> web.Response:
    """A file's `permalink` opens the page at the first thread it was shared in."""
    file = request.app[WORKSPACE_KEY].state.files.get(request.match_info["file_id"])
    if file is None or not file.shares:
        raise web.HTTPFound("/")
    channel_id, ts = file.shares[0]
    thread = request.app[WORKSPACE_KEY].state.thread_root_ts(channel_id, ts)
    raise web.HTTPFound(f"/#channel={channel_id}&thread={thread}")


def register_files(app: web.Application) -> None:
    app.router.add_post("/_upload/{file_id}/{ticket}", handle_upload)
    app.router.add_get("/files-pri/{team_file}/{rest:.+}", handle_download)
    app.router.add_get("/files/{user}/{file_id}/{name}", handle_permalink)
