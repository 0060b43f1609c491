"""The session machine's rules, one scenario each, as a newcomer would read them."""

from __future__ import annotations

from datetime import timedelta

from common.contract import (
    Awaited,
    IncomingMessage,
    TaskProgress,
    TaskReport,
    Timer,
    Turn,
    WorkspaceRef,
)
from common.session_state import Session
from restate_app.session import (
    CancelTask,
    Decision,
    Event,
    Limits,
    PostNotice,
    ProgressReported,
    Schedule,
    StartTask,
    StopRequested,
    TaskEnded,
    TaskStarted,
    TimerFired,
    UserMessage,
    decide,
)

KEY = "T0:C0:100.000001"
LIMITS = Limits(cleanup_wait=timedelta(seconds=10))


class Thread:
    """Drives `decide` as `CodingAgent` does: each `StartTask` is named `inv_N` at once."""

    def __init__(self) -> None:
        self.session, self.now, self.started = Session(), 1000.0, 0
        self.effects: list[object] = []

    def __call__(self, event: Event) -> Decision:
        self.now += 1
        d = decide(self.session, KEY, event, self.now, LIMITS)
        self.effects = list(d.effects)
        for effect in d.effects:
            if isinstance(effect, StartTask):
                self.started += 1
                more = decide(d.session, KEY, TaskStarted(f"inv_{self.started}"), self.now, LIMITS)
                d.session = more.session
        self.session = d.session
        return d

    def say(self, ts: str, text: str, **kw: object) -> Decision:
        fields: dict[str, object] = {
            "team_id": "T0",
            "channel_id": "C0",
            "thread_ts": "100.000001",
            "ts": ts,
            "user_id": "U1",
            "text": text,
        }
        return self(UserMessage(IncomingMessage.model_validate(fields | kw)))

    def of(self, kind: type) -> list[object]:
        return [e for e in self.effects if isinstance(e, kind)]


def test_a_mention_starts_a_task_with_the_conversation() -> None:
    t = Thread()
    t.say("100.000001", "fix the bug", mentions_bot=True)
    (start,) = t.of(StartTask)
    assert isinstance(start, StartTask)
    assert [turn.text for turn in start.request.turns] == ["fix the bug"]
    assert t.session.running is not None
    assert t.session.running.task_id == "inv_1"


def test_the_first_mentions_model_and_repository_go_with_every_run_of_the_session() -> None:
    t = Thread()
    chosen = []
    for ts, model, repo in [("100.000001", "smart", "api"), ("100.000002", "fast", "web")]:
        t.say(ts, "go on", mentions_bot=True, model=model, repo=repo)
        (start,) = t.of(StartTask)
        assert isinstance(start, StartTask)
        chosen.append((start.request.model, start.request.repo))
    assert chosen == [("smart", "api"), ("smart", "api")]
    assert (t.session.model, t.session.repo) == ("smart", "api")


def test_a_reply_cancels_and_starts_the_replacement_at_once_which_waits_for_the_report() -> None:
    t = Thread()
    t.say("100.000001", "fix the bug", mentions_bot=True)
    d = t.say("100.000002", "use zoneinfo")
    assert d.cancelled == "inv_1"
    assert t.of(CancelTask) == [CancelTask("inv_1")]
    assert [s.timer.kind for s in t.of(Schedule) if isinstance(s, Schedule)] == ["cleanup"]
    # The replacement starts now, and reads the cut run's report itself (no agent turn).
    (start,) = t.of(StartTask)
    assert isinstance(start, StartTask)
    assert start.request.awaiting == [Awaited(task_id="inv_1", by_ts="100.000002")]
    assert [turn.text for turn in start.request.turns] == ["fix the bug", "use zoneinfo"]
    assert t.session.state == "cancelling"
    assert t.session.running is not None
    assert t.session.running.task_id == "inv_2"
    report = TaskReport(
        task_id="inv_1", outcome="cancelled", text="half a plan", status_ts="100.000009"
    )
    t(TaskEnded(report))
    assert not t.of(StartTask)
    kinds = [(turn.kind, turn.text) for turn in t.session.turns]
    assert kinds == [("user", "fix the bug"), ("partial", "half a plan"), ("user", "use zoneinfo")]
    (notice,) = t.of(PostNotice)
    assert isinstance(notice, PostNotice)
    assert notice.notice.kind == "restarting"
    assert notice.notice.status_ts == "100.000009"
    assert t.session.state == "working"


def test_a_run_cut_before_its_status_message_showed_leaves_no_notice_to_land_below() -> None:
    t = Thread()
    t.say("100.000001", "fix the bug", mentions_bot=True)
    t.say("100.000002", "use zoneinfo")
    t(TaskEnded(TaskReport(task_id="inv_1", outcome="cancelled", text="half a plan")))
    (notice,) = t.of(PostNotice)
    assert isinstance(notice, PostNotice)
    # Its partial text still joins the conversation; the thread only loses the reaction.
    assert notice.notice.kind == "withdrawn"
    assert ("partial", "half a plan") in [(turn.kind, turn.text) for turn in t.session.turns]


def test_a_run_that_showed_nothing_gets_its_agents_notice_when_no_replacement_runs() -> None:
    t = Thread()
    t.say("100.000001", "fix the bug", mentions_bot=True)
    # A debounced reply: the replacement waits for the window, the report comes first.
    t.say("100.000002", "use zoneinfo", debounce_seconds=1.5)
    assert not t.of(StartTask)
    t(TaskEnded(TaskReport(task_id="inv_1", outcome="cancelled", text="half a plan")))
    (notice,) = t.of(PostNotice)
    assert isinstance(notice, PostNotice)
    assert (notice.notice.kind, notice.notice.status_ts) == ("restarting", None)


def test_a_replacement_cut_while_waiting_goes_along_and_the_next_waits_for_both() -> None:
    t = Thread()
    t.say("100.000001", "fix the bug", mentions_bot=True)
    t.say("100.000002", "use zoneinfo")
    d = t.say("100.000003", "and keep the old API")
    assert d.cancelled == "inv_2"
    (start,) = t.of(StartTask)
    assert isinstance(start, StartTask)
    assert [a.task_id for a in start.request.awaiting] == ["inv_1", "inv_2"]
    assert t.session.cancelling is not None
    assert t.session.cancelling.task_id == "inv_1"
    t(TaskEnded(TaskReport(task_id="inv_2", outcome="cancelled", model_started=False)))
    t(TaskEnded(TaskReport(task_id="inv_1", outcome="cancelled", text="half a plan")))
    texts = [turn.text for turn in t.session.turns]
    assert texts == ["fix the bug", "half a plan", "use zoneinfo", "and keep the old API"]
    assert t.session.running is not None
    assert t.session.running.task_id == "inv_3"
    assert t.session.state == "working"
    # Both reports are in: the next replacement waits for nothing but the run it cuts.
    t.say("100.000004", "go")
    (start,) = t.of(StartTask)
    assert isinstance(start, StartTask)
    assert [a.task_id for a in start.request.awaiting] == ["inv_3"]


def test_a_stop_while_the_replacement_waits_calls_the_restart_off() -> None:
    t = Thread()
    t.say("100.000001", "fix the bug", mentions_bot=True)
    t.say("100.000002", "use zoneinfo")
    t(StopRequested("U1"))
    assert t.of(CancelTask) == [CancelTask("inv_2")]
    t(TaskEnded(TaskReport(task_id="inv_1", outcome="cancelled", status_ts="100.000009")))
    (notice,) = t.of(PostNotice)
    assert isinstance(notice, PostNotice)
    assert (notice.notice.kind, notice.notice.by_user) == ("stopped", "U1")
    assert not t.of(StartTask)
    assert t.session.running is None


def test_an_overdue_cleanup_does_not_hold_the_thread_and_its_late_report_still_counts() -> None:
    t = Thread()
    t.say("100.000001", "fix the bug", mentions_bot=True)
    t.say("100.000002", "use zoneinfo")
    assert t.session.running is not None
    assert t.session.running.task_id == "inv_2"
    t(TimerFired(Timer(kind="cleanup", task_id="inv_1")))
    assert t.session.cancelling is None
    t(TaskEnded(TaskReport(task_id="inv_1", outcome="cancelled", text="late words")))
    assert [turn.text for turn in t.session.turns] == ["fix the bug", "late words", "use zoneinfo"]
    assert t.session.running.task_id == "inv_2", "the late report must not clear the new task"
    assert t.of(PostNotice)


def test_a_stop_cancels_without_restarting_and_says_who() -> None:
    t = Thread()
    t.say("100.000001", "fix the bug", mentions_bot=True)
    d = t(StopRequested("U1"))
    assert d.note == "stopped"
    t(TaskEnded(TaskReport(task_id="inv_1", outcome="cancelled")))
    assert not t.of(StartTask)
    (notice,) = t.of(PostNotice)
    assert isinstance(notice, PostNotice)
    assert (notice.notice.kind, notice.notice.by_user) == ("stopped", "U1")
    assert t.session.last_outcome == "stopped"


def test_only_participants_and_admins_may_stop() -> None:
    t = Thread()
    t.say("100.000001", "fix the bug", mentions_bot=True)
    assert t(StopRequested("U9")).note == "not_allowed"
    assert t(StopRequested("U9", is_admin=True)).note == "stopped"


def test_a_burst_in_the_debounce_window_starts_one_run() -> None:
    t = Thread()
    t.say("100.000001", "start", mentions_bot=True, debounce_seconds=2)
    assert not t.of(StartTask)
    for i in range(2, 6):
        t.say(f"100.00000{i}", f"detail {i}", debounce_seconds=2)
    t(TimerFired(Timer(kind="debounce", generation=1)))
    assert not t.of(StartTask), "an old window's timer starts nothing"
    t(TimerFired(Timer(kind="debounce", generation=t.session.debounce_generation)))
    (start,) = t.of(StartTask)
    assert isinstance(start, StartTask)
    assert len(start.request.turns) == 5
    assert t.started == 1


def test_the_queue_policy_waits_for_the_task_then_runs_once_with_every_reply() -> None:
    t = Thread()
    t.say("100.000001", "start", mentions_bot=True, policy="queue")
    t.say("100.000003", "second", policy="queue")
    t.say("100.000002", "first", policy="queue")
    assert [turn.text for turn in t.session.queued] == ["first", "second"]
    assert not t.of(CancelTask)
    t(TaskEnded(TaskReport(task_id="inv_1", outcome="completed", text="done")))
    (start,) = t.of(StartTask)
    assert isinstance(start, StartTask)
    texts = [turn.text for turn in start.request.turns]
    assert texts == ["start", "done", "first", "second"]


def test_replies_before_the_mention_join_the_session_in_order() -> None:
    t = Thread()
    assert t.say("100.000003", "early reply").note == "no_session"
    t.say("100.000002", "the mention", mentions_bot=True)
    assert [turn.text for turn in t.session.turns] == ["the mention", "early reply"]


def test_reset_forgets_the_conversation_but_still_settles_the_task() -> None:
    t = Thread()
    t.say("100.000001", "fix the bug", mentions_bot=True)
    t(StopRequested("U0ADMIN", is_admin=True, reset=True))
    assert t.session.turns == []
    assert t.session.cancelling is not None
    t(TaskEnded(TaskReport(task_id="inv_1", outcome="cancelled", text="x")))
    assert t.session.cancelling is None
    assert t.session.turns == []
    assert t.of(PostNotice)


def test_a_run_cancelled_before_its_first_model_call_leaves_no_trace() -> None:
    t = Thread()
    t.say("100.000001", "fix", mentions_bot=True)
    t.say("100.000002", "and more")
    t(TaskEnded(TaskReport(task_id="inv_1", outcome="cancelled", model_started=False)))
    (notice,) = t.of(PostNotice)
    assert isinstance(notice, PostNotice)
    assert notice.notice.kind == "withdrawn"
    assert [turn.kind for turn in t.session.turns] == ["user", "user"]


def test_answers_and_transcripts_are_bounded_too() -> None:
    t = Thread()
    t.say("100.000001", "write a lot", mentions_bot=True)
    huge = "x" * (LIMITS.max_turn_bytes * 3)
    t(TaskEnded(TaskReport(task_id="inv_1", outcome="completed", text=huge)))
    answer = t.session.turns[-1]
    assert answer.kind == "answer"
    assert answer.size() <= LIMITS.max_turn_bytes + 100
    assert isinstance(answer, Turn)


def test_a_stand_in_report_before_the_tasks_own_does_not_lose_its_work() -> None:
    """`settle` reports a cancelled task that never ran; should it come before the task's own
    report, the restart goes on and the task's own report still joins the conversation."""
    t = Thread()
    t.say("100.000001", "fix the bug", mentions_bot=True)
    t.say("100.000002", "use zoneinfo")
    stand_in = TaskReport(task_id="inv_1", outcome="cancelled", model_started=False, stand_in=True)
    t(TaskEnded(stand_in))
    assert t.session.cancelling is None
    assert not t.of(PostNotice)
    t(TaskEnded(TaskReport(task_id="inv_1", outcome="cancelled", text="half done")))
    assert [turn.text for turn in t.session.turns] == ["fix the bug", "half done", "use zoneinfo"]
    assert t.of(PostNotice)


def test_a_late_report_never_takes_the_workspace_back() -> None:
    t = Thread()
    t.say("100.000001", "fix the bug", mentions_bot=True)
    t.say("100.000002", "use zoneinfo")
    t(TimerFired(Timer(kind="cleanup", task_id="inv_1")))
    new = WorkspaceRef(repo="r", base_commit="b", patch="new")
    t(ProgressReported(TaskProgress(task_id="inv_2", step="edit", workspace=new)))
    old = WorkspaceRef(repo="r", base_commit="b", patch="old")
    t(TaskEnded(TaskReport(task_id="inv_1", outcome="cancelled", text="x", workspace=old)))
    assert t.session.workspace == new


def test_after_a_reset_the_stopped_tasks_report_joins_no_new_session() -> None:
    t = Thread()
    t.say("100.000001", "old topic", mentions_bot=True)
    t(StopRequested("U0ADMIN", is_admin=True, reset=True))
    t.say("100.000005", "new topic", mentions_bot=True)
    t(TaskEnded(TaskReport(task_id="inv_1", outcome="cancelled", text="old partial")))
    assert [turn.text for turn in t.session.turns] == ["new topic"]
    assert t.session.running is not None
    assert t.of(PostNotice), "the old run's status message is still told it stopped"
