"""The demo repository: a fixed commit, a failing test the demo agent's edit really fixes."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from restate_app.tools.approval_patterns import INSTALL, ApprovalRules
from restate_app.tools.commands import CommandTracker, run_command
from restate_app.tools.sandbox import SandboxConfig
from sandbox import demo_repo as demo
from sandbox.demo_repo import ensure_demo_repo
from sandbox.model_agent import Reply, ToolCall, next_reply
from sandbox.model_install import Install, read_install

# The commit of the shipped demo files; it changes (on purpose) only when they change.
DEMO_COMMIT = "a3787382e003c80e45ead1612aa4e585dcd9b980"
TOOLS = ["list_files", "read_file", "search", "edit_file", "write_file", "run_command", "show_diff"]
# Commands in the product's sandbox run Debian's python3 with nothing but the standard library.
PYTHON = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable
GIT_ENV = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}
_TURNS = itertools.count()


def git(repo: Path, *args: str) -> str:
    env = os.environ | GIT_ENV
    return subprocess.run(
        ["git", "-C", str(repo), *args], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()


def clone(repo: Path, dest: Path) -> Path:
    subprocess.run(
        ["git", "clone", "-q", str(repo), str(dest)], env=os.environ | GIT_ENV, check=True
    )
    return dest


def start_tests(workdir: Path) -> subprocess.Popen[str]:
    """`python3 -m unittest -v` in `workdir`, with a bare environment like the sandbox's."""
    command = [PYTHON, *demo.TEST_COMMAND.split()[1:]]
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    return subprocess.Popen(
        command,
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(run: subprocess.Popen[str]) -> tuple[int, str]:
    output, _ = run.communicate(timeout=60)
    return run.returncode, f"exit code: {run.returncode}\n{output}"


def test_the_commit_is_the_same_every_time_and_whatever_git_config_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = ensure_demo_repo(tmp_path / "one")
    assert git(first, "rev-parse", "HEAD") == DEMO_COMMIT
    head_written = (first / ".git" / "HEAD").stat().st_mtime_ns
    assert ensure_demo_repo(first) == first
    assert (first / ".git" / "HEAD").stat().st_mtime_ns == head_written

    home = tmp_path / "home"
    home.mkdir()
    (home / ".gitconfig").write_text(
        "[user]\n\tname = Someone Else\n[core]\n\tautocrlf = true\n"
        "[init]\n\tdefaultBranch = trunk\n[commit]\n\tgpgsign = true\n"
    )
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Not The Demo")
    monkeypatch.setenv("GIT_COMMITTER_DATE", "2030-01-01T00:00:00+00:00")
    second = ensure_demo_repo(tmp_path / "two")
    assert git(second, "rev-parse", "HEAD") == DEMO_COMMIT
    assert git(second, "branch", "--show-current") == "main"
    assert git(second, "log", "--format=%an <%ae>") == "Demo Author <demo@example.com>"
    tracked = git(second, "ls-files").splitlines()
    assert tracked == demo.demo_files()
    assert "tests/test_dates.py" in tracked


def test_a_changed_copy_is_reset_and_a_foreign_directory_is_refused(tmp_path: Path) -> None:
    repo = ensure_demo_repo(tmp_path / "repo")
    (repo / demo.MODULE).write_text("broken\n")
    (repo / "notes.txt").write_text("left over\n")
    ensure_demo_repo(repo)
    assert git(repo, "status", "--porcelain") == ""
    assert (repo / demo.MODULE).read_text() == (demo.FILES_DIR / demo.MODULE).read_text()

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "precious.txt").write_text("mine\n")
    with pytest.raises(ValueError, match="not a git repository"):
        ensure_demo_repo(foreign)
    assert (foreign / "precious.txt").read_text() == "mine\n"


def test_the_demo_agents_edit_makes_the_failing_suite_pass(tmp_path: Path) -> None:
    """Real runs of the suite, before and after the edit the agent proposes, fed back to it."""
    assert (Path("/usr/share/zoneinfo") / "Europe" / "Berlin").exists(), "zoneinfo needs tzdata"
    repo = ensure_demo_repo(tmp_path / "repo")
    before_dir, after_dir = clone(repo, tmp_path / "before"), clone(repo, tmp_path / "after")
    messages: list[dict[str, Any]] = [{"role": "user", "content": "fix the failing test"}]
    tool = ToolRunner(before_dir)
    for expected in ("list_files", "read_file", "read_file"):
        messages += tool.answer(next_reply(messages, TOOLS), expected)
    run_reply = next_reply(messages, TOOLS)
    assert run_reply.tool_calls == (ToolCall("run_command", {"command": demo.TEST_COMMAND}),)

    # The edit depends only on the baseline having failed: learn it from a canned failing run,
    # so that the two real (slow) runs can go side by side.
    canned = messages + turn(run_reply, ["Ran 5 tests in 6.0s\n\nFAILED (failures=1)"])
    [edit] = next_reply(canned, TOOLS).tool_calls
    assert edit.name == "edit_file"
    apply_edit(after_dir, edit)
    started = time.monotonic()
    before_run, after_run = start_tests(before_dir), start_tests(after_dir)
    (before_code, before_out), (after_code, after_out) = finish(before_run), finish(after_run)
    elapsed = time.monotonic() - started

    assert before_code == 1, before_out
    assert f"FAIL: {demo.FAILING_TEST}" in before_out
    assert "FAILED (failures=1)" in before_out
    assert after_code == 0, after_out
    assert "Ran 5 tests" in after_out
    assert after_out.rstrip().endswith("OK")
    assert 4 < elapsed < 30  # slow enough to interrupt from Slack, not slow enough to bore

    messages += turn(run_reply, [before_out])
    edit_reply = next_reply(messages, TOOLS)
    assert edit_reply.tool_calls == (edit,)
    messages += turn(edit_reply, ["Edited dates.py (1 replacement)."])
    install_reply = next_reply(messages, TOOLS)
    assert install_reply.tool_calls == (ToolCall("run_command", {"command": demo.INSTALL_COMMAND}),)
    messages += turn(install_reply, ["The command was not run: <@U0BOB> denied it."])
    messages += turn(next_reply(messages, TOOLS), [after_out])
    diff = git(after_dir, "diff")
    assert "+from zoneinfo import ZoneInfo" in diff
    messages += ToolRunner(after_dir).answer(next_reply(messages, TOOLS), "show_diff")
    answer = next_reply(messages, TOOLS)
    assert answer.tool_calls == ()
    assert "**Fixed:**" in answer.text
    assert "OK" in answer.text
    assert "skipped because it was denied in this thread" in answer.text


def test_the_install_step_needs_approval_under_the_default_patterns_and_the_tests_do_not() -> None:
    rules = ApprovalRules.from_setting(None)  # AGENT_APPROVAL_PATTERNS unset: the defaults
    risk = rules.check(demo.INSTALL_COMMAND)
    assert risk is not None
    assert risk.reasons == (INSTALL,)
    assert risk.network, "approving it turns the network on; the command does not need it"
    assert rules.check(demo.TEST_COMMAND) is None


@pytest.fixture
def reachable_dir() -> Iterator[Path]:
    """A directory a sandboxed command's own uid can reach (pytest's tmp_path is not)."""
    path = Path(tempfile.mkdtemp(prefix="demo-install-"))
    path.chmod(0o711)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


async def test_the_install_step_works_in_the_sandbox_without_network_and_leaves_no_trace(
    reachable_dir: Path,
) -> None:
    """Under bubblewrap with the network off (this machine has none to give), as approved."""
    repo = ensure_demo_repo(reachable_dir / "origin")
    workspace = clone(repo, reachable_dir / "ws")
    config = SandboxConfig(network=False)
    done = await run_command(config, workspace, demo.INSTALL_COMMAND, 120, CommandTracker())
    assert done.exit_code == 0, done.output
    assert "Successfully installed meeting-times-0.1.0" in done.output
    status = git(workspace, "-c", "safe.directory=*", "status", "--porcelain", "--ignored")
    assert status == "", "the diff and the pull request must stay the fix alone"
    result = "[approved by <@U0ALICE>; network on for this command]\nexit code 0 (2.0 s)\n"
    assert read_install(result + done.output) == Install("installed", "<@U0ALICE>")


class ToolRunner:
    """Just enough of the product's tools to feed real results back to the agent."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tools: dict[str, Callable[[dict[str, Any]], str]] = {
            "list_files": lambda _: git(root, "ls-files"),
            "read_file": lambda args: (root / args["path"]).read_text(),
            "show_diff": lambda _: git(root, "diff"),
        }

    def answer(self, reply: Reply, expected: str) -> list[dict[str, Any]]:
        assert [c.name for c in reply.tool_calls] == [expected]
        return turn(reply, [self.tools[c.name](c.arguments) for c in reply.tool_calls])


def apply_edit(root: Path, edit: ToolCall) -> None:
    path = root / edit.arguments["path"]
    text = path.read_text()
    assert text.count(edit.arguments["old_text"]) == 1
    path.write_text(text.replace(edit.arguments["old_text"], edit.arguments["new_text"]))


def turn(reply: Reply, results: list[str]) -> list[dict[str, Any]]:
    number = next(_TURNS)  # distinct ids per turn, as the model's are
    calls = [
        {
            "id": f"call_{number}_{i}",
            "type": "function",
            "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
        }
        for i, c in enumerate(reply.tool_calls)
    ]
    return [
        {"role": "assistant", "content": reply.text or None, "tool_calls": calls},
        *(
            {"role": "tool", "tool_call_id": call["id"], "content": result}
            for call, result in zip(calls, results, strict=True)
        ),
    ]
