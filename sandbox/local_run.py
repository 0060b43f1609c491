"""`make run`: the whole product on this machine, with the sandbox where no credentials are set.

Without `SLACK_BOT_TOKEN` the sandbox Slack workspace stands in for Slack; without
`OPENAI_API_KEY` the offline demo model stands in for the model provider. Ctrl-C stops all.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import sys
import urllib.request
from pathlib import Path

from dotenv import dotenv_values

from sandbox.stack import ROOT, Stack, StackError


def _configured() -> dict[str, str]:
    values = {k: v for k, v in dotenv_values(ROOT / ".env").items() if v}
    values.update({k: v for k, v in os.environ.items() if v})
    return values


def _set_bot_url(workspace_url: str, bot_events_url: str) -> None:
    body = json.dumps({"bot_url": bot_events_url}).encode()
    req = urllib.request.Request(  # noqa: S310 (loopback only)
        workspace_url + "/_sandbox/config",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=5):  # noqa: S310
        pass


def start(stack: Stack, config: dict[str, str]) -> list[str]:
    """Start every process; returns the lines to show the person who ran it."""
    fake_slack = not config.get("SLACK_BOT_TOKEN")
    fake_model = not config.get("OPENAI_API_KEY")
    if fake_slack:
        stack.env.update(
            SLACK_BOT_TOKEN="xoxb-sandbox-" + secrets.token_hex(8),
            SLACK_SIGNING_SECRET=secrets.token_hex(16),
        )
        stack.env.pop("SLACK_APP_TOKEN", None)
    if fake_model:
        stack.env.update(OPENAI_API_KEY="sk-offline-demo", OPENAI_MODEL="offline-demo")
    stack.start_restate()
    lines = [f"Restate admin API:   {stack.urls['admin']}"]
    if fake_slack or fake_model:
        stack.env.update(
            SANDBOX_BOT_TOKEN=stack.env.get("SLACK_BOT_TOKEN", ""),
            SANDBOX_SIGNING_SECRET=stack.env.get("SLACK_SIGNING_SECRET", ""),
        )
        for name in ("SANDBOX_CHANNELS", "SANDBOX_SLACK_LIMITS"):
            if config.get(name):
                stack.env[name] = config[name]
        stack.start_sandbox()
        if fake_slack:
            stack.env["SLACK_API_URL"] = stack.urls["slack_api"]
        if fake_model:
            stack.env["OPENAI_BASE_URL"] = stack.urls["model"]
        if not (config.get("GITHUB_TOKEN") or config.get("AGENT_REPO")):
            # The demo repository's remote is the sandbox GitHub's: its pull requests too.
            github = stack.sandbox_env()
            stack.env.update({k: github[k] for k in ("GITHUB_API_URL", "GITHUB_TOKEN")})
            lines.append(f"Sandbox GitHub API (pull requests): {stack.urls['github_api']}")
    for name in ("AGENT_REPO", "WORKSPACES_DIR"):
        if config.get(name):
            stack.env[name] = config[name]
    stack.start_restate_app()
    lines.append(f"Repository sessions work on: {stack.env['AGENT_REPO']}")
    for name in ("DASHBOARD_HOST", "DASHBOARD_PORT"):
        if config.get(name):
            stack.env[name] = config[name]
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


def _exit_once(*_: object) -> None:
    """Leave through `finally` on the first signal; later ones must not cut the stop short."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(0)


def main() -> None:
    workdir = ROOT / ".run"
    workdir.mkdir(exist_ok=True)
    stack = Stack(workdir=Path(workdir), env={"LOG_FORMAT": "console"})
    signal.signal(signal.SIGTERM, _exit_once)
    try:
        lines = start(stack, _configured())
        print("\n".join(["", *lines, f"Logs: {workdir}/*.log", "Press Ctrl-C to stop.", ""]))
        signal.pause()
    except StackError as exc:
        print(f"could not start: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    finally:
        print("stopping…", file=sys.stderr)
        stack.stop()


if __name__ == "__main__":
    main()
