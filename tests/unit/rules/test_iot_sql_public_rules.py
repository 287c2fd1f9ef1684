"""Rule SQL published by AWS and in public samples, restated with its message and the output
AWS gives for it (or, where the source gives none, the output its source says it is for).

Sources, cited on each case:

- [select] https://docs.aws.amazon.com/iot/latest/developerguide/iot-sql-select.html
- [json] https://docs.aws.amazon.com/iot/latest/developerguide/iot-sql-json.html
- [nested] https://docs.aws.amazon.com/iot/latest/developerguide/iot-sql-nested-queries.html
- [literals] https://docs.aws.amazon.com/iot/latest/developerguide/iot-sql-literals.html
- [reference] https://docs.aws.amazon.com/iot/latest/developerguide/iot-sql-reference.html
- [where] https://docs.aws.amazon.com/iot/latest/developerguide/iot-sql-where.html
- [case] https://docs.aws.amazon.com/iot/latest/developerguide/iot-sql-case.html
- [functions] https://docs.aws.amazon.com/iot/latest/developerguide/iot-sql-functions.html
- [binary] https://docs.aws.amazon.com/iot/latest/developerguide/binary-payloads.html
- [templates] https://docs.aws.amazon.com/iot/latest/developerguide/iot-substitution-templates.html
- [validation] github.com/aws-iot-builder-tools/validation-tool-for-aws-iot-rules,
  ``validation/validation-data/*.json``: each case there is published to AWS IoT Core by
  the tool's test and its output compared, so its expected output is what AWS gave.
- [lupyuen] github.com/lupyuen/AWSIOT ``iotrule/g88_detect_light_on.sql``: a rule whose
  dotted output names build a Device Shadow update it republishes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from cloud.rules.evaluate import Message, evaluate
from cloud.rules.sql import parse


@dataclass(frozen=True)
class Case:
    source: str
    sql: str
    topic: str
    payload: Any
    expected: Any
    """The output as JSON reads it back; None when WHERE does not pass."""


CASES = [
    # ---- dotted output names nest the output
    Case(
        "validation undefined-function-check-payload.json",
        "SELECT state.debug AS state.debug, state.command AS state.command, version "
        "FROM 'test/test6' WHERE IsUndefined(state.debug) = False OR "
        "IsUndefined(state.command) = False",
        "test/test6",
        {"state": {"command": "DOOR_OPEN", "debug": "FALSE"}, "version": "3.1"},
        {"state": {"debug": "FALSE", "command": "DOOR_OPEN"}, "version": "3.1"},
    ),
    Case(
        "json: SELECT foo.bar AS bar.baz",
        "SELECT foo.bar AS bar.baz FROM 'topic/subtopic'",
        "topic/subtopic",
        {"foo": {"bar": "RED", "bar1": "GREEN", "bar2": "BLUE"}},
        {"bar": {"baz": "RED"}},
    ),
    Case(
        "lupyuen g88_detect_light_on.sql (SQL version beta there)",
        "SELECT true as state.reported.light_detected, current.state.reported.timestamp as "
        "state.reported.light_on_timestamp FROM '$aws/things/g88pi/shadow/update/documents' "
        "WHERE current.state.reported.lig >= 500 AND previous.state.reported.lig < 500",
        "$aws/things/g88pi/shadow/update/documents",
        {
            "previous": {"state": {"reported": {"lig": 20, "timestamp": 1}}},
            "current": {"state": {"reported": {"lig": 800, "timestamp": 2}}},
        },
        {"state": {"reported": {"light_detected": True, "light_on_timestamp": 2}}},
    ),
    # ---- '*' as a value: a nested SELECT FROM *, *.name, * AS name
    Case(
        "validation include-topic-and-transform.json",
        "SELECT get((SELECT *, topic() as topic FROM *),0) as data FROM 'test/test1'",
        "test/test1",
        {"foo": "bar"},
        {"data": {"foo": "bar", "topic": "test/test1"}},
    ),
    Case(
        "validation select-value-test-data.json",
        "SELECT VALUE *.messages FROM 'test/test2'",
        "test/test2",
        {"messages": [{"message": "a"}, {"message": "b"}]},
        [{"message": "a"}, {"message": "b"}],
    ),
    Case(
        "json: '*' creates a new JSON object containing the message data, under a name",
        "SELECT * as payload, topic() as topic FROM '#'",
        "dt/a/b",
        {"t": 1, "m": {"v": 2}},
        {"payload": {"t": 1, "m": {"v": 2}}, "topic": "dt/a/b"},
    ),
]


def output(case: Case) -> Any:
    body = case.payload if isinstance(case.payload, bytes) else json.dumps(case.payload).encode()
    message = Message(case.topic, body, client_id="client-1", timestamp_ms=1_700_000_000_000)
    out = evaluate(parse(case.sql), message)
    return None if out is None else json.loads(out.to_bytes() or b'""')


@pytest.mark.parametrize("case", CASES, ids=[c.source for c in CASES])
def test_public_rule_gives_the_published_output(case: Case) -> None:
    assert output(case) == case.expected
