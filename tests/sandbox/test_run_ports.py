"""`make run`'s choices before anything starts: its ports (the same each time, a free one when
something else holds one), the demo channels' policies, and what a reset clears."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.rules import parse_policies
from sandbox.local_run import DEMO_POLICIES, SLACK_STATE, reset, unkept_threads
from sandbox.run_ports import PORTS, choose_ports, port_is_free
from sandbox.slack_state import DEFAULT_CHANNELS
from sandbox.stack import StackError, free_port

ALL_ZERO = {spec.env: "0" for spec in PORTS}


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port something else listens on (chosen by the OS)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_zero_lets_the_os_choose_and_says_nothing() -> None:
    assert choose_ports(ALL_ZERO) == ({name: 0 for name in ALL_ZERO}, [])


def test_a_free_configured_port_is_kept() -> None:
    port = free_port()
    chosen, notes = choose_ports(ALL_ZERO | {"SANDBOX_PORT": str(port)})
    assert chosen["SANDBOX_PORT"] == port
    assert notes == []


def test_a_taken_port_falls_back_to_a_free_one_with_a_line_saying_so(held_port: int) -> None:
    chosen, notes = choose_ports(ALL_ZERO | {"DASHBOARD_PORT": str(held_port)})
    fallback = chosen["DASHBOARD_PORT"]
    assert fallback not in (0, held_port)
    assert port_is_free(fallback)
    assert notes == [
        f"Port {held_port} (DASHBOARD_PORT, the ops dashboard) is taken: "
        f"using {fallback} this time."
    ]


def test_every_page_a_person_opens_has_a_fixed_default_port() -> None:
    defaults = {spec.env: spec.default for spec in PORTS}
    assert defaults["SANDBOX_PORT"]
    assert defaults["DASHBOARD_PORT"]
    assert defaults["RESTATE_ADMIN_PORT"] == 9070  # Restate's own, where its UI is at /ui
    assert len(set(defaults.values())) == len(defaults)


@pytest.mark.parametrize("value", ["web", "-1", "70000"])
def test_a_port_that_is_not_a_number_stops_the_start_naming_it(value: str) -> None:
    with pytest.raises(StackError, match="RESTATE_INGRESS_PORT"):
        choose_ports(ALL_ZERO | {"RESTATE_INGRESS_PORT": value})


def test_the_demo_policies_parse_and_name_the_sandbox_channels_they_describe() -> None:
    policies = parse_policies(DEMO_POLICIES)
    names = {c.id: c.name for c in DEFAULT_CHANNELS}
    assert {names[i]: p.policy for i, p in policies.items()} == {
        "queue-mode": "queue",
        "burst": "interrupt",
        "steer": "steer",
    }
    assert policies["C0BURST"].debounce_seconds > 0


def test_a_reset_clears_restate_the_sandbox_workspace_and_its_github_and_nothing_else(
    tmp_path: Path,
) -> None:
    for folder in ("restate-data/vm", "github/sandbox/demo.git", "demo-repo"):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / SLACK_STATE).write_text("{}")
    (tmp_path / "bot.log").write_text("kept")
    assert reset(tmp_path).startswith("Reset: Restate's sessions, the sandbox Slack workspace")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bot.log", "demo-repo"]


def test_restate_sessions_without_kept_sandbox_threads_are_pointed_out(tmp_path: Path) -> None:
    assert unkept_threads(tmp_path) is None
    (tmp_path / "restate-data").mkdir()
    assert "SANDBOX_RESET=1 make run" in (unkept_threads(tmp_path) or "")
    (tmp_path / SLACK_STATE).write_text("{}")
    assert unkept_threads(tmp_path) is None
