"""The model reads a message as people do in Slack: names for the people and channels it
mentions (looked up with users.info and conversations.info), link labels, entities unescaped."""

from __future__ import annotations

from tests.integration.harness import BOT_MENTION, Harness, eventually, plan_step


def test_mentions_links_and_entities_reach_the_model_as_people_read_them(
    harness: Harness,
) -> None:
    harness.script(plan_step("read it"), {"text": "Understood."})
    harness.post(
        f"{BOT_MENTION} ask <@U0BOB> in <#C0GENERAL>: is a &lt; b &amp;&amp; "
        "<https://example.com/x|the spec> right? (markup-4242)"
    )
    request = eventually(
        lambda: next(iter(harness.requests_mentioning("markup-4242")), None),
        what="a model request with the message",
    )
    text = next(str(m["content"]) for m in request["messages"] if "markup-4242" in str(m))
    assert "ask @bob in #general: is a < b && the spec (https://example.com/x) right?" in text
