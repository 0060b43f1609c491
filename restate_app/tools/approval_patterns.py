"""Which commands need a person's approval before they run (`AGENT_APPROVAL_PATTERNS`).

Each pattern is a regular expression matched (`re.search`) against every simple command of a
`run_command` command line, one at a time: the line is split at `;`, `&&`, `||`, `|`, `&`,
newlines and parentheses (not inside quotes), the commands inside `$(…)`, backticks and
`sh -c '…'` / `eval` are commands of their own, quotes are removed, and what only wraps a
command (`sudo`, `env X=1`, `timeout 30`, `nice`, `nohup`, `time`, `xargs`, leading
`VAR=value`) is dropped; `git`'s own options before its subcommand too. So `^curl\b` finds
`cd x && "curl" …` and `sudo -u bob /usr/bin/curl …`, and not `echo "curl is nice"`.

This is a policy prompt, not a boundary: the sandbox stays that (no network unless allowed,
nothing writable but the workspace). A pattern that turns the network on when approved
(`net:` before it) is one the person approving is told about.

Pure: no I/O.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

NETWORK = "it reaches the network"
INSTALL = "it installs packages"
PUSH = "it pushes or publishes"
DELETE = "it deletes files outside build outputs"
CUSTOM = "it matches AGENT_APPROVAL_PATTERNS"

# What `rm` may remove without asking: build outputs and caches, relative, never through `..`.
_BUILD_OUTPUT = (
    r"(?!\S*\.\.)(?:\./)?(?:"
    r"(?:[^\s/]+/)*(?:__pycache__|\.pytest_cache|\.mypy_cache|\.ruff_cache|[^\s/]*\.egg-info)"
    r"|build|dist|target|out|node_modules|\.venv|venv|htmlcov|\.coverage|\.tox|\.nox|\.eggs"
    r"|\.cache|\.next|\.parcel-cache"
    r")(?:/\S*)?"
    r"|(?!\S*\.\.)(?:\./)?\S*\.py[co]"
)

# (why, whether approving it turns the network on for the command, pattern)
DEFAULT_RULES: tuple[tuple[str, bool, str], ...] = (
    (NETWORK, True, r"^(curl|wget|ssh|scp|sftp|nc|ncat|netcat|socat|telnet|ftp|aria2c)\b"),
    (NETWORK, True, r"^rsync\b.*(::|rsync://|\s[^\s/]+:)"),
    (NETWORK, True, r"^git\s+(clone|fetch|pull|ls-remote|remote\s+update|submodule\s+update)\b"),
    (INSTALL, True, r"^(pip[0-9.]*|pipx|python[0-9.]*\s+-m\s+pip)\s+(install|download)\b"),
    (INSTALL, True, r"^uv\s+(add|sync|lock|pip\s+install|tool\s+(install|run))\b"),
    (INSTALL, True, r"^(uvx|npx|pnpx)\b"),
    (INSTALL, True, r"^poetry\s+(add|install|update|lock)\b"),
    (INSTALL, True, r"^(npm|pnpm)\s+(install|i|add|ci|update|exec|dlx)\b"),
    (INSTALL, True, r"^yarn(\s+(add|install|up|dlx)\b|\s*$)"),
    (INSTALL, True, r"^(apt|apt-get|aptitude|dnf|yum|zypper|brew|conda|mamba)\s+install\b"),
    (INSTALL, True, r"^(apt|apt-get|apk)\s+(update|upgrade|add)\b"),
    (INSTALL, True, r"^(gem|cargo|go)\s+(install|add|get)\b"),
    (INSTALL, True, r"^bundle\s+install\b"),
    (PUSH, True, r"^git\s+push\b"),
    (PUSH, True, r"^gh\s+(pr\s+(create|merge)|release\s+create|repo\s+create)\b"),
    (PUSH, True, r"^(twine\s+upload|(npm|cargo|poetry|uv)\s+publish|gem\s+push)\b"),
    # Each argument matched whole, and atomically: a line of many arguments that match more
    # than one way must not backtrack through every combination.
    (DELETE, False, rf"^rm\b(?!(?:\s+(?>(?:-\S*|{_BUILD_OUTPUT})(?=\s|$)))*\s*$)"),
    (DELETE, False, r"^git\s+clean\b"),
    (DELETE, False, r"^find\b.*\s(-delete|-exec\s+rm)\b"),
)

_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_KEYWORDS = frozenset({"if", "then", "else", "elif", "do", "while", "until", "!", "{", "time"})
# Programs that only run another one, with their options that take a value.
_WRAPPERS: dict[str, frozenset[str]] = {
    "sudo": frozenset({"-u", "-g", "-C", "-h", "-p", "-U", "-D"}),
    "doas": frozenset({"-u", "-C"}),
    "env": frozenset({"-u", "-C", "--unset", "--chdir"}),
    "nice": frozenset({"-n", "--adjustment"}),
    "ionice": frozenset({"-c", "-n", "-p"}),
    "timeout": frozenset({"-s", "-k", "--signal", "--kill-after"}),
    "xargs": frozenset({"-n", "-I", "-L", "-P", "-d", "-E", "-s", "-a"}),
    "stdbuf": frozenset({"-i", "-o", "-e"}),
    "nohup": frozenset(),
    "time": frozenset(),
    "command": frozenset(),
    "builtin": frozenset(),
    "exec": frozenset({"-a"}),
    "setsid": frozenset(),
}
_SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh"})
_GIT_OPTIONS_WITH_VALUE = frozenset({"-C", "-c", "--git-dir", "--work-tree", "--namespace"})
# How deep `sh -c "sh -c '…'"` is followed; deeper is matched as it stands.
_MAX_DEPTH = 4


@dataclass(frozen=True)
class Rule:
    pattern: re.Pattern[str]
    why: str
    network: bool


@dataclass(frozen=True)
class Risk:
    """Why a command needs approval, and whether approving it turns the network on for it."""

    reasons: tuple[str, ...]
    network: bool


class ApprovalRules:
    """The patterns in force: the defaults, the operator's own, or none (approvals off)."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = tuple(rules)

    @classmethod
    def from_setting(cls, patterns: Sequence[str] | None) -> ApprovalRules:
        """None: the defaults; empty: approvals off; else the operator's patterns, each a
        regular expression, `net:` before one that turns the network on when approved."""
        if patterns is None:
            return cls([Rule(re.compile(p), why, net) for why, net, p in DEFAULT_RULES])
        rules = []
        for text in patterns:
            network = text.startswith("net:")
            rules.append(Rule(re.compile(text.removeprefix("net:")), CUSTOM, network))
        return cls(rules)

    def check(self, command: str) -> Risk | None:
        """Why `command` needs approval, or None when it may run without."""
        reasons: list[str] = []
        network = False
        for simple in simple_commands(command):
            for rule in self.rules:
                if rule.pattern.search(simple):
                    if rule.why not in reasons:
                        reasons.append(rule.why)
                    network = network or rule.network
        return Risk(tuple(reasons), network) if reasons else None


def simple_commands(line: str, depth: int = 0) -> list[str]:
    """Every simple command of a shell command line, normalised (see the module docstring)."""
    found: list[str] = []
    for part in _split(line, found, depth):
        words = _words(part)
        inner = _inner_line(words)
        if inner is not None and depth < _MAX_DEPTH:
            found.extend(simple_commands(inner, depth + 1))
        elif words:
            found.append(" ".join(words))
    return found


def _split(line: str, found: list[str], depth: int) -> list[str]:
    """`line` cut at the shell's control operators outside quotes; the commands of `$(…)` and
    backticks go to `found` (normalised) as they are met."""
    parts: list[str] = []
    current: list[str] = []
    quote: str | None = None
    i = 0
    while i < len(line):
        char = line[i]
        if quote == "'":
            quote = None if char == "'" else quote
            current.append(char)
            i += 1
        elif char == "\\":
            current.append(line[i : i + 2])
            i += 2
        elif char == "`" or line.startswith("$(", i):
            inner, i = _substitution(line, i)
            if depth < _MAX_DEPTH:
                found.extend(simple_commands(inner, depth + 1))
            current.append(" _ ")
        elif quote == '"':
            quote = None if char == '"' else quote
            current.append(char)
            i += 1
        elif char in "'\"":
            quote = char
            current.append(char)
            i += 1
        elif char == "#" and (not current or current[-1].isspace()):
            end = line.find("\n", i)
            i = len(line) if end < 0 else end
        elif char in ";&|\n()":
            parts.append("".join(current))
            current = []
            i += 1
        else:
            current.append(char)
            i += 1
    parts.append("".join(current))
    return [part for part in parts if part.strip()]


def _substitution(line: str, start: int) -> tuple[str, int]:
    """The text inside the `$(…)` or backticks at `start`, and the index after it."""
    if line[start] == "`":
        end = start + 1
        while end < len(line) and line[end] != "`":
            end += 2 if line[end] == "\\" else 1
        return line[start + 1 : end], end + 1
    depth, end, quote = 1, start + 2, None
    while end < len(line) and depth:
        char = line[end]
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "\\":
            end += 1
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        end += 1
    return line[start + 2 : end - 1 if not depth else end], end


def _words(part: str) -> list[str]:
    try:
        words = shlex.split(part, posix=True)
    except ValueError:  # unbalanced quotes: the shell would refuse it; match it plainly
        words = part.replace('"', " ").replace("'", " ").split()
    words = _unwrapped(words)
    if words:
        words[0] = os.path.basename(words[0]) or words[0]
    if words and words[0] == "git":
        words = ["git", *_git_subcommand(words[1:])]
    return words


def _unwrapped(words: list[str]) -> list[str]:
    """`words` without leading assignments, keywords and wrappers (with their options)."""
    words = list(words)
    while words:
        first = words[0]
        name = os.path.basename(first)
        if _ASSIGNMENT.match(first) or first in _KEYWORDS:
            words.pop(0)
        elif name == "command" and words[1:2] in (["-v"], ["-V"]):
            return []  # `command -v curl` only asks where curl is
        elif name in _WRAPPERS:
            words.pop(0)
            takes_value = _WRAPPERS[name]
            while words and (words[0].startswith("-") or _ASSIGNMENT.match(words[0])):
                option = words.pop(0)
                if option in takes_value and words:
                    words.pop(0)
            if name == "timeout" and words:
                words.pop(0)  # the duration
        else:
            break
    return words


def _git_subcommand(args: list[str]) -> list[str]:
    """git's arguments from its subcommand on: `git -C dir -c k=v push` is `git push`."""
    while args and args[0].startswith("-"):
        option = args.pop(0)
        if option in _GIT_OPTIONS_WITH_VALUE and args:
            args.pop(0)
    return args


def _inner_line(words: list[str]) -> str | None:
    """The command line a shell (`sh -c '…'`) or `eval` runs, when `words` is one."""
    if not words:
        return None
    if words[0] == "eval":
        return " ".join(words[1:])
    if words[0] in _SHELLS:
        for index, word in enumerate(words[1:], start=1):
            if word.startswith("-") and "c" in word.lstrip("-") and not word.startswith("--"):
                return words[index + 1] if index + 1 < len(words) else ""
            if not word.startswith("-"):
                break
    return None
