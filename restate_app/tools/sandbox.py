"""How a command runs: the bubblewrap command line, the uid it runs as, its resource limits.

In bubblewrap the command sees the workspace read-write at `/workspace` (its `.git` read-only,
so nothing it does can plant configuration that our own git would act on), a private `/tmp`,
and nothing else writable: the system's `/usr` and a minimal `/etc` read-only, its own
`/proc` and `/dev`, no network unless the operator turns it on, every namespace unshared and
no nested user namespaces. Resource limits (CPU time, address space, file size, processes)
are set between fork and exec and hold for everything the command starts.

When this process is root, commands never run as root: each workspace's commands run as an
unprivileged uid of their own (so `RLIMIT_NPROC` binds: it does not bind uid 0, not even
mapped through a user namespace, and one session's fork bomb cannot starve another's), and
the work tree is handed to that uid before each command. This needs the workspaces' parent
directories to be searchable by other users (bubblewrap, running as that uid, resolves the
workspace by path); `sandbox_problem` and `reach_problem` say when they are not. When this
process is not root, commands run as its own uid and the process limit counts its processes.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import subprocess
import tempfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

SANDBOX_WORKSPACE = "/workspace"
SANDBOX_TMP = "/tmp"  # noqa: S108 (inside the sandbox: a private tmpfs)
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# What programs need from /etc; the name service files are written for the sandbox.
ETC_ALWAYS = (
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "alternatives",
    "ssl",
    "ca-certificates",
    "ca-certificates.conf",
    "localtime",
    "timezone",
    "mime.types",
    "os-release",
    "nsswitch.conf",
)
ETC_NETWORK = ("resolv.conf", "hosts", "gai.conf", "services", "protocols")
# Without the network, `localhost` still resolves (test suites bind it).
LOOPBACK_HOSTS = "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n"
TRIAL_TIMEOUT_SECONDS = 20


@dataclass(frozen=True)
class SandboxConfig:
    mode: Literal["bubblewrap", "none"] = "bubblewrap"
    network: bool = False
    # Default per command; the model may ask for less, or more up to max_timeout_seconds.
    timeout_seconds: float = 600
    max_timeout_seconds: float = 1800
    cpu_seconds: int = 900
    memory_bytes: int = 2 * 1024**3
    max_processes: int = 256
    max_file_bytes: int = 512 * 1024**2
    max_output_bytes: int = 64_000  # what is kept (head + tail); the rest is counted, dropped
    # When this process is root, a workspace's commands run as uid (and gid)
    # uid_base + hash(workspace) % uid_count: a range no one else on the host uses.
    uid_base: int = 200_000
    uid_count: int = 50_000
    # Host paths bound read-only at the same place, e.g. a toolchain in /opt.
    extra_ro_paths: tuple[str, ...] = ()

    def timeout_for(self, requested: float | None) -> float:
        """The timeout of one command: the default, or what the model asked within bounds."""
        if requested is None or requested <= 0:
            return self.timeout_seconds
        return min(float(requested), max(self.max_timeout_seconds, self.timeout_seconds))


@dataclass(frozen=True)
class Identity:
    """The uid and gid a command runs as, when this process may choose (it is root)."""

    uid: int
    gid: int


@dataclass(frozen=True)
class Launch:
    """Everything `asyncio.create_subprocess_exec` needs for one command."""

    argv: list[str]
    env: dict[str, str]
    cwd: Path
    identity: Identity | None
    pass_fds: tuple[int, ...]
    preexec: Callable[[], None]


def identity_for(config: SandboxConfig, ws_root: Path) -> Identity | None:
    """The unprivileged identity of `ws_root`'s commands; None unless this process is root."""
    if os.geteuid() != 0:
        return None
    uid = config.uid_base + zlib.crc32(str(ws_root).encode()) % max(1, config.uid_count)
    return Identity(uid=uid, gid=uid)


def shell() -> str:
    return "/bin/bash" if Path("/bin/bash").exists() else "/bin/sh"


def command_env(identity: Identity | None, home: str, path: str = SYSTEM_PATH) -> dict[str, str]:
    """The small environment a command starts with; git inside trusts the workspace, whose
    `.git` belongs to another uid and is read-only there."""
    return {
        "PATH": path,
        "HOME": home,
        "TMPDIR": home,
        "LANG": "C.UTF-8",
        "TERM": "dumb",
        "PYTHONDONTWRITEBYTECODE": "1",
        "USER": "agent" if identity is not None else os.environ.get("USER", "agent"),
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "safe.directory",
        "GIT_CONFIG_VALUE_0": "*",
        "GIT_OPTIONAL_LOCKS": "0",
    }


def limits_preexec(config: SandboxConfig) -> Callable[[], None]:
    """Sets the resource limits in the child, between fork and exec (after the uid change)."""
    limits = [
        (resource.RLIMIT_CPU, config.cpu_seconds),
        (resource.RLIMIT_AS, config.memory_bytes),
        (resource.RLIMIT_FSIZE, config.max_file_bytes),
        (resource.RLIMIT_NPROC, config.max_processes),
        (resource.RLIMIT_CORE, 0),
    ]

    def apply() -> None:
        for kind, value in limits:
            resource.setrlimit(kind, (value, value))

    return apply


def bubblewrap_launch(
    config: SandboxConfig, ws_root: Path, command: str, identity: Identity | None
) -> Launch:
    """The bwrap command line for `command` in `ws_root`; the caller closes `pass_fds`."""
    ws_root = ws_root.resolve()
    uid, gid = (identity.uid, identity.gid) if identity else (os.getuid(), os.getgid())
    etc_args, fds = _generated_etc(uid, gid, config.network)
    argv = [shutil.which("bwrap") or "bwrap", *_system_binds(config), *etc_args]
    argv += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", SANDBOX_TMP]
    argv += ["--bind", str(ws_root), SANDBOX_WORKSPACE]
    if (ws_root / ".git").exists():
        argv += ["--ro-bind", str(ws_root / ".git"), f"{SANDBOX_WORKSPACE}/.git"]
    # The sandbox's own root (a tmpfs holding the mount points, /etc among them) read-only too:
    # only /workspace and /tmp take writes.
    argv += ["--remount-ro", "/", "--chdir", SANDBOX_WORKSPACE]
    argv += ["--unshare-all", "--unshare-user", "--disable-userns"]
    argv += ["--share-net"] if config.network else []
    argv += ["--uid", str(uid), "--gid", str(gid), "--hostname", "sandbox"]
    argv += ["--die-with-parent", "--new-session", "--clearenv"]
    for name, value in command_env(identity, SANDBOX_TMP).items():
        argv += ["--setenv", name, value]
    argv += ["--", shell(), "-c", command]
    return Launch(argv, {}, ws_root, identity, tuple(fds), limits_preexec(config))


def _generated_etc(uid: int, gid: int, network: bool) -> tuple[list[str], list[int]]:
    """/etc/passwd and /etc/group naming only the sandbox's users (not the host's), and,
    without the network, an /etc/hosts for localhost; as bwrap arguments and their fds."""
    files = {
        "/etc/passwd": f"root:x:0:0:root:/root:/usr/sbin/nologin\n"
        f"agent:x:{uid}:{gid}:agent:/tmp:{shell()}\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
        "/etc/group": f"root:x:0:\nagent:x:{gid}:\nnogroup:x:65534:\n",
    }
    if not network:
        files["/etc/hosts"] = LOOPBACK_HOSTS
    args: list[str] = []
    fds: list[int] = []
    for path, text in files.items():
        fds.append(_data_fd(text))
        args += ["--ro-bind-data", str(fds[-1]), path]
    return args, fds


def plain_launch(
    config: SandboxConfig, ws_root: Path, command: str, identity: Identity | None, home: Path
) -> Launch:
    """`command` without a sandbox (mode `none`): same limits, uid and bounds, host view."""
    ws_root = ws_root.resolve()
    env = command_env(identity, str(home), os.environ.get("PATH", SYSTEM_PATH))
    return Launch(
        argv=[shell(), "-c", command],
        env=env,
        cwd=ws_root,
        identity=identity,
        pass_fds=(),
        preexec=limits_preexec(config),
    )


def _system_binds(config: SandboxConfig) -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for top in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        host = Path("/") / top
        if host.is_symlink():
            args += ["--symlink", os.readlink(host), f"/{top}"]
        elif host.is_dir():
            args += ["--ro-bind", str(host), f"/{top}"]
    names = ETC_ALWAYS + (ETC_NETWORK if config.network else ())
    for name in names:
        args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    for path in config.extra_ro_paths:
        args += ["--ro-bind-try", path, path]
    return args


def _data_fd(text: str) -> int:
    """A pipe's read end holding `text` (small: it fits the pipe's buffer), for bwrap to copy."""
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, text.encode())
    finally:
        os.close(write_end)
    return read_end


def hand_over(ws_root: Path, identity: Identity) -> None:
    """Give the work tree (not `.git`) to the command's uid, so it can write there; files
    written since the last command (by git or the file tools) belong to us."""
    owner = (identity.uid, identity.gid)
    for dirpath, dirnames, filenames in os.walk(ws_root):
        if dirpath == str(ws_root):
            dirnames[:] = [d for d in dirnames if d != ".git"]
            _give(dirpath, owner)
        for name in dirnames + filenames:
            _give(os.path.join(dirpath, name), owner)


def _give(path: str, owner: tuple[int, int]) -> None:
    with contextlib.suppress(FileNotFoundError):
        st = os.lstat(path)
        if (st.st_uid, st.st_gid) != owner:
            os.lchown(path, *owner)


def reach_problem(path: Path) -> str | None:
    """Why a command running as another uid could not reach what is inside `path`, or None."""
    if os.geteuid() != 0:
        return None
    real = path.resolve()
    for parent in [real, *real.parents]:
        if not parent.stat().st_mode & 0o001:
            return (
                f"{parent} is not searchable by other users, so sandboxed commands cannot "
                f"reach {path} (chmod o+x {parent}, or move the workspaces elsewhere)"
            )
    return None


def sandbox_problem(config: SandboxConfig, workspaces_root: Path | None = None) -> str | None:
    """None when commands can run; else why not (checked once, at start-up)."""
    if config.mode == "none":
        return None
    if shutil.which("bwrap") is None:
        return (
            "bubblewrap (bwrap) is not installed: install it, or set AGENT_SANDBOX=none to run "
            "commands without a sandbox"
        )
    if workspaces_root is not None:
        workspaces_root.mkdir(parents=True, exist_ok=True)
        if problem := reach_problem(workspaces_root):
            return problem
    return _trial_run(config)


def _trial_run(config: SandboxConfig) -> str | None:
    with tempfile.TemporaryDirectory(prefix="agent-sandbox-trial-") as tmp:
        root = Path(tmp)
        root.chmod(0o711)
        identity = identity_for(config, root)
        if identity is not None:
            if problem := reach_problem(root):
                return problem
            hand_over(root, identity)
        launch = bubblewrap_launch(config, root, "echo sandbox-ok > trial && cat trial", identity)
        try:
            done = subprocess.run(  # noqa: S603 (our own argv, no shell)
                launch.argv,
                cwd=launch.cwd,
                env=launch.env,
                pass_fds=launch.pass_fds,
                user=identity.uid if identity else None,
                group=identity.gid if identity else None,
                extra_groups=[] if identity else None,
                capture_output=True,
                timeout=TRIAL_TIMEOUT_SECONDS,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"bubblewrap does not work here: {exc}"
        finally:
            for fd in launch.pass_fds:
                os.close(fd)
    if done.returncode != 0 or b"sandbox-ok" not in done.stdout:
        reason = done.stderr.decode(errors="replace").strip() or f"exit {done.returncode}"
        return f"bubblewrap does not work here: {reason}"
    return None
