"""What `/agent-status` shows of a session: its state, and the latest run's tool steps."""

from __future__ import annotations

import re

from bot.status_view import detail_text, list_text
from common.contract import ChangeSummary, ToolRecord, Turn, WorkspaceRef
from common.session_state import RunRecord, Session, SessionStatus
from common.slack_text import plain, snippet


def test_the_detail_shows_the_latest_runs_tool_steps_and_changes() -> None:
    run = RunRecord(
        task_id="inv_1",
        trigger_ts="1.000001",
        started_at=1.0,
        tools=[
            ToolRecord(name="read_file", summary="Reading `dates.py`", seconds=0.01),
            ToolRecord(
                name="run_command",
                summary="Running `python3 -m unittest`",
                seconds=6.2,
                exit_code=1,
                ok=False,
            ),
            ToolRecord(name="run_command", summary="Running `sleep 60`", seconds=3, killed=True),
        ],
        changes=ChangeSummary(files=["dates.py"], added=2, removed=8),
    )
    status = SessionStatus(
        thread_key="T0:C0:1.000001", state="working", turns=2, tasks_started=1, last_run=run
    )
    text = detail_text(status, now=10.0)
    assert ":white_check_mark: Reading `dates.py` (0.0 s)" in text
    assert ":x: Running `python3 -m unittest` (6.2 s, exit 1)" in text
    assert ":scissors: Running `sleep 60` (3.0 s)" in text
    assert "*Changes:* +2 -8 in `dates.py`" in text


def test_a_session_without_runs_shows_no_tool_lines() -> None:
    status = SessionStatus(thread_key="T0:C0:1.000001", state="idle", turns=1)
    assert "tool steps" not in detail_text(status, now=10.0)


# The code's own tokens aside (the channel link `<#C0>`), no `<!…>`, `<@…>` or `<#…>`.
SPECIAL = re.compile(r"<[!@]|<#(?!C0>)")


def test_what_people_and_the_model_wrote_never_pings_anyone_from_the_status() -> None:
    """A command, a file name and a first message full of Slack tokens: shown, never live."""
    run = RunRecord(
        task_id="inv_1",
        trigger_ts="1.000001",
        started_at=1.0,
        tools=[ToolRecord(name="run_command", summary="Running `echo <!here> <@U0ADMIN>`")],
        changes=ChangeSummary(files=["<!channel>.py"], added=1, removed=0),
    )
    status = SessionStatus(
        thread_key="T0:C0:1.000001",
        state="working",
        running_step="tool 1.1 <!everyone>",
        turns=1,
        tasks_started=1,
        last_run=run,
    )
    assert not SPECIAL.search(detail_text(status, now=10.0))
    first = "<@U0BOT> fix <https://x.io/a|the docs> then tell <!here> and <!subteam^S1|@oncall> now"
    session = Session(
        channel_id="C0",
        thread_ts="1.000001",
        turns=[Turn(kind="user", user_id="U0ALICE", ts="1.000001", text=first)],
    )
    text = list_text(
        [session], {"1.000001": "https://slack.example/archives/C0/p1"}, 1, False, False
    )
    assert not SPECIAL.search(text)
    # The quoted message is the link's label: one link, closed where the line closes it.
    assert text.count("<") == 1
    assert (
        "<https://slack.example/archives/C0/p1|@U0BOT fix the docs then tell @here and @oncall"
        in text
    )


def test_a_quoted_message_cut_inside_a_token_leaves_no_half_token() -> None:
    assert snippet("hello <https://example.com/a/very/long/path|label>", 12) == "hello label"
    assert "<" not in snippet("a <@U0ALICE", 40)
    assert plain("5 &lt; 6 | <#C0GENERAL|general>") == "5 &lt; 6  general"


def test_the_detail_names_the_repository_and_model_the_thread_picked() -> None:
    status = SessionStatus(
        thread_key="T0:C0:1.000001", state="idle", turns=2, repo="api", model="smart"
    )
    assert "Repository: `api` · model: `smart`" in detail_text(status, now=10.0)


def test_without_a_pick_the_detail_shows_the_defaults_never_a_repositorys_url() -> None:
    token_url = "https://x-access-token:ghs_secret@github.com/acme/web.git"
    status = SessionStatus(
        thread_key="T0:C0:1.000001",
        state="idle",
        turns=2,
        workspace=WorkspaceRef(repo=token_url, base_commit="0" * 40),
    )
    text = detail_text(status, now=10.0)
    assert "Repository: `web` · model: the default" in text
    assert "ghs_secret" not in text
    fresh = SessionStatus(thread_key="T0:C0:1.000001", state="working", turns=1)
    assert "Repository: the default · model: the default" in detail_text(fresh, now=10.0)
