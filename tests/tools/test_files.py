"""The file tools on a real checkout: paths confined to the workspace, bounded answers,
exact edits that a retried step cannot apply twice."""

from __future__ import annotations

import os

import pytest

from restate_app.tools import files
from restate_app.tools import search as search_tool
from restate_app.tools.files import ToolError, resolve
from restate_app.tools.workspace import Workspace
from tests.tools.conftest import git

# ------------------------------------------------------------------------------- paths


@pytest.mark.parametrize("path", ["..", "../x", "a/../../x", "src/../../etc/passwd"])
def test_paths_that_climb_out_of_the_workspace_are_refused(ws: Workspace, path: str) -> None:
    with pytest.raises(ToolError, match="escapes the workspace"):
        resolve(ws.root, path)


def test_absolute_paths_are_refused(ws: Workspace) -> None:
    with pytest.raises(ToolError, match="absolute paths are not allowed"):
        resolve(ws.root, "/etc/passwd")


def test_a_symlink_out_of_the_workspace_is_never_followed(ws: Workspace) -> None:
    (ws.root / "etc").symlink_to("/etc")
    (ws.root / "passwd").symlink_to("/etc/passwd")
    for path in ("etc/passwd", "passwd", "etc"):
        with pytest.raises(ToolError, match="through a symlink"):
            resolve(ws.root, path)


async def test_file_tools_refuse_a_symlink_out(ws: Workspace) -> None:
    (ws.root / "passwd").symlink_to("/etc/passwd")
    with pytest.raises(ToolError, match="through a symlink"):
        await files.read_file(ws, "passwd")
    with pytest.raises(ToolError, match="through a symlink"):
        await files.write_file(ws, "passwd", "owned\n")
    with open("/etc/passwd") as passwd:  # noqa: ASYNC230 (a test's one small read)
        assert "owned" not in passwd.read()


def test_a_symlink_inside_the_workspace_is_fine(ws: Workspace) -> None:
    (ws.root / "link.py").symlink_to("src/dates.py")
    assert resolve(ws.root, "link.py") == (ws.root / "src/dates.py").resolve()


@pytest.mark.parametrize("path", [".git/config", ".git/hooks/pre-commit", "src/../.git/HEAD"])
async def test_writes_into_git_are_refused(ws: Workspace, path: str) -> None:
    before = (ws.root / ".git/config").read_text()
    with pytest.raises(ToolError, match=r"writing into \.git/ is not allowed"):
        await files.write_file(ws, path, "[core]\n\tfsmonitor = touch /tmp/owned\n")
    assert (ws.root / ".git/config").read_text() == before


def test_reading_relative_paths_resolves_inside_the_workspace(ws: Workspace) -> None:
    assert resolve(ws.root, "src/./dates.py") == (ws.root / "src/dates.py").resolve()
    assert resolve(ws.root, ".") == ws.root.resolve()


# -------------------------------------------------------------------------- list_files


async def test_list_files_is_sorted_marks_directories_and_skips_git(ws: Workspace) -> None:
    listing = (await files.list_files(ws)).splitlines()
    assert listing == [
        "README.md",
        "data/",
        "data/blob.bin",
        "src/",
        "src/dates.py",
        "src/util.py",
    ]


async def test_list_files_of_a_subdirectory(ws: Workspace) -> None:
    assert (await files.list_files(ws, "src")).splitlines() == ["src/dates.py", "src/util.py"]


async def test_list_files_is_bounded_and_says_how_many_more(ws: Workspace) -> None:
    many = ws.root / "many"
    many.mkdir()
    for i in range(450):
        (many / f"f{i:03d}.txt").write_text("x")
    lines = (await files.list_files(ws, "many")).splitlines()
    assert len(lines) == files.MAX_LIST_ENTRIES + 1
    assert lines[0] == "many/f000.txt"
    assert lines[-1].startswith("… and 50 more entries")


async def test_list_files_shows_symlinks_without_following_them(ws: Workspace) -> None:
    (ws.root / "etc").symlink_to("/etc")
    listing = await files.list_files(ws)
    assert "etc -> /etc" in listing.splitlines()
    assert "passwd" not in listing


async def test_list_files_of_a_missing_path_is_an_error(ws: Workspace) -> None:
    with pytest.raises(ToolError, match="no such file or directory: nope"):
        await files.list_files(ws, "nope")


# --------------------------------------------------------------------------- read_file


@pytest.fixture
def long_file(ws: Workspace) -> str:
    (ws.root / "long.txt").write_text("".join(f"line {i}\n" for i in range(1, 1001)))
    return "long.txt"


async def test_read_file_numbers_the_lines(ws: Workspace) -> None:
    text = await files.read_file(ws, "src/dates.py")
    assert text == "   1│def parse_date(text):\n   2│    return text.strip()"


async def test_read_file_shows_a_bounded_window_and_says_how_to_read_more(
    ws: Workspace, long_file: str
) -> None:
    lines = (await files.read_file(ws, long_file)).splitlines()
    assert lines[0] == "   1│line 1"
    assert lines[399] == " 400│line 400"
    assert lines[400] == "(lines 1-400 of 1000; call read_file with start_line=401 to read more)"


async def test_read_file_window_by_start_and_end_line(ws: Workspace, long_file: str) -> None:
    lines = (await files.read_file(ws, long_file, start_line=998)).splitlines()
    assert lines == [" 998│line 998", " 999│line 999", "1000│line 1000", "(lines 998-1000 of 1000)"]
    middle = (await files.read_file(ws, long_file, start_line=10, end_line=11)).splitlines()
    assert middle[:2] == ["  10│line 10", "  11│line 11"]
    assert "start_line=12" in middle[2]


async def test_read_file_window_asked_too_large_is_capped(ws: Workspace, long_file: str) -> None:
    text = await files.read_file(ws, long_file, start_line=1, end_line=1000)
    assert "line 400\n" in text + "\n"
    assert "line 401\n" not in text
    assert "start_line=401" in text


async def test_read_file_is_bounded_in_characters_too(ws: Workspace) -> None:
    (ws.root / "wide.txt").write_text(("y" * 1500 + "\n") * 100)
    text = await files.read_file(ws, "wide.txt")
    assert len(text) < files.MAX_READ_CHARS + 2000
    assert "to read more" in text


async def test_read_file_past_the_end_is_an_error(ws: Workspace) -> None:
    with pytest.raises(ToolError, match="has 2 lines; start_line 9 is past the end"):
        await files.read_file(ws, "src/dates.py", start_line=9)


async def test_read_file_refuses_binary_files_politely(ws: Workspace) -> None:
    with pytest.raises(ToolError, match=r"data/blob.bin is a binary file \(1024 bytes\)"):
        await files.read_file(ws, "data/blob.bin")


async def test_read_file_of_a_directory_points_to_list_files(ws: Workspace) -> None:
    with pytest.raises(ToolError, match="is a directory; use list_files"):
        await files.read_file(ws, "src")


async def test_read_file_of_an_empty_file_says_so(ws: Workspace) -> None:
    (ws.root / "empty.txt").write_text("")
    assert await files.read_file(ws, "empty.txt") == "empty.txt is empty"


# ------------------------------------------------------------------------------ search


async def test_search_with_ripgrep_answers_path_line_text(ws: Workspace) -> None:
    assert await search_tool.search(ws, r"def \w+") == (
        "src/dates.py:1:def parse_date(text):\nsrc/util.py:4:def helper():"
    )


async def test_search_in_a_path(ws: Workspace) -> None:
    assert await search_tool.search(ws, "VALUE", "src/util.py") == (
        "src/util.py:1:VALUE = 1\nsrc/util.py:5:    return VALUE"
    )


async def test_search_without_ripgrep_falls_back_to_python_with_the_same_answer(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_rg = await search_tool.search(ws, r"def \w+")
    monkeypatch.setenv("PATH", "/nonexistent")
    assert await search_tool.search(ws, r"def \w+") == with_rg


async def test_search_with_no_match_says_so(ws: Workspace) -> None:
    assert await search_tool.search(ws, "no_such_name") == "no matches for `no_such_name` in ."


async def test_search_with_an_invalid_regex_gives_the_reason(ws: Workspace) -> None:
    with pytest.raises(ToolError, match="regex parse error"):
        await search_tool.search(ws, "parse_date(")
    with pytest.raises(ToolError, match="invalid regular expression: missing \\)"):
        search_tool.search_python(ws.root, ws.root, "parse_date(")


async def test_search_never_follows_a_symlink_out(ws: Workspace) -> None:
    (ws.root / "etc").symlink_to("/etc")
    assert await search_tool.search(ws, "^root:") == "no matches for `^root:` in ."
    assert search_tool.search_python(ws.root, ws.root, "^root:") == ([], 0)


async def test_search_is_bounded(ws: Workspace) -> None:
    for i in range(30):
        (ws.root / f"hits{i:02d}.txt").write_text("needle\n" * 50)
    text = await search_tool.search(ws, "needle")
    lines = text.splitlines()
    assert len(lines) == search_tool.MAX_MATCHES + 1
    # 20 per file kept by ripgrep, 30 files: 600 in all, 200 shown.
    assert lines[-1].startswith("… and 400 more matches")


# ---------------------------------------------------------------------------- edit_file


async def test_edit_replaces_the_unique_match_and_reports_the_lines(ws: Workspace) -> None:
    text = await files.edit_file(ws, "src/util.py", "    return VALUE\n", "    return VALUE + 1\n")
    assert text == "Edited src/util.py: lines 5-5 now read:\n   5│    return VALUE + 1"
    assert (ws.root / "src/util.py").read_text().endswith("return VALUE + 1\n")


async def test_edit_reports_the_range_of_a_multi_line_replacement(ws: Workspace) -> None:
    text = await files.edit_file(
        ws, "src/util.py", "def helper():\n", 'def helper():\n    """Helps."""\n\n'
    )
    assert text.splitlines() == [
        "Edited src/util.py: lines 4-6 now read:",
        "   4│def helper():",
        '   5│    """Helps."""',
        "   6│",
    ]


async def test_edit_not_found_is_an_error_and_changes_nothing(ws: Workspace) -> None:
    before = (ws.root / "src/util.py").read_text()
    with pytest.raises(ToolError, match=r"old_text was not found in src/util\.py"):
        await files.edit_file(ws, "src/util.py", "return value", "return 2")
    assert (ws.root / "src/util.py").read_text() == before


async def test_edit_matching_several_places_is_an_error_with_the_count(ws: Workspace) -> None:
    before = (ws.root / "src/util.py").read_text()
    with pytest.raises(ToolError, match=r"old_text matches 2 places in src/util.py \(lines 1, 5\)"):
        await files.edit_file(ws, "src/util.py", "VALUE", "OTHER")
    assert (ws.root / "src/util.py").read_text() == before


async def test_a_retried_edit_fails_harmlessly_with_not_found(ws: Workspace) -> None:
    args = ("src/dates.py", "text.strip()", "text.lower()")
    await files.edit_file(ws, *args)
    after = (ws.root / "src/dates.py").read_text()
    with pytest.raises(ToolError, match=r"not found.*may have been applied already"):
        await files.edit_file(ws, *args)
    assert (ws.root / "src/dates.py").read_text() == after


async def test_a_retried_edit_whose_new_text_contains_the_old_is_not_applied_twice(
    ws: Workspace,
) -> None:
    old = "def helper():\n"
    new = "def helper():\n    # helps\n"
    await files.edit_file(ws, "src/util.py", old, new)
    after = (ws.root / "src/util.py").read_text()
    again = await files.edit_file(ws, "src/util.py", old, new)
    assert again.startswith("src/util.py already contains this edit")
    assert (ws.root / "src/util.py").read_text() == after
    assert after.count("# helps") == 1


async def test_edit_keeps_the_file_mode(ws: Workspace) -> None:
    script = ws.root / "run.sh"
    script.write_text("echo one\n")
    script.chmod(0o755)
    await files.edit_file(ws, "run.sh", "one", "two")
    assert script.read_text() == "echo two\n"
    assert os.stat(script).st_mode & 0o777 == 0o755


async def test_edit_of_a_missing_file_points_to_write_file(ws: Workspace) -> None:
    with pytest.raises(ToolError, match=r"no such file: nope\.py"):
        await files.edit_file(ws, "nope.py", "a", "b")


# --------------------------------------------------------------------- write and diff


async def test_write_file_creates_parents_and_overwrites(ws: Workspace) -> None:
    assert await files.write_file(ws, "docs/notes/a.md", "one\ntwo\n") == (
        "Created docs/notes/a.md (2 lines, 8 bytes)"
    )
    assert await files.write_file(ws, "docs/notes/a.md", "three") == (
        "Overwrote docs/notes/a.md (1 lines, 5 bytes)"
    )
    assert (ws.root / "docs/notes/a.md").read_text() == "three"


async def test_write_file_content_is_bounded(ws: Workspace) -> None:
    with pytest.raises(ToolError, match="write_file takes at most 1000000"):
        await files.write_file(ws, "big.txt", "x" * 1_000_001)
    assert not (ws.root / "big.txt").exists()


async def test_show_diff_shows_edits_and_new_files_without_touching_the_index(
    ws: Workspace,
) -> None:
    assert (await files.show_diff(ws)).startswith("no changes against the base commit")
    await files.edit_file(ws, "src/util.py", "VALUE = 1", "VALUE = 2")
    await files.write_file(ws, "new.txt", "hello\n")
    diff = await files.show_diff(ws)
    assert "-VALUE = 1\n+VALUE = 2" in diff
    assert "+++ b/new.txt\n@@ -0,0 +1 @@\n+hello" in diff
    status = git(ws.root, "status", "--porcelain")
    assert status.splitlines() == [" M src/util.py", "?? new.txt"]


async def test_show_diff_is_bounded(ws: Workspace) -> None:
    await files.write_file(ws, "big.txt", "".join(f"row {i}\n" for i in range(50_000)))
    diff = await files.show_diff(ws)
    assert len(diff) <= files.MAX_DIFF_CHARS
    assert "+row 0\n" in diff
    assert "+row 49999\n" in diff
    assert "characters elided" in diff
