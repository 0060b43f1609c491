"""Which shared files a message hands the session for its workspace: text-like ones with a
download URL, within the size bound, with ids Slack gives (file objects as
docs.slack.dev/reference/objects/file-object shows them); and a file read whole, with the bot
token, from an allowed host only."""

from __future__ import annotations

from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.events import to_incoming
from common.contract import IncomingMessage
from common.slack_files import (
    MAX_FILES,
    MAX_WORKSPACE_FILE_BYTES,
    allowed_hosts,
    download,
    file_refs,
)


def _file(file_id: str, name: str, mimetype: str = "text/plain", **extra: Any) -> dict[str, Any]:
    url = f"https://files.slack.com/files-pri/T0SANDBOX-{file_id}/download/{name}"
    return {
        "id": file_id,
        "name": name,
        "title": name,
        "mimetype": mimetype,
        "filetype": "text" if mimetype.startswith("text/") else "png",
        "size": 120,
        "url_private": url,
        "url_private_download": url,
    } | extra


def test_text_like_files_with_a_url_are_kept_for_the_workspace() -> None:
    event = {
        "files": [
            _file("F01", "build.log"),
            _file("F05", "fix.patch", mimetype="text/x-diff"),
            _file("F02", "shot.png", mimetype="image/png"),
            _file("F03", "huge.log", size=MAX_WORKSPACE_FILE_BYTES + 1),
            _file("F04", "gone.txt", url_private="", url_private_download=""),
            _file("not an id", "odd.txt"),
        ]
    }
    refs = file_refs(event)
    assert [(r.id, r.name) for r in refs] == [("F01", "build.log"), ("F05", "fix.patch")]
    assert refs[0].url.endswith("/download/build.log")


def test_at_most_the_turns_files_are_kept() -> None:
    event = {"files": [_file(f"F{n:02d}", f"{n}.txt") for n in range(MAX_FILES + 3)]}
    assert len(file_refs(event)) == MAX_FILES


def test_a_file_share_reply_carries_its_files_to_the_session() -> None:
    event = {
        "type": "message",
        "subtype": "file_share",
        "channel": "C0GENERAL",
        "user": "U0ALICE",
        "text": "",
        "ts": "1732611111.000200",
        "thread_ts": "1732611000.000100",
        "files": [_file("F01", "build.log")],
    }
    msg = to_incoming(event, team_id="T0SANDBOX", bot_user_id="U0BOT", received_at=1.0)
    assert isinstance(msg, IncomingMessage)
    assert [f.id for f in msg.files] == ["F01"]


async def test_a_long_file_is_read_whole_up_to_the_bound() -> None:
    """Served in many small writes, as a real file host does: nothing is lost between them."""
    body = b"".join(f"line {i}\n".encode() for i in range(200_000))

    async def serve(request: web.Request) -> web.StreamResponse:
        assert request.headers["Authorization"] == "Bearer xoxb-test"
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        for start in range(0, len(body), 4096):
            await response.write(body[start : start + 4096])
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/files/{name}", serve)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        url = str(server.make_url("/files/big.log"))
        hosts = allowed_hosts(url)
        async with aiohttp.ClientSession() as session:
            whole = await download(session, "xoxb-test", "F01", url, hosts, len(body) + 10)
            cut = await download(session, "xoxb-test", "F01", url, hosts, 1000)
            elsewhere = await download(session, "xoxb-test", "F01", url, frozenset(), 10)
    finally:
        await server.close()
    assert whole == body
    assert cut == body[:1001]  # one byte past the bound says the file is longer
    assert elsewhere is None
