"""No drift between what the code reads and what the deployment files give it.

Parse-only: Docker and Kubernetes cannot run here, so compose, the manifests, the image's
entry points and the Slack manifests are checked as files against the code.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings

from common import settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PACKAGES = ("common", "bot", "restate_app", "sandbox")
ROLE_SETTINGS: dict[str, type[BaseSettings]] = {
    "bot": settings.BotSettings,
    "restate_app": settings.AppSettings,
    "register": settings.RegistrationSettings,
}
SECRET_WORDS = ("TOKEN", "SECRET", "API_KEY")


def _settings_classes() -> list[type[BaseSettings]]:
    return [
        v
        for v in vars(settings).values()
        if isinstance(v, type) and issubclass(v, BaseSettings) and v.model_fields
    ]


def _env_reads(tree: ast.AST) -> set[str]:
    """Names read with os.environ.get / os.getenv / os.environ[...] / env.get(...)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func, arg = node.func, node.args[0].value
            reader = isinstance(func, ast.Attribute) and (
                ast.unparse(func.value) in ("os.environ", "env") or ast.unparse(func) == "os.getenv"
            )
            if reader and isinstance(arg, str) and arg.isupper():
                names.add(arg)
        if (
            isinstance(node, ast.Subscript)
            and ast.unparse(node.value) == "os.environ"
            and isinstance(node.slice, ast.Constant)
        ):
            names.add(str(node.slice.value))
    return names


# Set by the system, not by an operator: passed through to the agent's commands.
SYSTEM_VARIABLES = frozenset({"PATH", "USER", "HOME"})


def code_variables() -> set[str]:
    names = {f.upper() for cls in _settings_classes() for f in cls.model_fields}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            names |= _env_reads(ast.parse(path.read_text()))
    return names - SYSTEM_VARIABLES


def required(role: str) -> set[str]:
    cls = ROLE_SETTINGS[role]
    return {name.upper() for name, f in cls.model_fields.items() if f.is_required()}


def env_example() -> set[str]:
    text = (ROOT / ".env.example").read_text()
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", text, re.MULTILINE))


def _yaml_docs(path: Path) -> list[Any]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def compose() -> dict[str, Any]:
    return dict(_yaml_docs(DEPLOY / "compose.yaml")[0])


def k8s_objects() -> list[dict[str, Any]]:
    kustomization = _yaml_docs(DEPLOY / "k8s" / "kustomization.yaml")[0]
    return [d for r in kustomization["resources"] for d in _yaml_docs(DEPLOY / "k8s" / r)]


def k8s_config() -> set[str]:
    text = (DEPLOY / "k8s" / "config.env").read_text()
    return set(re.findall(r"^([A-Z][A-Z0-9_]+)=", text, re.MULTILINE))


def entrypoint_roles() -> dict[str, str]:
    """Role -> module, from the image's entry point script."""
    text = (DEPLOY / "entrypoint.sh").read_text()
    return dict(re.findall(r"^\s*([a-z_]+)\) exec python -m ([\w.]+)", text, re.MULTILINE))


def restate_server_pin() -> str:
    return str(
        json.loads((ROOT / "package.json").read_text())["dependencies"][
            "@restatedev/restate-server"
        ]
    )


# ------------------------------------------------------------------------- the code's variables
def test_every_variable_the_code_reads_is_in_env_example() -> None:
    assert code_variables() - env_example() == set()


def test_env_example_names_only_variables_the_code_reads() -> None:
    assert env_example() - code_variables() == set()


@pytest.mark.parametrize("path", sorted(DEPLOY.rglob("*.yaml")), ids=lambda p: p.name)
def test_deployment_yaml_parses(path: Path) -> None:
    assert _yaml_docs(path)


# ------------------------------------------------------------------------------------- compose
def _agent_services() -> dict[str, dict[str, Any]]:
    return {n: s for n, s in compose()["services"].items() if "command" in s}


def test_compose_gives_every_process_its_required_settings() -> None:
    known, listed = code_variables(), env_example()
    for name, service in _agent_services().items():
        role = service["command"][0]
        environment = set(service.get("environment", {}))
        from_env_file = service.get("env_file") == "../.env"
        missing = {v for v in required(role) if v not in environment}
        if from_env_file:
            missing -= listed
        assert missing == set(), f"compose service {name} lacks {missing}"
        assert environment <= known, f"compose service {name} sets unknown {environment - known}"


def test_compose_runs_a_three_node_cluster_with_replication_two() -> None:
    nodes = {n: s for n, s in compose()["services"].items() if n.startswith("restate-")}
    nodes.pop("restate-app")
    assert len(nodes) == 3
    addresses = json.loads(nodes["restate-1"]["environment"]["RESTATE_METADATA_CLIENT__ADDRESSES"])
    provisioning = [
        n for n, s in nodes.items() if s["environment"]["RESTATE_AUTO_PROVISION"] == "true"
    ]
    assert provisioning == ["restate-1"]
    for name, node in nodes.items():
        env = node["environment"]
        assert node["image"].endswith(f"/restate:{restate_server_pin()}")
        assert env["RESTATE_DEFAULT_REPLICATION"] == "2"
        assert env["RESTATE_ADVERTISED_ADDRESS"] in addresses
        assert env["RESTATE_NODE_NAME"] == name


def test_compose_publishes_only_the_bot_and_runs_two_restate_app_replicas() -> None:
    services = compose()["services"]
    assert [n for n, s in services.items() if s.get("ports")] == ["bot"]
    assert services["restate-app"]["deploy"]["replicas"] == 2
    assert services["register"]["command"] == ["register"]


# ---------------------------------------------------------------------------------- kubernetes
def _workloads() -> dict[str, dict[str, Any]]:
    return {
        o["metadata"]["name"]: o
        for o in k8s_objects()
        if o["kind"] in ("Deployment", "Job") and o["spec"]["template"]["spec"]["containers"]
    }


def _container(workload: dict[str, Any]) -> dict[str, Any]:
    return dict(workload["spec"]["template"]["spec"]["containers"][0])


def test_kubernetes_gives_every_process_its_required_settings() -> None:
    known, config = code_variables(), k8s_config()
    assert config <= known
    for name, workload in _workloads().items():
        container = _container(workload)
        env = {e["name"]: e for e in container.get("env", [])}
        env_from = container.get("envFrom", [])
        from_config = {"configMapRef": {"name": "slack-agent-config"}} in env_from
        given = set(env) | (config if from_config else set())
        missing = required(container["args"][0]) - given
        assert missing == set(), f"{name} lacks {missing}"
        assert set(env) <= known, f"{name} sets unknown {set(env) - known}"


def test_kubernetes_references_secrets_and_never_inlines_them() -> None:
    assert not any(word in v for v in k8s_config() for word in SECRET_WORDS)
    for name, workload in _workloads().items():
        role = _container(workload)["args"][0]
        for entry in _container(workload).get("env", []):
            if any(word in entry["name"] for word in SECRET_WORDS):
                ref = entry["valueFrom"]["secretKeyRef"]
                assert "value" not in entry, f"{name} inlines {entry['name']}"
                assert ref["name"] == "slack-agent-secrets"
                assert ref["key"] == entry["name"]
                assert ref.get("optional", False) == (entry["name"] not in required(role))


def test_kubernetes_workloads_have_probes_requests_and_disruption_budgets() -> None:
    budgets = {
        json.dumps(b["spec"]["selector"]["matchLabels"]): b["spec"]
        for b in k8s_objects()
        if b["kind"] == "PodDisruptionBudget"
    }
    for name, workload in _workloads().items():
        if workload["kind"] != "Deployment":
            continue
        container = _container(workload)
        # Probes answer from the process alone: Restate's absence must not take every
        # replica out at once (the `/readyz/restate` check is for operators).
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", name
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", name
        # Those answer without waiting; a busy container still gets more than kubelet's 1 s.
        for probe in ("readinessProbe", "livenessProbe"):
            assert container[probe]["timeoutSeconds"] >= 2, (name, probe)
        assert container["resources"]["requests"], name
        budget = budgets[json.dumps(workload["spec"]["selector"]["matchLabels"])]
        # A drain can always evict one pod, and never waits on a pod that is not ready.
        assert budget.get("maxUnavailable", 0) >= 1, name
        assert budget["unhealthyPodEvictionPolicy"] == "AlwaysAllow", name


def test_kubernetes_runs_restate_as_three_replicated_nodes_on_volumes() -> None:
    (restate,) = [o for o in k8s_objects() if o["kind"] == "StatefulSet"]
    container = _container(restate)
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert restate["spec"]["replicas"] == 3
    assert restate["spec"]["volumeClaimTemplates"]
    assert env["RESTATE_DEFAULT_REPLICATION"] == "2"
    assert len(json.loads(env["RESTATE_METADATA_CLIENT__ADDRESSES"])) == 3
    assert container["image"].endswith(f"/restate:{restate_server_pin()}")


def test_only_the_bot_is_reachable_from_outside() -> None:
    policies = [o for o in k8s_objects() if o["kind"] == "NetworkPolicy"]
    deny = [p for p in policies if p["spec"]["podSelector"] == {} and "ingress" not in p["spec"]]
    assert deny, "a default-deny ingress policy"
    open_to_all = [
        p["spec"]["podSelector"]
        for p in policies
        if any("from" not in rule for rule in p["spec"].get("ingress", []))
    ]
    assert open_to_all == [{"matchLabels": {"app.kubernetes.io/name": "bot"}}]


# ------------------------------------------------------------------------------ image, Slack
def _module_is_runnable(module: str) -> bool:
    path = ROOT / Path(*module.split("."))
    if (path / "__main__.py").exists():
        return True
    source = path.with_suffix(".py")
    return source.exists() and 'if __name__ == "__main__":' in source.read_text()


def test_image_entry_points_match_python_entry_points() -> None:
    roles = entrypoint_roles()
    assert roles == {
        "bot": "bot",
        "restate_app": "restate_app",
        "register": "restate_app.registration",
    }
    assert all(_module_is_runnable(m) for m in roles.values())
    assert set(ROLE_SETTINGS) == set(roles)
    used = {s["command"][0] for s in _agent_services().values()}
    used |= {_container(w)["args"][0] for w in _workloads().values()}
    assert used == set(roles)


def test_dockerfile_is_multi_stage_non_root_with_a_healthcheck() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, re.MULTILINE)) >= 2
    users = re.findall(r"^USER (\S+)", text, re.MULTILINE)
    assert users
    assert users[-1].split(":")[0] not in ("0", "root")
    healthcheck = re.search(r'HEALTHCHECK .*?"-m", "([\w.]+)"', text, re.DOTALL)
    assert healthcheck
    assert _module_is_runnable(healthcheck.group(1))
    assert 'ENTRYPOINT ["/usr/local/bin/entrypoint"]' in text
    for package in {m.split(".")[0] for m in entrypoint_roles().values()} | {"common"}:
        assert f"COPY {package} ./{package}" in text
    secret_env = re.findall(r"^(?:ENV|ARG)\s.*(?:TOKEN|SECRET|API_KEY)", text, re.MULTILINE)
    assert secret_env == []
    lines = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    ignore = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert ignore[0] == "*"
    assert "!.env" not in ignore


def _manifest(name: str) -> dict[str, Any]:
    return dict(_yaml_docs(DEPLOY / "slack" / name)[0])


def test_slack_manifests_cover_http_and_socket_mode_alike() -> None:
    from bot.app import EVENTS_PATH

    http, socket = _manifest("manifest.yaml"), _manifest("manifest.socket-mode.yaml")
    assert http["settings"]["socket_mode_enabled"] is False
    assert socket["settings"]["socket_mode_enabled"] is True
    for key in ("oauth_config",):
        assert http[key] == socket[key]
    assert (
        http["settings"]["event_subscriptions"]["bot_events"]
        == (socket["settings"]["event_subscriptions"]["bot_events"])
    )
    urls = [
        http["settings"]["event_subscriptions"]["request_url"],
        http["settings"]["interactivity"]["request_url"],
        *[c["url"] for c in http["features"]["slash_commands"]],
    ]
    assert all(url.endswith(EVENTS_PATH) for url in urls)
    for manifest in (http, socket):
        assert [c["command"] for c in manifest["features"]["slash_commands"]] == ["/agent-status"]
        assert manifest["settings"]["interactivity"]["is_enabled"] is True
        assert {"app_mentions:read", "chat:write", "commands"} <= set(
            manifest["oauth_config"]["scopes"]["bot"]
        )
