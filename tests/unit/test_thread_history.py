"""The thread so far, as the first turn of a session that joins it: who said what, oldest
first, bounded with the root kept, and only for a mention that starts a session in a thread."""

from __future__ import annotations

from typing import Any

from common.contract import IncomingMessage
from restate_app.thread_history import (
    MAX_CHARS,
    Earlier,
    earlier_files,
    earlier_text,
    joins_thread,
    with_earlier,
)


def _msg(ts: str, text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "message", "ts": ts, "text": text, "user": "U0ALICE", **extra}


def _incoming(ts: str, thread_ts: str, mentions: bool = True) -> IncomingMessage:
    return IncomingMessage(
        team_id="T0",
        channel_id="C0",
        thread_ts=thread_ts,
        ts=ts,
        user_id="U0ALICE",
        text="help",
        mentions_bot=mentions,
    )


def test_only_a_mention_starting_a_session_in_a_thread_joins_it() -> None:
    assert joins_thread(_incoming("2.0", "1.0"), turns=0)
    assert not joins_thread(_incoming("1.0", "1.0"), turns=0)  # a new thread of its own
    assert not joins_thread(_incoming("2.0", "1.0"), turns=3)  # a session under way
    assert not joins_thread(_incoming("2.0", "1.0", mentions=False), turns=0)


def test_messages_are_oldest_first_with_their_authors() -> None:
    messages = [
        _msg("3.0", "third", user_profile={"display_name": "bob"}),
        _msg("1.0", "first"),
        _msg("2.0", "second", bot_id="B0", username="ci-bot"),
        _msg("2.0", "second"),  # a page boundary repeats nothing
        _msg("4.0", "   "),
    ]
    assert earlier_text(messages) == "U0ALICE: first\n\nci-bot: second\n\nbob: third"


def test_a_long_thread_keeps_its_root_and_its_latest_messages() -> None:
    messages = [_msg(f"{i}.0", f"message {i} " + "x" * 1500) for i in range(1, 40)]
    text = earlier_text(messages)
    assert len(text) <= MAX_CHARS + 200
    assert text.startswith("U0ALICE: message 1 ")
    assert "message 39 " in text
    assert "message 2 " not in text


def test_the_first_turn_marks_the_thread_as_context() -> None:
    assert with_earlier("", "fix it") == "fix it"
    turn = with_earlier("U0BOB: it broke", "fix it")
    assert turn.startswith("Earlier in this thread, before you were called in")
    assert turn.endswith("The message that called you in:\n\nfix it")


def _log(file_id: str, name: str = "build.log", mimetype: str = "text/plain") -> dict[str, Any]:
    # A file object as conversations.replies returns it
    # (docs.slack.dev/reference/objects/file-object).
    url = f"https://files.slack.com/files-pri/T0-{file_id}/download/{name}"
    return {
        "id": file_id,
        "name": name,
        "mimetype": mimetype,
        "filetype": "text" if mimetype.startswith("text/") else "png",
        "size": 2048,
        "url_private": url,
        "url_private_download": url,
    }


def test_files_shared_earlier_are_named_and_kept_for_the_workspace() -> None:
    messages = [
        _msg("1.0", "deploy failed, log attached", files=[_log("F01")]),
        _msg("2.0", "", files=[_log("F02", "trace.txt")]),  # a file with no comment
        _msg("3.0", "", files=[_log("F03", "shot.png", "image/png")]),
        _msg("4.0", "same log again", files=[_log("F01")]),
    ]
    text = earlier_text(messages)
    assert "U0ALICE: deploy failed, log attached [Attached file: build.log (text/plain" in text
    assert "U0ALICE: [Attached file: trace.txt (text/plain, 2.0 kB)]" in text
    assert "shot.png (image/png" in text
    assert [f.id for f in earlier_files(messages)] == ["F01", "F02"]


def test_a_step_journaled_before_files_were_read_still_replays() -> None:
    assert Earlier.model_validate("U0BOB: it broke") == Earlier(text="U0BOB: it broke")
