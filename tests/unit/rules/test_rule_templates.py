"""Substitution templates (iot-core-rules-and-limits §1.8): ``${expr}`` in an action field is
evaluated against the original message, whatever text, quotes and braces surround it or
sit inside it; ``$$`` is ``$``."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.rules.actions import render_template, render_topic_template
from cloud.rules.definitions import parse_template
from cloud.rules.evaluate import Message

TOPIC = "dt/plantwatch/s1/dev7/telemetry"
MESSAGE = Message(TOPIC, b'{"a": {"b": 3}, "s": "x}y"}', "client-1", 42)
TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12)


def _literal(text: str) -> tuple[str, str]:
    return text.replace("$", "$$"), text


def _string(text: str) -> tuple[str, str]:
    quote = "'" if len(text) % 2 else '"'
    return "${" + quote + text.replace(quote, quote * 2) + quote + "}", text


def _topic(level: int) -> tuple[str, str]:
    levels = TOPIC.split("/")
    return f"${{topic({level})}}", levels[level - 1] if 1 <= level <= len(levels) else ""


PART = st.one_of(
    TEXT.map(_literal),
    TEXT.map(_string),
    st.integers(-1, 9).map(_topic),
    st.sampled_from(
        [
            ("${a.b * 2}", "6"),
            ("${s}", "x}y"),
            ("${concat('{', topic(4), '}')}", "{dev7}"),
            ("${get(*, 'a').b}", "3"),
            ("${clientid()}", "client-1"),
            ("${timestamp()}", "42"),
            ("${upper(concat(s, '}'))}", "X}Y}"),
        ]
    ),
)


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(PART, max_size=6))
def test_a_template_renders_each_part_in_turn(parts: list[tuple[str, str]]) -> None:
    template = "".join(text for text, _ in parts)
    expected = "".join(value for _, value in parts)
    assert render_template(parse_template(template), MESSAGE) == expected


TOPIC_PART = st.one_of(
    TEXT.map(lambda text: _literal(text)[0]),
    st.integers(-2, 12).map(lambda n: f"${{topic({n})}}"),
    st.just("${topic()}"),
)


@settings(max_examples=200, deadline=None)
@given(
    parts=st.lists(TOPIC_PART, max_size=5),
    topic=st.lists(st.text(alphabet="ab/é", max_size=4), min_size=1, max_size=9).map("/".join),
)
def test_a_topic_only_template_renders_from_the_topic_alone_as_from_the_message(
    parts: list[str], topic: str
) -> None:
    """The forwarding path renders a partition key without building the message."""
    template = parse_template("".join(parts))
    expected = render_template(template, Message(topic, b"{}", "c", 1))
    assert render_topic_template(template, topic) == expected


def test_a_template_reading_the_message_is_not_rendered_from_the_topic() -> None:
    for text in ("${clientid()}", "${topic(4)}-${seq}", "${topic(1 + 1)}"):
        assert render_topic_template(parse_template(text), TOPIC) is None
