"""A thread already under way in #general, for trying how the agent joins one: bob reports the
demo repository's failing build, alice replies with the test run's log as a file, bob guesses
the cause; nobody has mentioned the agent. Mentioning @agent in a reply there makes it read the
thread first (restate_app/thread_history.py), the log included.

Seeded only when the workspace's config asks for it (`make run` does, tests do not) and only
into a fresh workspace, never one restored from its state file. It is history: nothing is
delivered to the bot, as Slack sends an app no events for what was said before.
"""

from __future__ import annotations

from sandbox.demo_repo import FAILING_TEST, MODULE, TEST_COMMAND, TEST_FILE
from sandbox.slack_shares import person_upload, shared_in
from sandbox.slack_state import ts_key
from sandbox.workspace import Workspace

SEED_CHANNEL = "C0GENERAL"
LOG_NAME = "build.log"

_CASE = "tests.test_dates.FormatMeetingTest"
# The demo suite's output as `TEST_COMMAND` prints it from a checkout (a test checks it against
# a real run, so it stays true to the repository).
LOG = f"""\
$ {TEST_COMMAND}
test_a_start_without_timezone_is_rejected ({_CASE}.test_a_start_without_timezone_is_rejected) ... ok
{FAILING_TEST} ({_CASE}.{FAILING_TEST}) ... FAIL
test_winter_meeting_in_berlin ({_CASE}.test_winter_meeting_in_berlin) ... ok
test_winter_meeting_in_new_york ({_CASE}.test_winter_meeting_in_new_york) ... ok
test_weekly_standup_in_tokyo_all_year (tests.test_dates.SlowSuiteTest.test_weekly_standup_in_tokyo_all_year) ... ok

======================================================================
FAIL: {FAILING_TEST} ({_CASE}.{FAILING_TEST})
----------------------------------------------------------------------
Traceback (most recent call last):
  File "/home/alice/meeting-times/{TEST_FILE}", line 19, in {FAILING_TEST}
    self.assertEqual(format_meeting(start, "Europe/Berlin"), "Mon 15 Jul 11:00")
AssertionError: 'Mon 15 Jul 10:00' != 'Mon 15 Jul 11:00'
- Mon 15 Jul 10:00
?             ^
+ Mon 15 Jul 11:00
?             ^


----------------------------------------------------------------------
Ran 5 tests in 6.004s

FAILED (failures=1)
"""  # noqa: E501 (the log's lines are as long as unittest makes them)

# (author, text, minutes ago, shares the log); the root first.
THREAD: tuple[tuple[str, str, int, bool], ...] = (
    (
        "U0BOB",
        f"The meeting-times build is red: `{TEST_COMMAND}` fails on `{FAILING_TEST}` "
        f"({TEST_FILE}). Has anyone touched `{MODULE}` lately?",
        42,
        False,
    ),
    (
        "U0ALICE",
        "Same here, log attached. Only the July meeting in Berlin is wrong, and by exactly one "
        "hour (10:00 instead of 11:00); the winter ones in Berlin and New York pass.",
        31,
        True,
    ),
    (
        "U0BOB",
        "One hour off, and only in summer: smells like daylight saving time. I can't look at it "
        "before tomorrow though.",
        12,
        False,
    ),
)


def seed_thread(ws: Workspace, base_url: str) -> str | None:
    """Seed the thread when the workspace's config asks for it and nothing was restored;
    returns its root's ts (None: not seeded). `base_url` is where the workspace listens, which
    the log's URLs are built on, as an upload's are on the origin it came through."""
    if not ws.config.seed_thread or ws.restored:
        return None
    channel = ws.state.channels[SEED_CHANNEL]
    root_ts: str | None = None
    for user, text, minutes_ago, with_log in THREAD:
        ts = ws.state.next_ts(ago=minutes_ago * 60)
        files = None
        if with_log:
            log = person_upload(ws, user, LOG_NAME, LOG.encode(), base_url)
            log.created = ts_key(ts)[0]
            files = shared_in(ws, [log], channel)
        # The events are dropped: history is never delivered.
        message, _ = ws.store_user_message(channel, user, text, root_ts, files, ts=ts)
        root_ts = root_ts or message.ts
    return root_ts
