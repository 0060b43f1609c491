"""Day-two settings agree between compose and Kubernetes, and with the pinned Restate.

Snapshots (without them the log is never trimmed), stop grace periods, the start-up order on
registration, the registration Job's own settings, and a supported Node in the image. Parse-only
except where the pinned `restate-server` itself reads the snapshot keys (`--dump-config`).
"""

from __future__ import annotations

import datetime
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

from sandbox.stack import native_server
from tests.deploy.test_config_consistency import DEPLOY, _yaml_docs, compose, k8s_objects

SNAPSHOT_PREFIX = "RESTATE_WORKER__SNAPSHOTS__"
DESTINATION = SNAPSHOT_PREFIX + "DESTINATION"
INTERVAL = SNAPSHOT_PREFIX + "SNAPSHOT_INTERVAL_NUM_RECORDS"
# Node.js release lines and their end of life (nodejs.org/en/about/previous-releases).
NODE_END_OF_LIFE = {
    20: datetime.date(2026, 4, 30),
    22: datetime.date(2027, 4, 30),
    24: datetime.date(2028, 4, 30),
}


def env_file(path: Path) -> dict[str, str]:
    """`KEY=value` lines of a kustomize env file."""
    return dict(re.findall(r"^([A-Z][A-Z0-9_]*)=(.*)$", path.read_text(), re.MULTILINE))


def compose_nodes() -> dict[str, dict[str, Any]]:
    services = compose()["services"]
    return {n: s for n, s in services.items() if re.fullmatch(r"restate-\d+", n)}


def k8s_kind(kind: str, name: str) -> dict[str, Any]:
    (found,) = [o for o in k8s_objects() if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def shipped_snapshot_settings() -> dict[str, str]:
    """The snapshot settings compose's nodes read (the destination left to the operator)."""
    return env_file(DEPLOY / "restate-snapshots.env")


def k8s_snapshot_settings() -> dict[str, str]:
    return env_file(DEPLOY / "k8s" / "restate-snapshots.env")


def compose_start_script() -> str:
    entrypoints = [node["entrypoint"] for node in compose_nodes().values()]
    assert all(e == entrypoints[0] for e in entrypoints)
    assert entrypoints[0][:2] == ["/bin/sh", "-c"]
    # `$$` is compose's escape for a `$` the shell sees.
    return str(entrypoints[0][2]).replace("$$", "$")


def k8s_start_script() -> str:
    container = k8s_kind("StatefulSet", "restate")["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["/bin/sh", "-c"]
    return str(container["args"][0])


# ------------------------------------------------------------------------------------ snapshots
def test_compose_and_kubernetes_ship_the_same_snapshot_settings() -> None:
    shipped, k8s = shipped_snapshot_settings(), k8s_snapshot_settings()
    assert shipped == k8s
    assert set(shipped) == {DESTINATION, INTERVAL}
    # An object store the operator names: none is guessed for them.
    assert shipped[DESTINATION] == ""
    assert all(node["env_file"] == "restate-snapshots.env" for node in compose_nodes().values())
    kustomization = _yaml_docs(DEPLOY / "k8s" / "kustomization.yaml")[0]
    generated = {g["name"]: g["envs"] for g in kustomization["configMapGenerator"]}
    assert generated["restate-snapshots"] == ["restate-snapshots.env"]
    container = k8s_kind("StatefulSet", "restate")["spec"]["template"]["spec"]["containers"][0]
    assert {"configMapRef": {"name": "restate-snapshots"}} in container["envFrom"]


@pytest.mark.parametrize("where", ["compose", "kubernetes"])
@pytest.mark.parametrize(("destination", "refused"), [("", True), ("s3://bucket/restate", False)])
def test_a_restate_node_refuses_to_start_without_a_snapshot_destination(
    where: str, destination: str, refused: bool
) -> None:
    script = compose_start_script() if where == "compose" else k8s_start_script()
    env = {"PATH": "/usr/bin:/bin", "POD_NAME": "restate-1", DESTINATION: destination}
    # Where the image has the server, this machine has none: a start gets as far as `exec`.
    run = subprocess.run(["/bin/sh", "-c", script], env=env, capture_output=True, timeout=30)
    assert (run.returncode == 64) == refused
    assert (b"restate-snapshots.env" in run.stderr) == refused


def test_the_pinned_restate_server_reads_the_shipped_snapshot_keys() -> None:
    settings = {**shipped_snapshot_settings(), DESTINATION: "s3://bucket/restate"}
    dump = subprocess.run(
        [str(native_server()), "--dump-config"],
        env={"PATH": "/usr/bin:/bin", "RESTATE_DISABLE_TELEMETRY": "true", **settings},
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    snapshots = tomllib.loads(dump.decode())["worker"]["snapshots"]
    assert snapshots["destination"] == settings[DESTINATION]
    assert snapshots["snapshot-interval-num-records"] == int(settings[INTERVAL])


# ------------------------------------------------------------------ stopping and start-up order
def _seconds(duration: str) -> int:
    match = re.fullmatch(r"(\d+)s", duration)
    assert match, duration
    return int(match.group(1))


def _grace(kind: str, name: str) -> int:
    spec = k8s_kind(kind, name)["spec"]["template"]["spec"]
    return int(spec["terminationGracePeriodSeconds"])


def test_compose_stop_grace_periods_match_kubernetes() -> None:
    services = compose()["services"]
    for name in compose_nodes():
        assert _seconds(services[name]["stop_grace_period"]) == _grace("StatefulSet", "restate")
    assert _seconds(services["restate-app"]["stop_grace_period"]) == _grace(
        "Deployment", "restate-app"
    )
    assert _seconds(services["bot"]["stop_grace_period"]) == _grace("Deployment", "bot")


def test_compose_starts_the_bot_once_registration_has_completed() -> None:
    services = compose()["services"]
    assert services["bot"]["depends_on"]["register"] == {
        "condition": "service_completed_successfully"
    }
    # Registration needs restate_app serving: Restate discovers the services on it.
    assert services["register"]["depends_on"]["restate-app"] == {"condition": "service_healthy"}
    assert services["register"]["restart"] == "no"


# ----------------------------------------------------------------------- registration, image
def test_the_registration_job_takes_its_settings_from_no_generated_config_map() -> None:
    (job,) = [o for o in k8s_objects() if o["kind"] == "Job"]
    container = job["spec"]["template"]["spec"]["containers"][0]
    # A generated ConfigMap's name changes with its content; the template must not.
    assert "envFrom" not in container
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["RESTATE_ADMIN_URL"] == env_file(DEPLOY / "k8s" / "config.env")["RESTATE_ADMIN_URL"]
    register = compose()["services"]["register"]["environment"]
    assert env["RESTATE_APP_ADVERTISED_URL"] == register["RESTATE_APP_ADVERTISED_URL"]


def test_the_image_builds_its_assets_on_a_supported_node_release() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    match = re.search(r"^FROM node:(\d+)-\S+ AS assets$", text, re.MULTILINE)
    assert match, "the assets stage pins a Node major version"
    major = int(match.group(1))
    assert major in NODE_END_OF_LIFE, f"add Node {major}'s end of life to NODE_END_OF_LIFE"
    assert datetime.date.today() < NODE_END_OF_LIFE[major], f"Node {major} is past end of life"
