"""The ports `make run` gives what it starts: the same ones every time, so a bookmarked page,
a link stored in a thread and Restate's record of where the services listen survive a restart.

Each comes from its environment variable (or `.env`), else its default: Restate's own ports
for Restate (its CLI and docs assume them), the bot's own defaults for the bot. A port that
something else holds falls back to a free one, with a line saying so; 0 lets the OS choose.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from dataclasses import dataclass

from sandbox.stack import StackError, free_port


@dataclass(frozen=True)
class PortSpec:
    env: str
    default: int
    what: str


PORTS: tuple[PortSpec, ...] = (
    PortSpec("SANDBOX_PORT", 3100, "the sandbox Slack workspace"),
    PortSpec("SANDBOX_GITHUB_PORT", 3101, "the sandbox GitHub"),
    PortSpec("BOT_PORT", 3000, "the bot's Slack endpoint"),
    PortSpec("DASHBOARD_PORT", 3001, "the ops dashboard"),
    PortSpec("RESTATE_APP_PORT", 9080, "the services (restate_app)"),
    PortSpec("RESTATE_ADMIN_PORT", 9070, "Restate's admin API and UI"),
    PortSpec("RESTATE_INGRESS_PORT", 8080, "Restate's ingress"),
    PortSpec("RESTATE_NODE_PORT", 5122, "Restate's node port"),
)


def port_is_free(port: int) -> bool:
    """Can a server listen on this loopback port now? A socket of the last run still in
    TIME_WAIT does not count: every server here binds with SO_REUSEADDR, as this check does."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _asked(env: Mapping[str, str]) -> dict[str, str]:
    """What the environment (or `.env`) asks for; spelled out one by one so that the check
    that every variable the code reads is documented (tests/deploy) finds each of them."""
    return {
        "SANDBOX_PORT": env.get("SANDBOX_PORT", ""),
        "SANDBOX_GITHUB_PORT": env.get("SANDBOX_GITHUB_PORT", ""),
        "BOT_PORT": env.get("BOT_PORT", ""),
        "DASHBOARD_PORT": env.get("DASHBOARD_PORT", ""),
        "RESTATE_APP_PORT": env.get("RESTATE_APP_PORT", ""),
        "RESTATE_ADMIN_PORT": env.get("RESTATE_ADMIN_PORT", ""),
        "RESTATE_INGRESS_PORT": env.get("RESTATE_INGRESS_PORT", ""),
        "RESTATE_NODE_PORT": env.get("RESTATE_NODE_PORT", ""),
    }


def _wanted(spec: PortSpec, asked: Mapping[str, str]) -> int:
    raw = asked.get(spec.env, "").strip()
    if not raw:
        return spec.default
    if not raw.isdigit() or int(raw) > 65535:
        raise StackError(f"{spec.env}={raw!r} is not a port number (0 lets the OS choose)")
    return int(raw)


def choose_ports(env: Mapping[str, str]) -> tuple[dict[str, int], list[str]]:
    """The port of each of `PORTS` by its variable's name, and a line for each that fell back."""
    asked = _asked(env)
    chosen: dict[str, int] = {}
    notes: list[str] = []
    for spec in PORTS:
        port = _wanted(spec, asked)
        if port and not port_is_free(port):
            fallback = free_port()
            notes.append(
                f"Port {port} ({spec.env}, {spec.what}) is taken: using {fallback} this time."
            )
            port = fallback
        chosen[spec.env] = port
    return chosen, notes
