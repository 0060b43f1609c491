"""How a run keeps to its budgets: before each model call it checks its steps and tokens, and
the thread's tokens, against their limits (`restate_app/budgets.py`); at a limit it asks the
thread to Continue (one more budget) or to stop here, which ends the run as completed with an
answer saying what it spent.

A mixin of `AgentRun` (`restate_app/coding_task.py`): the state it reads is the run's.
"""

from __future__ import annotations

import structlog

from common.contract import Answer, RunBudget, ToolCall, ToolRecord, WorkspaceRef, WorkStep
from restate_app import budgets
from restate_app.approval_view import duration, who
from restate_app.approvals import Approvals
from restate_app.task_slack import StatusView

log = structlog.get_logger(__name__)


class RunBudgets:
    """The budgets of one run; `AgentRun` holds the state they read."""

    work: list[WorkStep]
    recorded_call: int
    tokens: int
    estimated: bool
    base: RunBudget
    budget: RunBudget
    budget_added: int
    budget_stop: Answer | None
    view: StatusView
    approvals: Approvals

    def _progress(
        self,
        step: str,
        tools: list[ToolRecord] | None = None,
        workspace: WorkspaceRef | None = None,
    ) -> None:
        raise NotImplementedError

    def _calls(self) -> list[ToolCall]:
        raise NotImplementedError

    def _spent(self) -> budgets.Spent:
        return budgets.Spent(steps=self.recorded_call, tokens=self.tokens, estimated=self.estimated)

    async def _within_budget(self) -> bool:
        """Whether the next model call may go: when a limit is reached, the thread is asked
        (Continue or Stop here, by its participants or an admin), and Continue adds one more
        of each reached limit's budget; a Continue at the thread's limit is recorded in the
        session (`budget_added`), so its later runs see it. Pure until it asks: a replay
        decides the same from the journaled calls and the run's request."""
        spent = self._spent()
        reached = budgets.reached(self.budget, spent)
        if not reached:
            return True
        what = budgets.pause_text(self.budget, spent, reached, self.base)
        log.info("budget_reached", limits=reached, tokens=spent.tokens, steps=spent.steps)
        self._progress("Waiting for more budget")
        key = f"budget {self.approvals.asked + 1}"

        async def waiting() -> None:
            await self.view.waiting(key, "Budget reached")

        answer = await self.approvals.ask(what, "budget", on_posted=waiting)
        if not answer.approved:
            self.budget_stop = answer
            return False
        self.budget = budgets.raised(self.budget, reached, self.base)
        if "session" in reached:
            self.budget_added += budgets.session_step(self.base)
        self.view.note(key, "✓ Budget reached: continued")
        self._progress("Continuing with more budget")
        return True

    def _budget_answer(self) -> str:
        """The answer of a run stopped at its budget: what it spent and where it was."""
        answer = self.budget_stop
        assert answer is not None
        match answer.outcome:
            case "denied":
                how = f"stopped by {who(answer)}"
            case "timed_out":
                how = f"nobody answered within {duration(self.approvals.timeout_seconds)}"
            case _:
                how = "I could not ask in Slack"
        said = next((s.text for s in reversed(self.work) if s.role == "assistant" and s.text), "")
        return budgets.stop_text(self._spent(), how, said, len(self._calls()))
