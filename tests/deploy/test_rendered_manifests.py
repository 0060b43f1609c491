"""The Kubernetes manifests as `kubectl apply -k deploy/k8s` sends them.

Rendered by kubectl's own kustomize, checked against Kubernetes' published schemas, and
checked for apply-safety: re-applying after a new image tag or a config change never asks the
API server to change a field it refuses to change (a Job's pod template, a selector, ...).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.test_config_consistency import DEPLOY

KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl (with kustomize) not installed")

# Fields the API server refuses to change on an existing object (`field is immutable`).
IMMUTABLE = {
    "Job": ("spec.selector", "spec.template"),
    "Deployment": ("spec.selector",),
    "StatefulSet": (
        "spec.selector",
        "spec.serviceName",
        "spec.podManagementPolicy",
        "spec.volumeClaimTemplates",
    ),
    "Service": ("spec.clusterIP",),
}
# RFC 1123 subdomain, as object names must be; a Job's name also labels its pods (<= 63).
NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
# The oldest Kubernetes the manifests are for: PodDisruptionBudget's
# unhealthyPodEvictionPolicy is generally available from 1.31.
OLDEST_KUBERNETES = "1.31.0"

Objects = list[dict[str, Any]]


def render(directory: Path) -> Objects:
    assert KUBECTL is not None
    out = subprocess.run(
        [KUBECTL, "kustomize", str(directory)], capture_output=True, check=True, timeout=120
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def _key(obj: dict[str, Any]) -> tuple[str, str]:
    return obj["kind"], obj["metadata"]["name"]


def _field(obj: dict[str, Any], path: str) -> Any:
    for part in path.split("."):
        obj = obj.get(part, {}) if isinstance(obj, dict) else {}
    return obj


def apply_conflicts(before: Objects, after: Objects) -> list[str]:
    """What applying `after` over `before` would be refused: an object kept under its name
    whose immutable fields differ."""
    applied = {_key(o): o for o in before}
    return [
        f"{obj['kind']}/{obj['metadata']['name']}: {path}"
        for obj in after
        if _key(obj) in applied
        for path in IMMUTABLE.get(obj["kind"], ())
        if _field(applied[_key(obj)], path) != _field(obj, path)
    ]


def one(objects: Objects, kind: str) -> dict[str, Any]:
    (found,) = [o for o in objects if o["kind"] == kind]
    return found


@pytest.fixture(scope="module")
def shipped() -> Objects:
    return render(DEPLOY / "k8s")


@pytest.fixture
def release(tmp_path: Path) -> Path:
    """A copy of deploy/k8s to edit as an operator would for the next release."""
    return Path(shutil.copytree(DEPLOY / "k8s", tmp_path / "k8s"))


def set_image_tag(directory: Path, tag: str) -> None:
    path = directory / "kustomization.yaml"
    text, count = re.subn(r"newTag: \S+", f"newTag: {tag}", path.read_text())
    assert count == 1
    path.write_text(text)


def set_config(directory: Path, name: str, value: str) -> None:
    path = directory / "config.env"
    text, count = re.subn(rf"^{name}=.*$", f"{name}={value}", path.read_text(), flags=re.M)
    assert count == 1
    path.write_text(text)


# ------------------------------------------------------------------------------- apply-safety
def test_a_new_image_tag_gets_a_registration_job_of_its_own_and_rolls_back(
    shipped: Objects, release: Path
) -> None:
    set_image_tag(release, "0.2.0")
    upgraded = render(release)
    assert apply_conflicts(shipped, upgraded) == []
    assert one(shipped, "Job")["metadata"]["name"] == "restate-app-register-0.1.0"
    assert one(upgraded, "Job")["metadata"]["name"] == "restate-app-register-0.2.0"
    # Rolling back is applying the old tag again: the old release, as it was.
    set_image_tag(release, "0.1.0")
    rolled_back = render(release)
    assert apply_conflicts(upgraded, rolled_back) == []
    assert rolled_back == shipped


def test_a_config_change_rolls_the_deployments_and_leaves_the_job_as_it_is(
    shipped: Objects, release: Path
) -> None:
    set_config(release, "OPENAI_MODEL", "gpt-4.1-mini")
    changed = render(release)
    assert apply_conflicts(shipped, changed) == []
    assert one(changed, "Job") == one(shipped, "Job")
    deployments = [o for o in changed if o["kind"] == "Deployment"]
    refs = {
        o["spec"]["template"]["spec"]["containers"][0]["envFrom"][0]["configMapRef"]["name"]
        for o in deployments
    }
    old = {o["metadata"]["name"] for o in shipped if o["kind"] == "ConfigMap"}
    assert len(refs) == 1
    assert refs.isdisjoint(old), "the Deployments roll onto the new ConfigMap"


def test_a_job_kept_under_its_name_with_a_new_image_would_be_refused(
    shipped: Objects, release: Path
) -> None:
    """The check above is not vacuous: a fixed Job name, as before, is caught."""
    set_image_tag(release, "0.2.0")
    upgraded = render(release)
    one(upgraded, "Job")["metadata"]["name"] = one(shipped, "Job")["metadata"]["name"]
    assert apply_conflicts(shipped, upgraded) == ["Job/restate-app-register-0.1.0: spec.template"]


@pytest.mark.parametrize("tag", ["0.1.0", "1.2.0-rc.1", "2026.11.30"])
def test_every_rendered_name_is_valid_for_the_tags_a_release_uses(release: Path, tag: str) -> None:
    set_image_tag(release, tag)
    rendered = render(release)
    for obj in rendered:
        name = obj["metadata"]["name"]
        assert NAME.fullmatch(name), name
        assert len(name) <= 253, name
    assert len(one(rendered, "Job")["metadata"]["name"]) <= 63


def test_the_restate_nodes_read_the_generated_snapshot_settings(shipped: Objects) -> None:
    generated = {o["metadata"]["name"] for o in shipped if o["kind"] == "ConfigMap"}
    container = one(shipped, "StatefulSet")["spec"]["template"]["spec"]["containers"][0]
    refs = [e["configMapRef"]["name"] for e in container["envFrom"] if "configMapRef" in e]
    assert len(refs) == 1
    assert refs[0] in generated
    assert refs[0].startswith("restate-snapshots-")


# ---------------------------------------------------------------------------------- schemas
def test_the_rendered_manifests_pass_the_kubernetes_schemas(shipped: Objects) -> None:
    kv = pytest.importorskip("kubernetes_validate")
    for version in (OLDEST_KUBERNETES, kv.latest_version()):
        for obj in shipped:
            kv.validate(obj, version, strict=True)
    # The validator is strict: a misspelt field fails it.
    budget = dict(one_named(shipped, "PodDisruptionBudget", "bot"))
    budget["spec"] = {**budget["spec"], "unhealthyPodEvictionPolicyy": "AlwaysAllow"}
    with pytest.raises(kv.ValidationError):
        kv.validate(budget, OLDEST_KUBERNETES, strict=True)


def one_named(objects: Objects, kind: str, name: str) -> dict[str, Any]:
    (found,) = [o for o in objects if _key(o) == (kind, name)]
    return found
