"""Work after Slack's ack is bounded: so many jobs at once, a bounded wait, then refusals."""

from __future__ import annotations

import asyncio

from structlog.testing import capture_logs

from bot.background import Background
from tests.unit.bot_fakes import eventually


class Jobs:
    """Jobs that block until released, counting how many run at once."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.running = self.most = self.finished = 0

    async def job(self) -> None:
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            await self.release.wait()
        finally:
            self.running -= 1
            self.finished += 1


async def test_no_more_than_max_running_jobs_run_at_once() -> None:
    jobs, background = Jobs(), Background(max_running=3, max_waiting=20, wait_seconds=5)
    for _ in range(20):
        assert background.spawn(jobs.job(), "job")
    await eventually(lambda: jobs.running == 3)
    await asyncio.sleep(0.05)  # give any job beyond the bound the chance to start
    assert jobs.most == 3
    jobs.release.set()
    await eventually(lambda: jobs.finished == 20)
    assert jobs.most == 3


async def test_beyond_the_waiting_room_a_job_is_refused_with_a_log() -> None:
    jobs, background = Jobs(), Background(max_running=2, max_waiting=1, wait_seconds=5)
    with capture_logs() as logs:
        started = [background.spawn(jobs.job(), "stop button") for _ in range(4)]
    assert started == [True, True, True, False]
    assert {"event": "background_full", "what": "stop button", "jobs": 3} in [
        {k: log[k] for k in ("event", "what", "jobs") if k in log} for log in logs
    ]
    jobs.release.set()
    await eventually(lambda: jobs.finished == 3)


async def test_a_job_waits_for_its_turn_at_most_wait_seconds() -> None:
    jobs, background = Jobs(), Background(max_running=1, max_waiting=5, wait_seconds=0.1)
    with capture_logs() as logs:
        background.spawn(jobs.job(), "first")
        background.spawn(jobs.job(), "second")
        await eventually(lambda: any(log["event"] == "background_gave_up" for log in logs))
    assert jobs.most == 1
    jobs.release.set()
    await eventually(lambda: jobs.finished == 1)
    await background.close(grace_seconds=1)


async def test_closing_cancels_what_still_runs_after_the_grace() -> None:
    jobs, background = Jobs(), Background(max_running=1, max_waiting=5, wait_seconds=5)
    background.spawn(jobs.job(), "running")
    background.spawn(jobs.job(), "waiting")
    await eventually(lambda: jobs.running == 1)
    await background.close(grace_seconds=0.05)
    assert jobs.finished == 1
    assert jobs.running == 0


async def test_reactions_waiting_for_slack_never_hold_up_a_persons_answer() -> None:
    """Every cosmetic slot taken (reactions waiting out Slack's limits): a status reply still
    runs at once, on a slot of its own."""
    reactions, answers = Jobs(), Jobs()
    background = Background(max_running=2, max_waiting=50, wait_seconds=5, max_cosmetic=2)
    for _ in range(20):
        background.spawn(reactions.job(), "received reaction", cosmetic=True)
    await eventually(lambda: reactions.running == 2)
    background.spawn(answers.job(), "status reply")
    await eventually(lambda: answers.running == 1)
    assert reactions.most == 2
    reactions.release.set()
    answers.release.set()
    await eventually(lambda: reactions.finished == 20 and answers.finished == 1)
