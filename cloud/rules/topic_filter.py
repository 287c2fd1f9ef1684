"""MQTT topic filters with AWS IoT rule semantics.

Unlike the MQTT spec, ``sensor/#`` does not match ``sensor`` in an IoT rule's FROM clause
(it matches ``sensor/``, ``sensor/a``, ``sensor/a/b``); the local evaluator follows AWS,
whatever the broker does. A filter IoT Core would refuse (spec §2: over 256 bytes or 7
slashes, or a reserved ``$`` topic other than ``$aws/...``) is refused at load: a rule on
it never runs on AWS, and locally it would (``$SYS/#`` on mosquitto).
"""

from __future__ import annotations

from edge.errors import RuleSqlError
from edge.wire import iot_core_topic_problem, split_basic_ingest

MAX_TOPIC_BYTES = 256


def validate_filter(topic_filter: str, position: int | None = None) -> str:
    """Return the filter unchanged, or raise RuleSqlError saying which level is wrong."""
    if not topic_filter:
        raise RuleSqlError("FROM: the topic filter is empty", position=position)
    try:
        size = len(topic_filter.encode("utf-8"))
    except UnicodeEncodeError:
        raise RuleSqlError(
            "FROM: the topic filter is not UTF-8 (a lone surrogate)", position=position
        ) from None
    if "\x00" in topic_filter:  # MQTT-4.7.3-2: a broker closes the subscriber's connection
        raise RuleSqlError("FROM: the topic filter contains U+0000", position=position)
    ingest = split_basic_ingest(topic_filter)  # its $aws/rules/<rule>/ prefix not counted
    if ingest is not None:
        size = len(ingest[1].encode("utf-8"))
    if size > MAX_TOPIC_BYTES:
        raise RuleSqlError(
            f"FROM: the topic filter is longer than {MAX_TOPIC_BYTES} bytes", position=position
        )
    if topic_filter.startswith("$") and not topic_filter.startswith("$aws/"):
        # $share/<group>/... included: the runner makes its own shared subscriptions
        raise RuleSqlError(
            f"FROM: {topic_filter[:64]!r} is a reserved topic (only $aws/... ones are usable)",
            position=position,
        )
    problem = iot_core_topic_problem(topic_filter)  # over 7 slashes, Basic Ingest aside
    if problem is not None:
        raise RuleSqlError(f"FROM: {problem}", position=position)
    levels = topic_filter.split("/")
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != len(levels) - 1):
            raise RuleSqlError(
                f"FROM: '#' must be a whole level and the last one in {topic_filter!r}",
                position=position,
            )
        if "+" in level and level != "+":
            raise RuleSqlError(
                f"FROM: '+' must be a whole level in {topic_filter!r}", position=position
            )
    return topic_filter


def topic_matches(topic_filter: str, topic: str) -> bool:
    """AWS IoT rule matching of *topic* against *topic_filter*."""
    f_levels = topic_filter.split("/")
    t_levels = topic.split("/")
    if topic.startswith("$") and f_levels[0] in ("+", "#"):
        return False
    for i, level in enumerate(f_levels):
        if level == "#":
            return len(t_levels) > i
        if i >= len(t_levels):
            return False
        if level != "+" and level != t_levels[i]:
            return False
    return len(t_levels) == len(f_levels)
