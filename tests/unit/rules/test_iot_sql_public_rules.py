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
- [lupyuen] github.com/lupyuen/AWSIOT ``iotrule/*.sql``: rules whose dotted output names
  build a Device Shadow update they republish (written for SQL version beta, with an
  unquoted FROM, quoted here).
- [trash] github.com/hwouu/trash-network-backend
  ``Rule_SQL/ThrashModuleN_DetectFlame_NotFull.sql``.
- [cdk] github.com/aws/aws-cdk ``packages/@aws-cdk/aws-iot-actions/README.md``.
- [cli] github.com/aws/aws-cli ``awscli/examples/iot/create-topic-rule.rst``.
- [copper] github.com/copperinc/plugin-iot-rules ``README.md``.

Where a source writes something the local engine reads otherwise, the case says how it is
restated (a typographic dash, an unquoted FROM, numbers past a double's digits).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import pytest

from cloud.rules.evaluate import Message, evaluate
from cloud.rules.sql import parse
from edge.errors import RuleSqlError

SENML = {
    "e": [
        {"n": "temperature", "u": "Cel", "t": 1234, "v": 22.5},
        {"n": "light", "u": "lm", "t": 1235, "v": 135},
        {"n": "acidity", "u": "pH", "t": 1235, "v": 7},
    ]
}
"""The message of AWS's nested-queries page."""


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
        "lupyuen iotrule/g88_detect_light_on.sql",
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
    # ---- AWS's SQL reference pages
    Case(
        "select: SELECT *",
        "SELECT * FROM 'topic/subtopic'",
        "topic/subtopic",
        {"color": "red", "temperature": 50},
        {"color": "red", "temperature": 50},
    ),
    Case(
        "select: SELECT color",
        "SELECT color FROM 'topic/subtopic'",
        "topic/subtopic",
        {"color": "red", "temperature": 50},
        {"color": "red"},
    ),
    Case(
        "select: AS renames",
        "SELECT color AS my_color FROM 'topic/subtopic'",
        "topic/subtopic",
        {"color": "red", "temperature": 50},
        {"my_color": "red"},
    ),
    Case(
        "select: two items",
        "SELECT color as my_color, temperature as fahrenheit FROM 'topic/subtopic'",
        "topic/subtopic",
        {"color": "red", "temperature": 50},
        {"my_color": "red", "fahrenheit": 50},
    ),
    Case(
        "select: '*' and an item",
        "SELECT *, 15 as speed FROM 'topic/subtopic'",
        "topic/subtopic",
        {"color": "red", "temperature": 50},
        {"color": "red", "temperature": 50, "speed": 15},
    ),
    Case(
        "select: VALUE",
        "SELECT VALUE color FROM 'topic/subtopic'",
        "topic/subtopic",
        {"color": "red", "temperature": 50},
        "red",
    ),
    Case(
        "select: '.' drills into nested objects",
        "SELECT color.red as red_value FROM 'topic/subtopic'",
        "topic/subtopic",
        {"color": {"red": 255, "green": 0, "blue": 0}, "temperature": 50},
        {"red_value": 255},
    ),
    Case(
        "select: functions and grouping (the page's en dash written as '-')",
        "SELECT (temperature - 32) * 5 / 9 AS celsius, upper(color) as my_color "
        "FROM 'topic/subtopic'",
        "topic/subtopic",
        {"color": "red", "temperature": 50},
        {"celsius": 10, "my_color": "RED"},
    ),
    Case(
        "json: get() for names dots cannot read, with double-quoted strings",
        'SELECT * from \'iot/rules\' WHERE get(get(get(mydata,"item2"),"0"),"my-key") = "myValue"',
        "iot/rules",
        {"mydata": {"item2": {"0": {"my-key": "myValue"}}}},
        {"mydata": {"item2": {"0": {"my-key": "myValue"}}}},
    ),
    Case(
        "json: a function on an attribute (the page's FROM topic/# quoted)",
        "SELECT temp, md5(deviceid) AS hashed_id FROM 'topic/#'",
        "topic/x",
        {
            "deviceid": "iot123",
            "temp": 54.98,
            "humidity": 32.43,
            "coords": {"latitude": 47.615694, "longitude": -122.3359976},
        },
        {"temp": 54.98, "hashed_id": "e37f81fb397e595c4aeb5645b8cbbbd1"},
    ),
    Case(
        "nested: SELECT VALUE n FROM e",
        "SELECT (SELECT VALUE n FROM e) as sensors FROM 'my/topic'",
        "my/topic",
        SENML,
        {"sensors": ["temperature", "light", "acidity"]},
    ),
    Case(
        "nested: WHERE inside",
        "SELECT (SELECT v FROM e WHERE n = 'temperature') as temperature FROM 'my/topic'",
        "my/topic",
        SENML,
        {"temperature": [{"v": 22.5}]},
    ),
    Case(
        "nested: flattened with get()",
        "SELECT get((SELECT v FROM e WHERE n = 'temperature'), 0).v as temperature FROM 'topic'",
        "topic",
        SENML,
        {"temperature": 22.5},
    ),
    Case(
        "literals: an object literal",
        "SELECT {'latitude': get(lat_long, 0),'longitude':get(lat_long, 1)} as lat_long "
        "FROM 'topic/subtopic'",
        "topic/subtopic",
        {"lat_long": [47.606, -122.332]},
        {"lat_long": {"latitude": 47.606, "longitude": -122.332}},
    ),
    Case(
        "literals: an array literal",
        "SELECT [lat,long] as lat_long FROM 'topic/subtopic'",
        "topic/subtopic",
        {"lat": 47.696, "long": -122.332},
        {"lat_long": [47.696, -122.332]},
    ),
    Case(
        "reference: the statement the page walks through",
        "SELECT color AS rgb FROM 'topic/subtopic' WHERE temperature > 50",
        "topic/subtopic",
        {"color": "red", "temperature": 100},
        {"rgb": "red"},
    ),
    Case(
        "where: actions not performed, no outgoing payload",
        "SELECT color AS my_color FROM 'a/b' WHERE temperature > 50 AND color <> 'red'",
        "a/b",
        {"color": "red", "temperature": 40},
        None,
    ),
    Case(
        "case: the traffic light",
        "SELECT CASE color WHEN 'green' THEN 'go' WHEN 'yellow' THEN 'caution' WHEN 'red' "
        "THEN 'stop' ELSE 'you are not at a stop light' END as instructions FROM 'a/b'",
        "a/b",
        {"color": "yellow"},
        {"instructions": "caution"},
    ),
    Case(
        "binary: '*' alone passes the bytes",
        "SELECT * FROM 'a/b'",
        "a/b",
        b"\x00\x01\xfe not json",
        b"\x00\x01\xfe not json",
    ),
    Case(
        "binary: encode(*) and a function",
        "SELECT encode(*, 'base64') AS data, timestamp() AS ts FROM 'a/b'",
        "a/b",
        b"\x00\x01",
        {"data": "AAE=", "ts": 1_700_000_000_000},
    ),
    Case(
        "binary: WHERE on a function only (1700000000000 % 12 is 8)",
        "SELECT * FROM 'a/b' WHERE timestamp() % 12 = 0",
        "a/b",
        b"\x00\x01",
        None,
    ),
    Case(
        "binary: decode(encode(*)) reads the payload as JSON",
        "SELECT decode(encode(*, 'base64'), 'base64') AS payload FROM 'topic'",
        "topic",
        {"a": 1},
        {"payload": {"a": 1}},
    ),
    Case(
        "templates: the rule the page republishes",
        "SELECT *, timestamp() AS timestamp FROM 'my/iot/topic'",
        "my/iot/topic",
        {"deviceid": "iot123", "temp": 54.98},
        {"deviceid": "iot123", "temp": 54.98, "timestamp": 1_700_000_000_000},
    ),
    # ---- AWS's rules validation samples (published to AWS IoT Core, output compared)
    Case(
        "validation casting-sensor-payload.json",
        "SELECT temperature, humidity, cast(light as double) as newLight FROM 'test/test4'",
        "test/test4",
        {"temperature": 23.07, "humidity": 49.9397, "light": 5.0},
        {"temperature": 23.07, "humidity": 49.9397, "newLight": 5},
    ),
    Case(
        "validation payload-enrichment-with-functions.json",
        "SELECT *, topic(1) as deviceId, topic(2) as actuatorId, topic(3) as cmd FROM '+/+/+/req'",
        "123/ACT_123/slider/req",
        {"values": [50, 100]},
        {"values": [50, 100], "deviceId": "123", "actuatorId": "ACT_123", "cmd": "slider"},
    ),
    Case(
        # its L1 values have more digits than a double: AWS wrote them back as doubles
        # (36.903999599999999 as 36.9039996), which the local engine does not, so the
        # restatement uses values a double holds exactly
        "validation filter-out-from-input-payload.json",
        "SELECT (SELECT * FROM Pos WHERE L1 <> isNull(SELECT VALUE L1 FROM Pos) ) as "
        "required_array FROM 'test/test3'",
        "test/test3",
        {
            "Pos": [
                {"L1": 36.9039996, "L2": -25.263283700000002, "S": 5},
                {"L1": 36.90399959999998, "L2": -25.263283700000077, "S": 6},
                {"L2": -25.263283700000002, "S": 7},
            ]
        },
        {
            "required_array": [
                {"L1": 36.9039996, "L2": -25.263283700000002, "S": 5},
                {"L1": 36.90399959999998, "L2": -25.263283700000077, "S": 6},
            ]
        },
    ),
    # ---- public rules
    Case(
        "trash ThrashModuleN_DetectFlame_NotFull.sql",
        "SELECT state.reported.name AS deviceId, state.reported.mainUltrasonicSensor AS "
        "mainUltrasonicSensor, state.reported.subUltrasonicSensor AS subUltrasonicSensor, "
        "state.reported.detectFlame AS flameDetected, state.reported.battery AS batteryLevel, "
        "{'desired':{'isFull': 'false','redLED': 'ON'}} as state FROM "
        "'$aws/things/ThrashModuleN/shadow/update/accepted' WHERE "
        'state.reported.name = "ThrashModuleN" AND state.reported.detectFlame > 0 AND '
        "(state.reported.mainUltrasonicSensor > 30 OR state.reported.subUltrasonicSensor > 17)",
        "$aws/things/ThrashModuleN/shadow/update/accepted",
        {
            "state": {
                "reported": {
                    "name": "ThrashModuleN",
                    "mainUltrasonicSensor": 12,
                    "subUltrasonicSensor": 20,
                    "detectFlame": 1,
                    "battery": 87,
                }
            }
        },
        {
            "deviceId": "ThrashModuleN",
            "mainUltrasonicSensor": 12,
            "subUltrasonicSensor": 20,
            "flameDetected": 1,
            "batteryLevel": 87,
            "state": {"desired": {"isFull": "false", "redLED": "ON"}},
        },
    ),
    Case(
        "cdk aws-iot-actions README: republish",
        "SELECT topic(2) as device_id, timestamp() as timestamp, temperature FROM 'device/+/data'",
        "device/dev-7/data",
        {"temperature": 21.5, "humidity": 40},
        {"device_id": "dev-7", "timestamp": 1_700_000_000_000, "temperature": 21.5},
    ),
    Case(
        "cli create-topic-rule: low moisture",
        "SELECT * FROM '$aws/things/MyRPi/shadow/update/accepted' "
        "WHERE state.reported.moisture = 'low'",
        "$aws/things/MyRPi/shadow/update/accepted",
        {"state": {"reported": {"moisture": "low"}}, "version": 3},
        {"state": {"reported": {"moisture": "low"}}, "version": 3},
    ),
    Case(
        "copper README: connect-device",
        "SELECT * FROM '$aws/events/presence/connected/+'",
        "$aws/events/presence/connected/dev-7",
        {"clientId": "dev-7", "eventType": "connected", "timestamp": 1},
        {"clientId": "dev-7", "eventType": "connected", "timestamp": 1},
    ),
    Case(
        "lupyuen iotrule/g88_detect_light_off.sql",
        "SELECT false as state.reported.light_detected, current.state.reported.timestamp as "
        "state.reported.light_off_timestamp FROM '$aws/things/g88pi/shadow/update/documents' "
        "WHERE current.state.reported.lig < 500 AND previous.state.reported.lig >= 500",
        "$aws/things/g88pi/shadow/update/documents",
        {
            "previous": {"state": {"reported": {"lig": 800}}},
            "current": {"state": {"reported": {"lig": 20, "timestamp": "2017-03-04T05:06:07"}}},
        },
        {
            "state": {
                "reported": {"light_detected": False, "light_off_timestamp": "2017-03-04T05:06:07"}
            }
        },
    ),
    Case(
        "lupyuen iotrule/g88_detect_light_fault.sql",
        "SELECT '+6587177328' as phone, 'g88lamppost light is faulty' as message "
        "FROM '$aws/things/g88lamppost/shadow/update/documents' WHERE "
        "current.state.reported.light_detected = false AND ("
        "cast(substring(current.state.reported.timestamp, 11, 13) as int) * 60 * 60 + "
        "cast(substring(current.state.reported.timestamp, 14, 16) as int) * 60 + "
        "cast(substring(current.state.reported.timestamp, 17, 19) as int)) - ("
        "cast(substring(current.state.reported.light_off_timestamp, 11, 13) as int) * 60 * 60 + "
        "cast(substring(current.state.reported.light_off_timestamp, 14, 16) as int) * 60 + "
        "cast(substring(current.state.reported.light_off_timestamp, 17, 19) as int)) >= 30",
        "$aws/things/g88lamppost/shadow/update/documents",
        {
            "current": {
                "state": {
                    "reported": {
                        "light_detected": False,
                        "timestamp": "2017-03-04T05:07:00",
                        "light_off_timestamp": "2017-03-04T05:06:07",
                    }
                }
            }
        },
        {"phone": "+6587177328", "message": "g88lamppost light is faulty"},
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
    if out is None:
        return None
    if isinstance(case.expected, bytes):
        return out.to_bytes()
    return json.loads(out.to_bytes() or b'""')


@pytest.mark.parametrize("case", CASES, ids=[c.source for c in CASES])
def test_public_rule_gives_the_published_output(case: Case) -> None:
    assert output(case) == case.expected


@pytest.mark.parametrize(
    ("source", "sql", "reason"),
    [
        (
            "copper README: report-device-state",
            "SELECT clientid() as clientId, principal() as principalIdentifier, state.reported "
            "as state from '$aws/things/+/shadow/update'",
            "function principal() is not supported locally",
        ),
        (
            "lupyuen iotrule/sigfox_record_sensor_data.sql",
            'SELECT cast((get_thing_shadow("config","arn:aws:iam::595779189490:role/lambda_iot")'
            ".state.reported.sigfox_devices) as String) as test, *, version, topic() as topic, "
            "traceId() as traceId FROM '$aws/things/g88pi/shadow/update/documents'",
            "function get_thing_shadow() is not supported locally",
        ),
    ],
)
def test_public_rules_needing_aws_are_refused_by_name(source: str, sql: str, reason: str) -> None:
    """A public rule reading what only AWS has loads nowhere locally, naming the function."""
    with pytest.raises(RuleSqlError, match=re.escape(reason)):
        parse(sql)
