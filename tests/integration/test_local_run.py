"""`make run` (`python -m sandbox.local_run`) as a person meets it: it stops on Ctrl-C even when
started with SIGINT ignored, its logs are clean, its demo channels get their policies, and a
restart keeps the sandbox's threads and Restate's sessions together until a reset clears both;
a fresh sandbox workspace has the thread seeded in #general for trying how the agent joins one.

Each test starts its own run in a temporary work folder, every port left to the OS.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import psutil

from sandbox.local_run import DEMO_POLICIES, RUN_FILE
from sandbox.run_ports import PORTS
from sandbox.stack import ROOT
from tests.integration.harness import eventually

# What a developer's shell may carry that would point the run elsewhere than the sandbox.
FOREIGN = ("SLACK_", "OPENAI_", "SANDBOX_", "CHANNEL_", "RESTATE_", "DASHBOARD_", "BOT_")
FOREIGN += ("AGENT_", "GITHUB_", "WORKSPACES_", "DEFAULT_", "ALLOWED_", "READY_FILE", "LOG_")


@dataclass
class Run:
    proc: subprocess.Popen[bytes]
    workdir: Path

    @property
    def output(self) -> str:
        return (self.workdir / "local_run.out").read_text()

    @property
    def urls(self) -> dict[str, str]:
        return dict(json.loads((self.workdir / RUN_FILE).read_text()))

    def children(self) -> list[psutil.Process]:
        return psutil.Process(self.proc.pid).children(recursive=True)


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN)}
    return env | {spec.env: "0" for spec in PORTS} | extra


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _stop(run: Run) -> None:
    """Stop the run and whatever it started, also when the test failed half-way."""
    if run.proc.poll() is None:
        children = run.children()
        run.proc.terminate()
        try:
            run.proc.wait(60)
        except subprocess.TimeoutExpired:
            run.proc.kill()
            run.proc.wait(10)
        _, alive = psutil.wait_procs(children, timeout=10)
        for child in alive:
            child.kill()


@contextmanager
def local_run(workdir: Path, *args: str, ignore_sigint: bool = False, **env: str) -> Iterator[Run]:
    """`python -m sandbox.local_run` in `workdir`, until its URLs are written; stopped on exit."""
    argv = [sys.executable, "-m", "sandbox.local_run", "--workdir", str(workdir)]
    argv += ["--env-file", str(workdir / "absent.env"), *args]
    with (workdir / "local_run.out").open("ab") as out:
        proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=_env(env),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=_ignore_sigint if ignore_sigint else None,
        )
    run = Run(proc, workdir)
    try:
        eventually(lambda: _ready(run), 120, "make run to print its URLs")
        yield run
    finally:
        _stop(run)


def _module(process: psutil.Process) -> str | None:
    """The module a `python -m MODULE` child runs (None for the Restate server)."""
    argv = process.cmdline()
    return argv[argv.index("-m") + 1] if "-m" in argv[:-1] else None


def _ready(run: Run) -> bool:
    if run.proc.poll() is not None:
        raise AssertionError(f"local_run exited with {run.proc.returncode}:\n{run.output}")
    return (run.workdir / RUN_FILE).exists()


def test_sigint_stops_a_run_started_with_sigint_ignored_and_every_process_it_started(
    tmp_path: Path,
) -> None:
    with local_run(tmp_path, ignore_sigint=True) as run:
        children = run.children()
        assert {_module(c) for c in children} >= {"sandbox", "restate_app", "bot"}
        run.proc.send_signal(signal.SIGINT)
        assert run.proc.wait(60) == 0
        _, alive = psutil.wait_procs(children, timeout=30)
        assert alive == []
        assert not (tmp_path / RUN_FILE).exists()


def test_the_logs_are_plain_text_and_bolt_has_nothing_to_warn_about(tmp_path: Path) -> None:
    with local_run(tmp_path) as run:
        bot = next(c for c in run.children() if _module(c) == "bot")
        assert bot.environ()["CHANNEL_POLICIES"] == DEMO_POLICIES
        assert "Restate UI:" in run.output
        assert "#steer" in run.output
        assert "mention @agent in a reply there and it reads the thread first" in run.output
        with httpx.Client(timeout=30) as http:
            [seeded] = _general(http, run.urls)
        assert (seeded["user"], seeded["reply_count"]) == ("U0BOB", 2)
    assert "\x1b[" not in (tmp_path / "restate.log").read_text()
    bot_log = (tmp_path / "bot.log").read_text()
    assert "bot_ready" in bot_log
    assert "will be unused" not in bot_log


def _mention(http: httpx.Client, urls: dict[str, str]) -> str:
    """Alice asks in #general; the model answers at once (no tools). Returns the thread's ts."""
    script = {"responses": [{"text": "Nothing to change here."}]}
    http.post(urls["model"].removesuffix("/v1") + "/_model/script", json=script)
    body = {"channel": "C0GENERAL", "user": "U0ALICE", "text": "<@U0BOT> check the tests"}
    resp = http.post(urls["workspace"] + "/_sandbox/messages", json=body)
    resp.raise_for_status()
    return str(resp.json()["ts"])


def _session(http: httpx.Client, urls: dict[str, str], ts: str) -> dict[str, Any]:
    key = quote(f"T0SANDBOX:C0GENERAL:{ts}", safe="")
    resp = http.post(f"{urls['ingress']}/CodingAgent/{key}/status")
    resp.raise_for_status()
    return dict(resp.json())


def _thread(http: httpx.Client, urls: dict[str, str], ts: str) -> list[dict[str, Any]]:
    params = {"channel": "C0GENERAL", "thread_ts": ts}
    resp = http.get(urls["workspace"] + "/_sandbox/messages", params=params)
    resp.raise_for_status()
    return list(resp.json()["messages"])


def _general(http: httpx.Client, urls: dict[str, str]) -> list[dict[str, Any]]:
    """#general's top-level messages."""
    resp = http.get(urls["workspace"] + "/_sandbox/messages", params={"channel": "C0GENERAL"})
    resp.raise_for_status()
    return list(resp.json()["messages"])


def _sessions(http: httpx.Client, urls: dict[str, str]) -> set[str]:
    query = "SELECT DISTINCT service_key FROM state WHERE service_name = 'CodingAgent'"
    headers = {"Accept": "application/json"}
    resp = http.post(urls["admin"] + "/query", json={"query": query}, headers=headers)
    resp.raise_for_status()
    return {row["service_key"] for row in resp.json()["rows"]}


def _answered(http: httpx.Client, urls: dict[str, str], ts: str) -> bool:
    status = _session(http, urls, ts)
    replies = [m for m in _thread(http, urls, ts) if m["is_reply"]]
    done = status["state"] == "idle" and status["tasks_started"] == 1
    return done and any("Nothing to change" in m["text"] for m in replies)


def test_a_restart_keeps_the_thread_and_its_session_together_until_a_reset(
    tmp_path: Path,
) -> None:
    with httpx.Client(timeout=30) as http:
        with local_run(tmp_path) as run:
            ts = _mention(http, run.urls)
            eventually(lambda: _answered(http, run.urls, ts), 60, "the answer in the thread")
            first = _thread(http, run.urls, ts)
        with local_run(tmp_path) as run:
            assert [m["text"] for m in _thread(http, run.urls, ts)] == [m["text"] for m in first]
            # The thread a fresh workspace is seeded with, and alice's: nothing seeded twice.
            assert [m["user"] for m in _general(http, run.urls)] == ["U0BOB", "U0ALICE"]
            status = _session(http, run.urls, ts)
            assert status["tasks_started"] == 1
            assert status["turns"] >= 2
            assert _sessions(http, run.urls) == {f"T0SANDBOX:C0GENERAL:{ts}"}
            assert "Reset:" not in run.output
        with local_run(tmp_path, SANDBOX_RESET="1") as run:
            assert "Reset: Restate's sessions, the sandbox Slack workspace" in run.output
            assert _thread(http, run.urls, ts) == []
            assert [m["user"] for m in _general(http, run.urls)] == ["U0BOB"]
            assert _sessions(http, run.urls) == set()
