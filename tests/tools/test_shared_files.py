"""Files people shared, copied into a real checkout: whole, where the model is told, once, never
through a symlink a command left, never part of the session's changes; and which files a
conversation names."""

from __future__ import annotations

from pathlib import Path

from common.contract import Turn, WorkStep
from common.file_refs import FileRef, paths_note
from restate_app.prompts import conversation
from restate_app.tools.search import search
from restate_app.tools.shared_files import EXCLUDE_LINE, MAX_FILE_BYTES, copy_shared, shared_in
from restate_app.tools.workspace import Workspace, Workspaces

LOG = "\n".join(f"line {i}" for i in range(5000)) + "\nFATAL disk full\n"


def _ref(file_id: str = "F0LOG", name: str = "build.log") -> FileRef:
    return FileRef(id=file_id, name=name, url=f"https://files.slack.com/{file_id}", size=10)


class Files:
    """Slack's file host, as the copier sees it: bytes by file id, and who was asked."""

    def __init__(self, **contents: bytes | None) -> None:
        self.contents = contents
        self.asked: list[str] = []

    async def __call__(self, ref: FileRef, max_bytes: int) -> bytes | None:
        self.asked.append(ref.id)
        data = self.contents.get(ref.id)
        return None if data is None else data[: max_bytes + 1]


async def test_a_shared_log_is_copied_whole_and_found_by_search(ws: Workspace) -> None:
    files = Files(F0LOG=LOG.encode())
    made = await copy_shared(ws.root, [_ref()], files)
    assert made == [".slack-files/F0LOG/build.log"]
    assert (ws.root / made[0]).read_text() == LOG
    assert "FATAL disk full" in await search(ws, "FATAL", ".")


async def test_copies_are_no_change_of_the_session(ws: Workspace, workspaces: Workspaces) -> None:
    await copy_shared(ws.root, [_ref()], Files(F0LOG=LOG.encode()))
    assert EXCLUDE_LINE in (ws.root / ".git" / "info" / "exclude").read_text().splitlines()
    assert (await workspaces.patch(ws)).patch == ""
    (ws.root / "NOTES.md").write_text("seen\n")
    patch = (await workspaces.patch(ws)).patch
    assert "NOTES.md" in patch
    assert ".slack-files" not in patch


async def test_a_file_already_there_is_not_fetched_again(ws: Workspace) -> None:
    files = Files(F0LOG=LOG.encode())
    await copy_shared(ws.root, [_ref()], files)
    assert await copy_shared(ws.root, [_ref()], files) == []
    assert files.asked == ["F0LOG"]
    exclude = (ws.root / ".git" / "info" / "exclude").read_text().splitlines()
    assert exclude.count(EXCLUDE_LINE) == 1


async def test_unavailable_binary_and_oversized_files_are_skipped(ws: Workspace) -> None:
    files = Files(F0GONE=None, F0BIN=b"\x89PNG\x00\x00", F0BIG=b"x" * (MAX_FILE_BYTES + 10))
    refs = [_ref("F0GONE"), _ref("F0BIN", "shot.png"), _ref("F0BIG", "huge.log")]
    assert await copy_shared(ws.root, refs, files) == []
    assert not list((ws.root / ".slack-files").rglob("*.*"))


async def test_a_fetch_that_fails_leaves_the_others(ws: Workspace) -> None:
    async def flaky(ref: FileRef, max_bytes: int) -> bytes | None:
        if ref.id == "F0BAD":
            raise TimeoutError
        return b"ok\n"

    made = await copy_shared(ws.root, [_ref("F0BAD"), _ref("F0OK", "ok.txt")], flaky)
    assert made == [".slack-files/F0OK/ok.txt"]


async def test_a_symlink_left_in_the_workspace_never_leads_a_copy_out(
    ws: Workspace, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (ws.root / ".slack-files").symlink_to(outside)
    assert await copy_shared(ws.root, [_ref()], Files(F0LOG=b"secret\n")) == []
    assert not list(outside.rglob("*"))


def test_a_name_cannot_leave_its_directory_or_hide() -> None:
    assert _ref(name="../../etc/passwd").path == ".slack-files/F0LOG/_.._etc_passwd"
    assert _ref(name=".bashrc").path == ".slack-files/F0LOG/bashrc"
    assert _ref(name="my build (1).log").path == ".slack-files/F0LOG/my_build_1_.log"
    assert _ref(name="...").path == ".slack-files/F0LOG/file"


def test_the_files_of_a_conversation_each_once_steered_ones_too() -> None:
    first, again, steered = _ref("F01"), _ref("F01"), _ref("F02", "diff.patch")
    turns = [
        Turn(kind="user", text="look", user_id="U1", ts="1.1", files=[first]),
        Turn(kind="user", text="again", user_id="U1", ts="1.2", files=[again]),
        Turn(
            kind="answer",
            text="done",
            work=[WorkStep(role="user", text="and this", ts="1.3", files=[steered])],
        ),
    ]
    now = [WorkStep(role="user", text="one more", ts="1.4", files=[_ref("F03", "a.csv")])]
    assert [f.id for f in shared_in(turns, now)] == ["F01", "F02", "F03"]


def test_the_model_is_told_where_the_copies_are_only_when_there_is_a_workspace() -> None:
    turns = [Turn(kind="user", text="why?", user_id="U0ALICE", ts="1.1", files=[_ref()])]
    note = paths_note([_ref()])
    assert note == "[Shared files, copied into your workspace: `.slack-files/F0LOG/build.log`]"
    with_ws = conversation(turns, workspace=True)[1]
    without = conversation(turns)[1]
    assert str(with_ws.get("content")).endswith(note)
    assert ".slack-files" not in str(without.get("content"))
