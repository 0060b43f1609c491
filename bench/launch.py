"""Starts the product, the sandbox and the bare-pattern floor for a benchmark run.

`BenchStack` is the integration tests' `Stack` plus the floor app and, on request, every
Python process of the product run under pyinstrument (reports written when it stops).
"""

from __future__ import annotations

import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path

from sandbox.stack import Proc, Stack

# Processes whose hot paths the profiler looks at (the sandbox is the harness, not the product).
PROFILED = ("restate_app", "bot")


@dataclass
class BenchStack(Stack):
    """The whole stack on loopback; `profile_dir` runs the product under pyinstrument."""

    profile_dir: Path | None = None
    secret: str = field(default_factory=lambda: secrets.token_hex(16))

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> Proc:
        if self.profile_dir is not None and name in PROFILED and argv[1:2] == ["-m"]:
            report = self.profile_dir / f"{name}.pyinstrument.txt"
            wrap = ["-m", "pyinstrument", "-r", "text", "-o", str(report), "-i", "0.002"]
            argv = [argv[0], *wrap, *argv[1:]]
        return super()._spawn(name, argv, env)

    def stop(self) -> None:
        """As `Stack.stop`, but a profiled process gets time to write its report first."""
        if self.profile_dir is not None:
            for name in PROFILED:
                if name in self.procs:
                    self.procs.pop(name).stop(timeout=300)
        super().stop()

    def start_floor(self) -> None:
        """The bare-pattern app (`bench.floor_app`), registered on the same Restate server."""
        ready = self.workdir / "floor.ready"
        ready.unlink(missing_ok=True)
        env = {
            **self.env,
            "RESTATE_ADMIN_URL": self.urls["admin"],
            "OPENAI_BASE_URL": self.urls["model"],
            "READY_FILE": str(ready),
        }
        self._spawn("floor", [sys.executable, "-m", "bench.floor_app"], env)
        self._ready("floor", ready)


def start(workdir: Path, channels: list[str], profile_dir: Path | None = None) -> BenchStack:
    """Restate, the sandbox (quiet, exact stream close times, the extra `channels`),
    restate_app, the bot and the floor."""
    token = "xoxb-bench-" + secrets.token_hex(8)
    stack = BenchStack(workdir=workdir, profile_dir=profile_dir)
    stack.env.update(
        SLACK_BOT_TOKEN=token,
        SLACK_SIGNING_SECRET=stack.secret,
        SANDBOX_BOT_TOKEN=token,
        SANDBOX_SIGNING_SECRET=stack.secret,
        OPENAI_API_KEY="sk-bench",
        OPENAI_MODEL="offline-demo",
        DASHBOARD_PORT="0",
        # "Debounce off": a reply interrupts at once.
        DEFAULT_POLICY="interrupt",
        DEFAULT_DEBOUNCE_SECONDS="0",
        # The scale run streams hundreds of sessions at once; the limits that protect a real
        # team's model spend would queue them.
        MODEL_MAX_CONCURRENCY="0",
        RUNS_PER_USER_PER_HOUR="0",
        RUNS_PER_CHANNEL_PER_HOUR="0",
        SANDBOX_CHANNELS=",".join(f"{c}={c.lower()}" for c in channels),
        LOG_FORMAT="json",
        LOG_LEVEL="info",
    )
    try:
        stack.start_restate()
        sandbox_args = ["--log-level", "WARNING", "--model-cancel-on-disconnect"]
        stack.start_sandbox(0.05, [*sandbox_args, "--model-poll-interval", "0.25"])
        stack.env.update(stack.sandbox_env())
        stack.start_restate_app()
        stack.start_bot()
        stack.start_floor()
    except BaseException:
        stack.stop()
        raise
    return stack
