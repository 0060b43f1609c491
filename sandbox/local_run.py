"""`make run`: the whole product on this machine, with the sandbox where no credentials are set.

Without `SLACK_BOT_TOKEN` the sandbox Slack workspace stands in for Slack; without
`OPENAI_API_KEY` the offline demo model stands in for the model provider. Everything lives
under `.run/`, where Restate's data and the sandbox workspace's state survive a restart
together; `SANDBOX_RESET=1` (or `--reset`) starts both empty, but for the thread a fresh
sandbox workspace seeds in #general (sandbox/slack_seed.py). Ports stay the same from one
start to the next (sandbox/run_ports.py). Ctrl-C (SIGINT) or SIGTERM stops all.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import sys
import urllib.request
from pathlib import Path

from dotenv import dotenv_values

from sandbox.run_ports import choose_ports
from sandbox.stack import ROOT, Stack, StackError, free_port

# The sandbox's demo channels behave as their purposes say (sandbox/slack_state.py).
DEMO_POLICIES = "C0QUEUE=queue,C0BURST=interrupt/3,C0STEER=steer"
SLACK_STATE = "slack-state.json"
# Where this run's URLs are, once everything is up (for tooling; removed at the stop).
RUN_FILE = "run.json"
# What sessions leave behind under the work folder: a reset clears it all together, so the
# sandbox workspace never shows threads Restate has forgotten, nor Restate sessions whose
# threads are gone.
SESSION_DATA = ("restate-data", SLACK_STATE, "github")
YES = ("1", "true", "yes", "on")


def _configured(env_file: Path) -> dict[str, str]:
    values = {k: v for k, v in dotenv_values(env_file).items() if v}
    values.update({k: v for k, v in os.environ.items() if v})
    return values


def reset(workdir: Path) -> str:
    """Remove Restate's data, the sandbox workspace's and the sandbox GitHub's; say so."""
    for name in SESSION_DATA:
        path = workdir / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    return (
        "Reset: Restate's sessions, the sandbox Slack workspace (but for the thread it seeds in "
        "#general) and the sandbox GitHub start empty."
    )


def unkept_threads(workdir: Path) -> str | None:
    """A line when Restate kept sessions from a run whose sandbox threads were not kept (a run
    from before the workspace kept its state): their links in the dashboard lead nowhere."""
    if (workdir / "restate-data").exists() and not (workdir / SLACK_STATE).exists():
        return (
            "Restate kept sessions from an earlier run whose sandbox threads were not kept: "
            "`SANDBOX_RESET=1 make run` starts both empty."
        )
    return None


def _set_bot_url(workspace_url: str, bot_events_url: str) -> None:
    body = json.dumps({"bot_url": bot_events_url}).encode()
    req = urllib.request.Request(  # noqa: S310 (loopback only)
        workspace_url + "/_sandbox/config",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=5):  # noqa: S310
        pass


def sandbox_args(workdir: Path, ports: dict[str, int]) -> list[str]:
    """The sandbox process's arguments: this run's ports, the workspace's state kept under
    `workdir`, and in a fresh workspace a thread already under way to try joining one."""
    args = ["--workspace-port", str(ports["SANDBOX_PORT"])]
    args += ["--github-port", str(ports["SANDBOX_GITHUB_PORT"])]
    args += ["--state-file", str(workdir / SLACK_STATE), "--seed-thread"]
    return args


def _start_sandbox(
    stack: Stack, config: dict[str, str], ports: dict[str, int], fake_slack: bool
) -> list[str]:
    """The sandbox workspace, model and GitHub, with the workspace's state kept on disk."""
    stack.env.update(
        SANDBOX_BOT_TOKEN=stack.env.get("SLACK_BOT_TOKEN", ""),
        SANDBOX_SIGNING_SECRET=stack.env.get("SLACK_SIGNING_SECRET", ""),
    )
    for name in ("SANDBOX_CHANNELS", "SANDBOX_SLACK_LIMITS"):
        if config.get(name):
            stack.env[name] = config[name]
    stack.start_sandbox(extra_args=sandbox_args(stack.workdir, ports))
    lines = []
    if fake_slack:
        stack.env["SLACK_API_URL"] = stack.urls["slack_api"]
        lines.append(
            "#general has a thread already under way (bob's failing build): mention @agent in "
            "a reply there and it reads the thread first"
        )
        if not config.get("CHANNEL_POLICIES"):
            stack.env["CHANNEL_POLICIES"] = DEMO_POLICIES
            lines.append("Channels: #queue-mode queues replies, #burst debounces, #steer steers")
    if not (config.get("GITHUB_TOKEN") or config.get("AGENT_REPO")):
        # The demo repository's remote is the sandbox GitHub's: its pull requests too.
        github = stack.sandbox_env()
        stack.env.update({k: github[k] for k in ("GITHUB_API_URL", "GITHUB_TOKEN")})
        lines.append(f"Sandbox GitHub API (pull requests): {stack.urls['github_api']}")
    return lines


def _stand_in_credentials(stack: Stack, fake_slack: bool, fake_model: bool) -> None:
    if fake_slack:
        stack.env.update(
            SLACK_BOT_TOKEN="xoxb-sandbox-" + secrets.token_hex(8),
            SLACK_SIGNING_SECRET=secrets.token_hex(16),
        )
        stack.env.pop("SLACK_APP_TOKEN", None)
    if fake_model:
        stack.env.update(OPENAI_API_KEY="sk-offline-demo", OPENAI_MODEL="offline-demo")


def start(stack: Stack, config: dict[str, str], ports: dict[str, int]) -> list[str]:
    """Start every process; returns the lines to show the person who ran it."""
    fake_slack = not config.get("SLACK_BOT_TOKEN")
    fake_model = not config.get("OPENAI_API_KEY")
    _stand_in_credentials(stack, fake_slack, fake_model)
    # Restate cannot report a port-0 bind: "let the OS choose" is a port it just handed out.
    stack.restate_ports = {
        name: ports[f"RESTATE_{name.upper()}_PORT"] or free_port()
        for name in ("ingress", "admin", "node")
    }
    stack.start_restate()
    lines = [f"Restate UI:          {stack.urls['admin']}/ui"]
    if fake_slack or fake_model:
        lines += _start_sandbox(stack, config, ports, fake_slack)
        if fake_model:
            stack.env["OPENAI_BASE_URL"] = stack.urls["model"]
    for name in ("AGENT_REPO", "WORKSPACES_DIR", "DASHBOARD_HOST"):
        if config.get(name):
            stack.env[name] = config[name]
    for name in ("RESTATE_APP_PORT", "BOT_PORT", "DASHBOARD_PORT"):
        stack.env[name] = str(ports[name])
    stack.start_restate_app()
    lines.append(f"Repository sessions work on: {stack.env['AGENT_REPO']}")
    stack.start_bot()
    lines.insert(0, f"Ops dashboard:       {stack.urls['dashboard']}/")
    if fake_slack:
        _set_bot_url(stack.urls["workspace"], stack.urls["bot_events"])
        lines.insert(0, f"Sandbox Slack workspace, open it to chat: {stack.urls['workspace']}/")
    else:
        lines.append(f"Slack request URL (expose it publicly): {stack.urls['bot_events']}")
    if fake_model:
        lines.append("Model: the offline demo model (set OPENAI_API_KEY in .env for a real one)")
    return lines


def _write_run_file(path: Path, stack: Stack) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(stack.urls))
    os.replace(tmp, path)


def _ignore_stop_signals() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)


def _exit_once(*_: object) -> None:
    """Leave through `finally` on the first signal; later ones must not cut the stop short."""
    _ignore_stop_signals()
    sys.exit(0)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sandbox.local_run", description=__doc__)
    parser.add_argument("--workdir", type=Path, default=ROOT / ".run", help="default: .run")
    parser.add_argument("--env-file", type=Path, default=ROOT / ".env", help="default: .env")
    parser.add_argument(
        "--reset",
        action="store_true",
        help="start with no sessions: clear Restate's data and the sandbox's (SANDBOX_RESET=1)",
    )
    return parser.parse_args(argv)


def _say(*lines: str) -> None:
    if lines:
        print("\n".join(lines), flush=True)


def main(argv: list[str] | None = None) -> None:
    # Both signals get the handler, SIGINT explicitly: a process started with SIGINT ignored
    # (a background job, nohup, some IDE and CI runners) inherits that, and Ctrl-C would do
    # nothing.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _exit_once)
    args = _parse_args(argv)
    workdir: Path = args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    env = _configured(args.env_file)
    if args.reset or env.get("SANDBOX_RESET", "").lower() in YES:
        _say(reset(workdir))
    elif not env.get("SLACK_BOT_TOKEN") and (hint := unkept_threads(workdir)):
        _say(hint)
    stack = Stack(workdir=workdir, env={"LOG_FORMAT": "console"})
    run_file = workdir / RUN_FILE
    try:
        ports, fallbacks = choose_ports(env)
        _say(*fallbacks)
        lines = start(stack, env, ports)
        _write_run_file(run_file, stack)
        _say("", *lines, f"Logs: {workdir}/*.log", "Press Ctrl-C to stop.", "")
        while True:
            signal.pause()
    except StackError as exc:
        print(f"could not start: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    finally:
        _ignore_stop_signals()
        run_file.unlink(missing_ok=True)
        print("stopping…", file=sys.stderr)
        stack.stop()


if __name__ == "__main__":
    main()
