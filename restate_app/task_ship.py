"""`CodingTask.ship`: a thread's work as a branch and a draft pull request, once a person in
the thread approves the push.

The push and the pull request are durable steps of their own (`push branch`, `open pull
request`); both are idempotent (`restate_app/shipping.py`), so a retry after a crash pushes
nothing twice and never opens a second pull request. The push works on a snapshot of the
thread's workspace rebuilt from its recorded changes, in a directory of its own: a run working
in the thread meanwhile is never disturbed, and any replica can ship.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import restate
import structlog
from restate.exceptions import TerminalError

from common.contract import ApprovalKind, ShipJob, ShipReport
from common.slack_text import escape
from restate_app.approvals import Approvals
from restate_app.deps import Deps
from restate_app.shipping import (
    PullRequestResult,
    PushResult,
    branch_name,
    open_or_update_pr,
    pull_request_text,
    push,
)

log = structlog.get_logger(__name__)

NOTHING_TEXT = ":information_source: There is nothing to ship yet: this thread has no changes."
TOO_BIG_TEXT = (
    ":warning: These changes are too large to ship from here (the workspace's patch is over "
    "its bound). Push them from the workspace by hand."
)
FAILED_TEXT = ':warning: Shipping failed: {why}. Say "open a PR" to try again.'
WHY = "it publishes the thread's changes to the repository's remote"
# A snapshot per thread for shipping, next to the thread's own checkout.
SNAPSHOT_SUFFIX = ":ship"


def _options(attempts: int) -> restate.RunOptions[Any]:
    return restate.RunOptions(
        max_attempts=attempts,
        initial_retry_interval=timedelta(seconds=1),
        max_retry_interval=timedelta(seconds=30),
    )


async def ship_work(ctx: restate.Context, deps: Deps, job: ShipJob) -> ShipReport:
    """Ask, push, open or update the pull request, say so in the thread: the job's report."""
    ref = job.workspace
    if ref is None or not (ref.patch or ref.patch_truncated or job.branch):
        await _say(ctx, deps, job, NOTHING_TEXT)
        return ShipReport(job=job.job, outcome="nothing")
    if ref.patch_truncated:
        await _say(ctx, deps, job, TOO_BIG_TEXT)
        return ShipReport(job=job.job, outcome="failed", detail="patch over its bound")
    branch = job.branch or branch_name(job.thread_key, job.title)
    asking = Approvals(ctx, deps, job, ctx.request().id)
    kind: ApprovalKind = "pull_request" if deps.github.token is not None else "push"
    answer = await asking.ask(_action_text(deps, job, branch), kind, WHY)
    if not answer.approved:
        return ShipReport(job=job.job, outcome="denied", branch=job.branch, detail=answer.outcome)
    try:
        pushed: PushResult = await ctx.run_typed(
            "push branch", _push, _options(3), deps=deps, job=job, branch=branch
        )
        pull: PullRequestResult | None = None
        if deps.github.token is not None:
            pull = await ctx.run_typed(
                "open pull request", _open_pr, _options(3), deps=deps, job=job, branch=branch
            )
    except TerminalError as err:
        log.warning("ship_failed", branch=branch, error=err.message)
        await _say(ctx, deps, job, FAILED_TEXT.format(why=_why(err.message)))
        return ShipReport(job=job.job, outcome="failed", branch=job.branch, detail=err.message)
    text = result_text(deps, job, pushed, pull)
    if text:
        await _say(ctx, deps, job, text)
    return ShipReport(
        job=job.job,
        outcome="unchanged" if pushed.outcome == "unchanged" and pull is None else "shipped",
        branch=branch,
        commit=pushed.commit,
        pr_url=pull.url if pull else None,
        pr_number=pull.number if pull else None,
    )


def _action_text(deps: Deps, job: ShipJob, branch: str) -> str:
    """What the approval message says will happen, exactly."""
    assert job.workspace is not None
    where = f"push branch {branch} to {deps.repos.label(job.workspace.repo)}"
    if deps.github.token is None:
        return where
    if job.pr_url:
        return f"{where} (updates its draft pull request)"
    return f"{where} and open a draft pull request"


async def _push(deps: Deps, job: ShipJob, branch: str) -> PushResult:
    assert job.workspace is not None
    key = job.thread_key + SNAPSHOT_SUFFIX
    ws = await deps.workspaces.open(key, job.workspace, job.workspace.repo, sync=True)
    with deps.workspaces.in_use(ws):
        message = f"{job.title.strip()[:72] or 'Changes'}\n\nFrom the coding agent's Slack thread."
        return await push(ws, branch, message, deps.github)


async def _open_pr(deps: Deps, job: ShipJob, branch: str) -> PullRequestResult:
    assert job.workspace is not None
    thread_url = await deps.slack.permalink(job.channel_id, job.thread_ts)
    text = pull_request_text(job.title, job.answer, thread_url)
    return await open_or_update_pr(job.workspace.repo, branch, text, deps.github)


def result_text(
    deps: Deps, job: ShipJob, pushed: PushResult, pull: PullRequestResult | None
) -> str:
    """What the thread is told: the pull request's link the first time, a line after that."""
    branch = f"`{pushed.branch}`"
    if pull is not None:
        if pull.url != job.pr_url:
            return f":rocket: Draft pull request: <{escape(pull.url)}|#{pull.number}> ({branch})"
        if pushed.outcome == "unchanged":
            return f":information_source: Pull request #{pull.number} already has these changes."
        return f":arrows_counterclockwise: Pushed to {branch}: pull request #{pull.number} updated."
    if pushed.outcome == "unchanged":
        return f":information_source: {branch} already has these changes."
    assert job.workspace is not None
    repo = escape(deps.repos.label(job.workspace.repo))
    return (
        f":arrow_up: Pushed {branch} to `{repo}`. No `GITHUB_TOKEN` is set, so no pull request "
        "was opened."
    )


async def _say(ctx: restate.Context, deps: Deps, job: ShipJob, text: str) -> None:
    await ctx.run_typed(
        "post ship result",
        deps.slack.post,
        _options(deps.slack_max_attempts),
        channel=job.channel_id,
        thread_ts=job.thread_ts,
        text=text,
    )


def _why(message: str) -> str:
    """A step's failure for people: the cause `shipping` gives (never a token), shortened."""
    first = message.strip().splitlines()[0] if message.strip() else "an unknown error"
    return escape(first[:200])
