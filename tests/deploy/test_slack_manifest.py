"""The shipped Slack app manifests ask for what the code uses: every event the bot listens to
is subscribed, every Web API method the bot and restate_app call has its scope, and every
shortcut and command the bot answers is declared. A new call or listener without its manifest
entry fails here, not in a workspace where it silently never arrives.

Scopes per method are Slack's, from each method's reference page (docs.slack.dev/reference/
methods); the event subscriptions per event from the Events API reference.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from common.contract import STATUS_SHORTCUT_ID

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = sorted((ROOT / "deploy" / "slack").glob("manifest*.yaml"))
CALLERS = ("bot", "restate_app", "common")
# A table of Slack's rate tiers names methods without calling them.
NOT_CALLS = {ROOT / "common" / "slack_limits.py"}

# Any one of these scopes lets the method run (a channel's kind decides which is needed,
# and the manifest should carry all of a method's kinds).
METHOD_SCOPES: dict[str, frozenset[str]] = {
    "auth.test": frozenset(),
    "chat.getPermalink": frozenset(),
    "chat.postMessage": frozenset({"chat:write"}),
    "chat.postEphemeral": frozenset({"chat:write"}),
    "chat.update": frozenset({"chat:write"}),
    "chat.delete": frozenset({"chat:write"}),
    "chat.startStream": frozenset({"chat:write"}),
    "chat.appendStream": frozenset({"chat:write"}),
    "chat.stopStream": frozenset({"chat:write"}),
    "reactions.add": frozenset({"reactions:write"}),
    "reactions.remove": frozenset({"reactions:write"}),
    "files.upload": frozenset({"files:write"}),
    "files.getUploadURLExternal": frozenset({"files:write"}),
    "files.completeUploadExternal": frozenset({"files:write"}),
    "files.info": frozenset({"files:read"}),
    "users.info": frozenset({"users:read"}),
    "conversations.info": frozenset({"channels:read", "groups:read", "im:read", "mpim:read"}),
    "conversations.replies": frozenset(
        {"channels:history", "groups:history", "im:history", "mpim:history"}
    ),
    "conversations.history": frozenset(
        {"channels:history", "groups:history", "im:history", "mpim:history"}
    ),
    "assistant.threads.setStatus": frozenset({"assistant:write"}),
    "agents.sessions.setStatus": frozenset({"assistant:write"}),
}
# Methods a slack_sdk helper calls for us.
SDK_HELPERS = {"files_upload_v2": ("files.getUploadURLExternal", "files.completeUploadExternal")}
# The `message` event arrives once per kind of conversation subscribed to.
EVENT_SUBSCRIPTIONS = {
    "message": ("message.channels", "message.groups", "message.im", "message.mpim"),
}
_METHOD = re.compile(
    r"(?:chat|reactions|files|users|conversations|assistant|agents|auth|views|pins)\.[a-zA-Z]+"
    r"(?:\.[a-zA-Z]+)?"
)
_CLIENT_CALL = re.compile(r"(chat|reactions|files|users|conversations|auth)_([a-zA-Z]+)")


def _sources() -> list[Path]:
    files = [p for package in CALLERS for p in (ROOT / package).rglob("*.py")]
    return [p for p in files if p not in NOT_CALLS]


def _called_methods() -> set[str]:
    """Web API methods named in the code: as literal method names ("chat.update"), as
    slack_sdk client methods (`client.chat_postEphemeral(...)`), or through an SDK helper."""
    methods: set[str] = set()
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if _METHOD.fullmatch(node.value) and not node.value.endswith(".com"):
                    methods.add(node.value)
            elif isinstance(node, ast.Attribute):
                if node.attr in SDK_HELPERS:
                    methods.update(SDK_HELPERS[node.attr])
                elif (found := _CLIENT_CALL.fullmatch(node.attr)) is not None:
                    methods.add(f"{found.group(1)}.{found.group(2)}")
    return methods


def _listened(kind: str) -> set[str]:
    """The names the bot registers with `app.<kind>("name")` (not Bolt's catch-alls)."""
    names: set[str] = set()
    for path in (ROOT / "bot").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == kind
                and ast.unparse(node.func.value) == "app"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                names.add(str(node.args[0].value))
    return names


def _manifest(path: Path) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_the_code_calls_web_api_methods_and_the_scan_finds_them() -> None:
    """The scan itself works: the methods every run needs are found."""
    assert {"chat.postMessage", "chat.update", "reactions.add", "auth.test"} <= _called_methods()
    assert {"app_mention", "message"} <= _listened("event")


def test_every_method_called_has_a_known_scope() -> None:
    unknown = _called_methods() - METHOD_SCOPES.keys()
    assert not unknown, f"add these methods' scopes from Slack's reference: {sorted(unknown)}"


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_the_manifest_grants_every_scope_the_code_needs(path: Path) -> None:
    granted = set(_manifest(path)["oauth_config"]["scopes"]["bot"])
    missing = {
        method: sorted(scopes - granted)
        for method in _called_methods()
        if (scopes := METHOD_SCOPES.get(method, frozenset())) and not scopes <= granted
    }
    assert not missing


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_the_manifest_lets_the_bot_download_the_files_people_share(path: Path) -> None:
    """Reading `url_private` with the bot token needs `files:read` (else Slack answers with
    its sign-in page)."""
    downloads = any("url_private" in p.read_text() for p in _sources())
    granted = set(_manifest(path)["oauth_config"]["scopes"]["bot"])
    assert not downloads or "files:read" in granted


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_the_manifest_subscribes_to_every_event_the_bot_handles(path: Path) -> None:
    subscribed = set(_manifest(path)["settings"]["event_subscriptions"]["bot_events"])
    needed = {
        subscription
        for event in _listened("event")
        for subscription in EVENT_SUBSCRIPTIONS.get(event, (event,))
    }
    assert needed <= subscribed, sorted(needed - subscribed)


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_the_manifest_declares_the_commands_and_shortcuts_the_bot_answers(path: Path) -> None:
    features = _manifest(path)["features"]
    assert {c["command"] for c in features["slash_commands"]} == _listened("command")
    assert {s["callback_id"] for s in features["shortcuts"]} == {STATUS_SHORTCUT_ID}


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_the_manifest_declares_an_agent_installable_org_wide(path: Path) -> None:
    """Slack's own stop button (`agent_session_stopped`) needs the app declared as an agent,
    which brings the `assistant:write` scope; org-wide installs need `org_deploy_enabled`."""
    manifest = _manifest(path)
    assert manifest["features"]["agent_view"]["agent_description"]
    assert "assistant:write" in manifest["oauth_config"]["scopes"]["bot"]
    assert manifest["settings"]["org_deploy_enabled"] is True
