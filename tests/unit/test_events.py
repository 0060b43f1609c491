"""The bot's event edge: which Slack events become a turn of which session."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from bot.events import (
    Actor,
    Skip,
    installation_team,
    interaction_actor,
    message_actor,
    to_incoming,
)
from bot.rules import Rules
from common.contract import IncomingMessage, thread_key
from restate_app.thread_history import joins_thread
from tests.slack_fixtures import load

BOT = "U0BOT"
TEAM = "T0SANDBOX"


def _event(**overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "message",
        "channel": "C0GENERAL",
        "channel_type": "channel",
        "user": "U0ALICE",
        "text": f"<@{BOT}> please fix the build",
        "ts": "1732611111.000100",
        "event_ts": "1732611111.000100",
    }
    event.update(overrides)
    return event


def _parse(event: dict[str, Any]) -> IncomingMessage | Skip:
    return to_incoming(event, team_id=TEAM, bot_user_id=BOT, received_at=0.0)


def test_a_mention_starts_a_session_keyed_by_its_own_ts() -> None:
    msg = _parse(_event(type="app_mention"))
    assert isinstance(msg, IncomingMessage)
    assert msg.mentions_bot
    assert msg.thread_ts == msg.ts
    assert msg.text == "please fix the build"
    assert thread_key(msg.team_id, msg.channel_id, msg.thread_ts) == (
        "T0SANDBOX:C0GENERAL:1732611111.000100"
    )


def test_the_message_twin_of_a_mention_maps_to_the_same_turn() -> None:
    mention = _parse(_event(type="app_mention"))
    twin = _parse(_event())
    assert isinstance(mention, IncomingMessage)
    assert isinstance(twin, IncomingMessage)
    assert mention.model_dump() == twin.model_dump()


def test_a_thread_reply_without_mention_is_forwarded_to_the_thread() -> None:
    msg = _parse(_event(text="also the tests", thread_ts="1732611000.000001"))
    assert isinstance(msg, IncomingMessage)
    assert not msg.mentions_bot
    assert msg.thread_ts == "1732611000.000001"


def test_a_mention_in_a_thread_someone_else_started_joins_that_thread() -> None:
    """Keyed by the thread's root, not the mention's own ts; and it reads the thread so far."""
    event = load("event_app_mention_in_thread")["event"]
    msg = _parse(event)
    assert isinstance(msg, IncomingMessage)
    assert msg.mentions_bot
    assert (msg.thread_ts, msg.ts) == (event["thread_ts"], event["ts"])
    assert msg.thread_ts != msg.ts
    assert msg.text == "can you make a proper fix?"
    assert joins_thread(msg, turns=0)


def test_a_dm_starts_a_session_without_a_mention() -> None:
    msg = _parse(_event(channel="D0ALICE", channel_type="im", text="hello"))
    assert isinstance(msg, IncomingMessage)
    assert msg.is_dm


def test_a_channel_message_outside_a_thread_without_mention_is_skipped() -> None:
    assert isinstance(_parse(_event(text="just chatting")), Skip)


def test_bot_messages_edits_and_deletions_are_skipped() -> None:
    assert isinstance(_parse(_event(bot_id="B0OTHER")), Skip)
    assert isinstance(_parse(_event(user=BOT)), Skip)
    assert isinstance(_parse(_event(subtype="message_changed")), Skip)
    assert isinstance(_parse(_event(subtype="message_deleted")), Skip)
    assert isinstance(_parse(_event(subtype="channel_join")), Skip)


def test_thread_broadcast_counts_as_a_user_message() -> None:
    msg = _parse(_event(subtype="thread_broadcast", thread_ts="1732611000.000001"))
    assert isinstance(msg, IncomingMessage)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3)
    ),
    max_leaves=10,
)
_fields = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["message", "app_mention", "reaction_added"]) | _json,
        "subtype": st.sampled_from(["message_changed", "thread_broadcast", "bot_message"]) | _json,
        "channel": st.sampled_from(["C0GENERAL", "D0ALICE", ""]) | st.text(max_size=12),
        "channel_type": st.sampled_from(["channel", "im"]) | _json,
        "user": st.sampled_from(["U0ALICE", BOT, ""]) | _json,
        "bot_id": _json,
        "text": st.text() | _json,
        "ts": st.sampled_from(["1732611111.000100", ""]) | _json,
        "thread_ts": st.sampled_from(["1732611000.000001"]) | _json,
        "team": st.text(max_size=12) | _json,
    },
)


@given(_fields)
def test_any_event_shape_is_either_skipped_or_a_valid_turn(event: dict[str, Any]) -> None:
    """Whatever Slack (or an attacker) sends, parsing never raises and never keys badly."""
    result = _parse(event)
    if isinstance(result, IncomingMessage):
        assert result.user_id not in ("", BOT)
        assert thread_key(result.team_id, result.channel_id, result.thread_ts)
        assert result.mentions_bot or result.is_dm or event.get("thread_ts")


def test_a_messages_author_is_their_own_team_not_the_installations() -> None:
    body = {"team_id": TEAM}
    guest = message_actor(_event(team=TEAM, user_team="T0GUEST"), body, home_team=TEAM)
    assert guest.teams == {"T0GUEST"}
    assert message_actor(_event(team="T0OTHER"), body, TEAM).teams == {"T0OTHER"}
    assert message_actor(_event(), body, TEAM).teams == {TEAM}


def test_an_org_member_reported_by_their_org_counts_for_the_workspace() -> None:
    body = {"team_id": TEAM, "enterprise_id": "E0ORG"}
    member = message_actor(_event(user_team="E0ORG"), body, TEAM)
    assert member.teams == {"E0ORG", TEAM}
    other_org = message_actor(_event(user_team="E0ELSE"), body, TEAM)
    assert other_org.teams == {"E0ELSE"}


def test_without_an_allowlist_only_the_installations_team_is_served() -> None:
    rules = Rules(admins=frozenset({"U0ADMIN"}))
    home = Actor("U0ALICE", frozenset({TEAM}), TEAM)
    guest = Actor("U0GUEST", frozenset({"T0GUEST"}), TEAM)
    assert rules.allows(home, "C0GENERAL")
    assert not rules.allows(guest, "C0GENERAL")
    assert not rules.admits(guest)
    assert rules.allows(Actor("U0ADMIN", frozenset({"T0GUEST"}), TEAM), "C0ANY")
    assert Rules(teams=frozenset({TEAM, "T0GUEST"})).admits(guest)


def test_an_interactions_author_is_user_team_id() -> None:
    body = {"user": {"id": "U0GUEST", "team_id": "T0GUEST"}, "team": {"id": TEAM}}
    assert interaction_actor(body, TEAM).teams == {"T0GUEST"}
    assert interaction_actor({"user": {"id": "U1"}, "team": {"id": TEAM}}, TEAM).teams == {TEAM}
    assert interaction_actor({"user": "junk", "team": None}, TEAM).teams == {TEAM}


def test_model_and_repo_in_a_mention_pick_the_sessions_model_and_repository() -> None:
    msg = _parse(_event(text=f"<@{BOT}> model=smart fix the build repo=api"))
    assert isinstance(msg, IncomingMessage)
    assert (msg.model, msg.repo) == ("smart", "api")
    assert msg.text == "fix the build"


def test_a_mention_without_a_choice_leaves_the_defaults() -> None:
    msg = _parse(_event(text=f"<@{BOT}> set the model=  please, and use remodel=x"))
    assert isinstance(msg, IncomingMessage)
    assert (msg.model, msg.repo) == (None, None)
    assert msg.text == "set the model=  please, and use remodel=x"


def test_only_a_mention_picks_a_model_a_plain_reply_keeps_its_words() -> None:
    msg = _parse(_event(text="try model=smart", thread_ts="1732611000.000001"))
    assert isinstance(msg, IncomingMessage)
    assert msg.model is None
    assert msg.text == "try model=smart"


def test_a_model_name_with_other_characters_is_not_a_choice() -> None:
    msg = _parse(_event(text=f"<@{BOT}> model=<@U0EVE> go"))
    assert isinstance(msg, IncomingMessage)
    assert msg.model is None


def test_a_thread_is_keyed_by_the_installations_workspace_not_the_actors() -> None:
    """A Slack Connect guest's shortcut names the guest's team; the token's team wins."""
    context = {"authorize_result": {"team_id": TEAM}, "team_id": "T0GUEST"}
    assert installation_team(context, {"team": {"id": "T0GUEST"}}) == TEAM


def test_an_org_wide_installation_keys_every_thread_by_its_organisation() -> None:
    context = {"enterprise_id": "E0ORG", "is_enterprise_install": True, "team_id": None}
    assert installation_team(context, load("event_mention_org_wide")) == "E0ORG"
    from_payload = {"is_enterprise_install": True}
    assert installation_team(from_payload, load("interaction_shortcut_org_wide")) == "E0ORG"


def test_without_an_installation_the_payloads_team_then_its_org_keys_the_thread() -> None:
    assert installation_team({}, {"team_id": TEAM}) == TEAM
    assert installation_team({}, {"user": {"team_id": TEAM}}) == TEAM
    assert installation_team({}, {"enterprise_id": "E0ORG"}) == "E0ORG"
    assert installation_team({}, {}) == ""


def test_slackbot_is_not_a_person_talking_to_the_agent() -> None:
    notice = load("event_slackbot_dm")["event"]
    assert isinstance(_parse(notice), Skip)


def test_a_payload_that_cannot_be_keyed_is_dropped_as_unexpected() -> None:
    skipped = to_incoming(_event(), team_id="", bot_user_id=BOT, received_at=0.0)
    assert isinstance(skipped, Skip)
    assert skipped.unexpected
    edit = _parse(_event(subtype="message_changed"))
    assert isinstance(edit, Skip)
    assert not edit.unexpected
