"""The wire contract of approvals: a run's request, the Approve and Deny buttons' value, a
click as the bot forwards it, and how a request ended. Re-exported by `common.contract`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from common.thread_keys import parse_thread_key

ApprovalOutcome = Literal["approved", "denied", "timed_out", "unavailable"]
ApprovalKind = Literal["command", "push", "pull_request", "budget"]


class Answer(BaseModel):
    """How a request for approval ended: approved or denied by someone, or nobody answered
    in time (`timed_out`), or it could not be asked at all (`unavailable`)."""

    outcome: ApprovalOutcome
    by_user: str | None = None
    # When it was answered (unix seconds, the agent's clock).
    at: float | None = None

    @property
    def approved(self) -> bool:
        return self.outcome == "approved"


# The action a request asks about, as its record keeps it (and a button carries it): short.
MAX_APPROVAL_SUMMARY = 200


def approval_summary(what: str) -> str:
    """The action of a request on one line, cut at `MAX_APPROVAL_SUMMARY` characters: what
    its button carries to the agent, so the record of its answer says what was approved."""
    text = " ".join(what.split())
    cut = MAX_APPROVAL_SUMMARY - 1
    return text if len(text) <= MAX_APPROVAL_SUMMARY else text[:cut].rstrip() + "…"


class ApprovalRef(BaseModel):
    """What an Approve or Deny button carries (its value): the thread, the run that asks and
    the awakeable it waits on, and what it asks about (for the record of the answer: the agent
    never saw the request). Read strictly: anything else in a button value is refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    thread_key: str = Field(max_length=200)
    task_id: str = Field(pattern=r"^inv_[0-9A-Za-z]{1,64}$")
    # Restate's awakeable ids: `sign_1` (or `prom_1`) and 28 bytes in base64url, 38 characters.
    awakeable_id: str = Field(pattern=r"^(sign|prom)_1[0-9A-Za-z_-]{38}$")
    # None and empty on buttons posted before they were carried.
    kind: ApprovalKind | None = None
    what: str = Field(default="", max_length=MAX_APPROVAL_SUMMARY)

    @field_validator("thread_key")
    @classmethod
    def _a_thread_key(cls, value: str) -> str:
        parse_thread_key(value)
        return value

    def value(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_value(cls, value: object) -> ApprovalRef:
        """The reference a button value holds; `ValueError` for anything else."""
        if not isinstance(value, str) or len(value) > 1000:
            raise ValueError("not an approval button value")
        return cls.model_validate_json(value)


class ApprovalClick(BaseModel):
    """A person's Approve or Deny, as the bot forwards it to `CodingAgent.approval`."""

    ref: ApprovalRef
    approved: bool
    user_id: str
    is_admin: bool = False


ApprovalReason = Literal["accepted", "not_allowed", "answered", "not_waiting"]


class ApprovalAck(BaseModel):
    """What `CodingAgent.approval` did with a click; `answer` is the earlier one when the
    request was already answered."""

    reason: ApprovalReason
    answer: Answer | None = None


class ApprovalClosed(BaseModel):
    """A run's wait for an answer ran out (sent by the run to its agent): unless someone
    answered first, `answer` (timed out) is the answer."""

    awakeable_id: str
    task_id: str
    answer: Answer
    # What it asked about (`approval_summary`), for the record of the answer.
    kind: ApprovalKind | None = None
    what: str = ""


class PendingApproval(BaseModel):
    """A run's request for approval in the thread, while it waits (and until its message
    shows the answer): a run cut meanwhile has the notice rewrite it, without its buttons."""

    ts: str
    kind: ApprovalKind = "command"
    what: str
    why: str = ""
    network: bool = False
    timeout_seconds: float = 0.0
    answer: Answer | None = None
