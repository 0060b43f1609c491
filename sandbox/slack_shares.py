"""A person's files and forwarded messages in the sandbox workspace, as Slack's own client
makes them: an upload shared in a reply (a `file_share` message whose `files` the bot can
download with its token) and a message forwarded into a thread (an `attachments` entry marked
`is_share`, with its text, author and link). Driven through the control API (`/_sandbox`).
"""

from __future__ import annotations

import secrets
import time

from sandbox.slack_files import classify, file_json
from sandbox.slack_state import JSON, Channel, Message, SlackFile
from sandbox.workspace import Workspace

# What a person may upload through the control API (Slack takes far more; this is the sandbox).
MAX_UPLOAD_BYTES = 1024 * 1024
MAX_UPLOADS = 10


def person_upload(ws: Workspace, user: str, name: str, data: bytes, base_url: str) -> SlackFile:
    """A file a person uploaded, complete and ready to share."""
    filetype, pretty_type, mimetype = classify(name, None, data)
    file = SlackFile(
        id="F" + secrets.token_hex(5).upper(),
        name=name,
        title=name,
        user=user,
        length=len(data),
        ticket="",
        base_url=base_url,
        created=int(time.time()),
        data=data,
        filetype=filetype,
        pretty_type=pretty_type,
        mimetype=mimetype,
        completed=True,
    )
    ws.state.files[file.id] = file
    return file


def shared_in(ws: Workspace, files: list[SlackFile], channel: Channel) -> list[JSON]:
    """The files as the message sharing them carries them."""
    return [file_json(ws, f, public=not channel.is_im) for f in files]


def forward_attachment(ws: Workspace, channel: Channel, original: Message, base_url: str) -> JSON:
    """The `attachments` entry Slack adds to a message that forwards `original`."""
    author = ws.state.users.get(original.user)
    link = f"{base_url}/archives/{channel.id}/p{original.ts.replace('.', '')}"
    entry: JSON = {
        "id": 1,
        "ts": original.ts,
        "channel_id": channel.id,
        "channel_team": ws.config.team_id,
        "is_share": True,
        "is_msg_unfurl": True,
        "text": original.text,
        "fallback": f"[{original.ts}] {author.name if author else original.user}: {original.text}",
        "from_url": link,
        "original_url": link,
        "mrkdwn_in": ["text"],
        "color": "D0D0D0",
        "author_id": original.user,
        "author_name": author.real_name if author else original.user,
        "author_link": f"{base_url}/team/{original.user}",
        "footer": "Posted in a thread" if original.is_reply else f"Posted in #{channel.name}",
        "message_blocks": [
            {
                "team": ws.config.team_id,
                "channel": channel.id,
                "ts": original.ts,
                "message": {"blocks": original.blocks or []},
            }
        ],
    }
    if channel.is_im:
        entry["footer"] = "Direct message"
    return entry
