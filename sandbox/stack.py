"""Starts the whole product locally as child processes: Restate, the services, the bot, sandbox.

Used by `make run` and by the integration tests. Every process gets OS-chosen ports, logs to
its own file, and is stopped (by its own process id) when the stack stops.
"""

from __future__ import annotations

import json
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from sandbox.demo_repo import ensure_demo_repo
from sandbox.github_repos import demo_remote_path, ensure_bare_remote

ROOT = Path(__file__).resolve().parent.parent
RESTATE_SERVER = ROOT / "node_modules" / ".bin" / "restate-server"
_ARCH = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}


def native_server() -> Path:
    """The platform binary inside the npm package: its launcher is a Node process that a
    SIGKILL would orphan the server from, and a crash test must kill the server itself."""
    system = platform.system().lower()
    arch = _ARCH.get(platform.machine().lower(), platform.machine().lower())
    path = ROOT / "node_modules" / "@restatedev" / f"restate-server-{system}-{arch}" / "bin"
    native = path / "restate-server"
    return native if native.exists() else RESTATE_SERVER


class StackError(RuntimeError):
    pass


def free_port() -> int:
    """A port the OS has just handed out, for a program that cannot report a port-0 bind."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Any, timeout: float, what: str, interval: float = 0.05) -> Any:
    """Poll `predicate` until it returns something truthy, or fail naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise StackError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 (loopback only)
            return bool(resp.status < 300)
    except OSError:
        return False


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes]

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        if self.alive():
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self.log_file.close()

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        self.stop(signal.SIGKILL)


@dataclass
class Stack:
    """The running product; `env` is what every Python process of it sees."""

    workdir: Path
    env: dict[str, str] = field(default_factory=dict)
    procs: dict[str, Proc] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)
    quiet: bool = True
    restate_ports: dict[str, int] = field(default_factory=dict)
    workspaces: Path | None = None

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> Proc:
        log_path = self.workdir / f"{name}.log"
        log_file = log_path.open("ab")
        out: IO[bytes] | None = log_file if self.quiet else None
        popen = subprocess.Popen(  # noqa: S603 (argv built here, no shell)
            argv,
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=out,
            stderr=out if out is not None else None,
            stdin=subprocess.DEVNULL,
        )
        proc = Proc(name, popen, log_path, log_file)
        self.procs[name] = proc
        return proc

    def _ready(self, name: str, path: Path, timeout: float = 30.0) -> dict[str, Any]:
        proc = self.procs[name]

        def read() -> dict[str, Any] | None:
            if not proc.alive():
                raise StackError(f"{name} exited with {proc.popen.returncode}; see {proc.log_path}")
            return json.loads(path.read_text()) if path.exists() else None

        return dict(wait_for(read, timeout, f"{name} to be ready"))

    def start_restate(self, extra_env: dict[str, str] | None = None) -> None:
        if not RESTATE_SERVER.exists():
            raise StackError("restate-server is not installed: run `make install`")
        # A restart keeps the ports, so every client and the registration stay valid.
        ports = self.restate_ports or {k: free_port() for k in ("ingress", "admin", "node")}
        self.restate_ports = ports
        env = {
            "RESTATE_DISABLE_TELEMETRY": "true",
            "RESTATE_ROCKSDB_TOTAL_MEMORY_SIZE": "256MB",
            "RESTATE_LISTEN_MODE": "tcp",
            "RESTATE_INGRESS__BIND_ADDRESS": f"127.0.0.1:{ports['ingress']}",
            "RESTATE_ADMIN__BIND_ADDRESS": f"127.0.0.1:{ports['admin']}",
            "RESTATE_BIND_ADDRESS": f"127.0.0.1:{ports['node']}",
            "RESTATE_ADVERTISED_ADDRESS": f"http://127.0.0.1:{ports['node']}/",
            # A log file, not a terminal: Restate colours its log unless told not to, and it
            # does not heed NO_COLOR.
            "RESTATE_LOG_FORMAT": "compact",
            "RESTATE_LOG_DISABLE_ANSI_CODES": "true",
            **(extra_env or {}),
        }
        argv = [
            str(native_server()),
            "--no-logo",
            "--base-dir",
            str(self.workdir / "restate-data"),
            "--default-num-partitions",
            "4",
        ]
        self._spawn("restate", argv, env)
        self.urls["ingress"] = f"http://127.0.0.1:{ports['ingress']}"
        self.urls["admin"] = f"http://127.0.0.1:{ports['admin']}"
        wait_for(lambda: _http_ok(self.urls["admin"] + "/health"), 60, "the Restate admin API")
        wait_for(lambda: _http_ok(self.urls["ingress"] + "/restate/health"), 60, "Restate ingress")

    def start_sandbox(self, chunk_delay: float = 0.15, extra_args: Sequence[str] = ()) -> None:
        """The sandbox workspace, model and GitHub; its `SANDBOX_*` settings
        (`SANDBOX_SLACK_LIMITS`, `SANDBOX_CHANNELS`) come from this process's environment and
        `env`. Its GitHub serves the repositories under `github_root`, the demo's among them."""
        ready = self.workdir / "sandbox.ready"
        ready.unlink(missing_ok=True)
        self.env.setdefault("SANDBOX_GITHUB_TOKEN", "ghp_sandbox" + secrets.token_hex(16))
        argv = [sys.executable, "-m", "sandbox", "--ready-file", str(ready)]
        argv += ["--chunk-delay", str(chunk_delay), "--github-root", str(self.github_root)]
        self._spawn("sandbox", [*argv, *extra_args], self.env)
        info = self._ready("sandbox", ready)
        self.urls.update(
            workspace=info["workspace_url"], slack_api=info["api_url"], model=info["model_url"]
        )
        self.urls.update(github=info["github_url"], github_api=info["github_api_url"])

    @property
    def github_root(self) -> Path:
        return self.workdir / "github"

    def sandbox_env(self) -> dict[str, str]:
        """Point the product at the sandbox workspace, offline model and GitHub."""
        return {
            "SLACK_API_URL": self.urls["slack_api"],
            "OPENAI_BASE_URL": self.urls["model"],
            "GITHUB_API_URL": self.urls["github_api"],
            "GITHUB_TOKEN": self.env["SANDBOX_GITHUB_TOKEN"],
        }

    def workspace_env(self) -> dict[str, str]:
        """Where sessions' workspaces live, and the demo repository as the repository they
        work on, unless the environment (or `.env`) names one: its bare remote in the sandbox
        GitHub, which sessions clone from and push their branches to."""
        env = {"WORKSPACES_DIR": str(self._workspaces_dir())}
        if not (self.env.get("AGENT_REPO") or os.environ.get("AGENT_REPO")):
            demo = ensure_demo_repo(self.workdir / "demo-repo")
            remote = ensure_bare_remote(demo, demo_remote_path(self.github_root))
            env["AGENT_REPO"] = str(remote)
        return env

    def _workspaces_dir(self) -> Path:
        """Sandboxed commands run as an unprivileged uid that must be able to reach the
        workspaces: a test's private temporary folder would hide them, so they get a folder
        of their own under the system's temporary directory (removed by `stop`)."""
        if self.workspaces is None:
            self.workspaces = Path(tempfile.mkdtemp(prefix="agent-workspaces-"))
            self.workspaces.chmod(0o711)
        return self.workspaces

    def start_restate_app(self, name: str = "restate_app") -> None:
        ready = self.workdir / f"{name}.ready"
        ready.unlink(missing_ok=True)
        for key, value in self.workspace_env().items():
            self.env.setdefault(key, value)
        env = {
            **self.env,
            "RESTATE_ADMIN_URL": self.urls["admin"],
            "RESTATE_APP_PORT": self.env.get("RESTATE_APP_PORT", "0"),
            "READY_FILE": str(ready),
        }
        self._spawn(name, [sys.executable, "-m", "restate_app"], env)
        info = self._ready(name, ready)
        self.urls[name] = f"http://127.0.0.1:{info['port']}"
        # Keep the port, so a restart after a crash comes back at the registered address.
        self.env["RESTATE_APP_PORT"] = str(info["port"])

    def start_bot(self) -> None:
        ready = self.workdir / "bot.ready"
        ready.unlink(missing_ok=True)
        env = {
            **self.env,
            "RESTATE_INGRESS_URL": self.urls["ingress"],
            "BOT_HOST": "127.0.0.1",
            "BOT_PORT": self.env.get("BOT_PORT", "0"),
            "RESTATE_ADMIN_URL": self.urls["admin"],
            "DASHBOARD_HOST": self.env.get("DASHBOARD_HOST", "127.0.0.1"),
            "DASHBOARD_PORT": self.env.get("DASHBOARD_PORT", "0"),
            "READY_FILE": str(ready),
        }
        self._spawn("bot", [sys.executable, "-m", "bot"], env)
        info = self._ready("bot", ready)
        self.urls["bot"] = info["url"]
        self.urls["bot_events"] = info["url"] + "/slack/events"
        self.env["BOT_PORT"] = str(info["port"])
        self.urls["dashboard"] = info["dashboard_url"]

    def start_product(self, chunk_delay: float = 0.15) -> None:
        """After Restate: the sandbox, restate_app and the bot, wired to each other."""
        self.start_sandbox(chunk_delay=chunk_delay)
        self.env.update(self.sandbox_env())
        self.start_restate_app()
        self.start_bot()
        body = json.dumps({"bot_url": self.urls["bot_events"]}).encode()
        request = urllib.request.Request(  # noqa: S310 (loopback only)
            self.urls["workspace"] + "/_sandbox/config",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310
            pass

    def stop(self) -> None:
        """Stop every process this stack started, newest first."""
        for proc in reversed(list(self.procs.values())):
            proc.stop()
        self.procs.clear()
        if self.workspaces is not None:
            shutil.rmtree(self.workspaces, ignore_errors=True)
            self.workspaces = None
