"""The demo agent's step that waits for a person: installing the package before the tests.

Its command (`demo_repo.INSTALL_COMMAND`) matches the default approval patterns, so the product
asks in the thread before it runs. This reads how it went from the tool's result (installed,
failed, or not run because nobody approved it) and puts that in the agent's words: the run
goes on to the tests either way, and the answer says what became of the step.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from sandbox.model_script import LABEL

# How the product's result of a command nobody approved begins (`restate_app/task_tools.py`).
REFUSED = "The command was not run:"
# How it marks an approved command's result: "[approved by <@U0ALICE>; network on …]".
_APPROVED = re.compile(r"^\[approved by ([^;\]]+)")
_EXIT = re.compile(r"^exit code (-?\d+)", re.M)
_DENIED_BY = re.compile(r"^(?:<@\w+>|someone) denied it$")


@dataclass(frozen=True)
class Install:
    """How the install step went: `detail` is who approved it (may be empty), why it was not
    run, or the exit code it failed with (empty when its result shows none)."""

    outcome: Literal["installed", "failed", "refused"]
    detail: str


def read_install(result: str) -> Install:
    """The install step's outcome from its (finished, not interrupted) tool result."""
    text = result.strip()
    if text.startswith(REFUSED):
        return Install("refused", text.removeprefix(REFUSED).strip().rstrip("."))
    approved = _APPROVED.match(text)
    exit_code = _EXIT.search(text)
    if exit_code is not None and exit_code.group(1) == "0":
        return Install("installed", approved.group(1).strip() if approved else "")
    return Install("failed", exit_code.group(1) if exit_code else "")


def before_tests(install: Install) -> str:
    """What the agent says as it turns to the tests right after the install step."""
    match install.outcome:
        case "refused":
            return (
                f"{LABEL} The install check was not approved, so I'll do without it and run "
                "the tests directly."
            )
        case "failed":
            return (
                f"{LABEL} The install check failed, so I'll run the tests straight from the "
                "workspace."
            )
    return ""


def answer_line(install: Install) -> str:
    """The answer's line about the install step. It names nobody: the product shows a model's
    `<@U…>` as text, never as a mention, and the request in the thread says who answered."""
    match install.outcome:
        case "refused":
            why = _DENIED_BY.sub("it was denied in this thread", install.detail)
            return f"skipped because {why}; I ran the tests without it."
        case "failed":
            code = f" (exit code {install.detail})" if install.detail else ""
            return f"`pip install` failed{code}; the tests ran from the workspace all the same."
    approved = " (approved in this thread)" if install.detail else ""
    return f"pip installed the package, editable, into a throwaway virtual environment{approved}."
