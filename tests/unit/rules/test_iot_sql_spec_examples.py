"""Every example of iot-core-rules-and-limits §1 (IoT SQL), as ``plantwatch rules eval``
prints its action's message: the statement, the payload, and the exact output bytes (b""
when the rule does not fire)."""

from __future__ import annotations

import base64
import json
import re

import pytest

from cloud.cli.main import main

TOPIC = "dt/plantwatch/s1/dev7/telemetry"
FROM = "FROM 'dt/plantwatch/+/+/telemetry'"
P = '{"t":21.5,"m":{"v":40},"arr":[1,2]}'
"""§1.2's payload."""


def rules_eval(
    sql: str, payload: str, capsysbinary: pytest.CaptureFixture[bytes], topic: str = TOPIC
) -> bytes:
    code = main(["rules", "eval", "--sql", sql, "--topic", topic, "--payload", payload])
    out, err = capsysbinary.readouterr()
    assert code == 0, err
    return out


@pytest.mark.parametrize(
    ("sql", "payload", "printed"),
    [
        # §1.1: the rule's statement; 2016-03-23 writes whole numbers such as 10.0 as Int 10
        (f"SELECT temp {FROM}", '{"temp": 21}', b'{"temp":21}'),
        (f"SELECT t {FROM}", '{"t": 10.0}', b'{"t":10}'),
        # §1.2's table, on its payload
        (f"SELECT * {FROM}", P, P.encode()),
        (f"SELECT t {FROM}", P, b'{"t":21.5}'),
        (f"SELECT t AS temp {FROM}", P, b'{"temp":21.5}'),
        (f"SELECT *, 15 AS speed {FROM}", P, b'{"t":21.5,"m":{"v":40},"arr":[1,2],"speed":15}'),
        (f"SELECT m.v AS moist {FROM}", P, b'{"moist":40}'),
        (f"SELECT get(arr, 0) AS first {FROM}", P, b'{"first":1}'),
        (f"SELECT VALUE t {FROM}", P, b"21.5"),
        (f"SELECT [t, m.v] AS pair {FROM}", P, b'{"pair":[21.5,40]}'),
        # §1.2's prose: get() for names a path cannot spell, spaces through *, last segment
        (f"SELECT get(*, 'serial.no') AS s {FROM}", '{"serial.no": "A1"}', b'{"s":"A1"}'),
        (f"SELECT get(m, 'my-key') AS k {FROM}", '{"m": {"my-key": 3}}', b'{"k":3}'),
        (f"SELECT * {FROM}", '{"a b": 1}', b'{"a b":1}'),
        (f"SELECT m.v {FROM}", P, b'{"v":40}'),
        (
            f"SELECT (SELECT v FROM e WHERE n = 'temperature') AS t {FROM}",
            '{"e": [{"n": "temperature", "v": 22.5}, {"n": "light", "v": 135}]}',
            b'{"t":[{"v":22.5}]}',
        ),
        # §1.3: WHERE before SELECT; actions only on Boolean true
        *[
            (
                f"SELECT topic(4) AS thing, moisture {FROM} WHERE moisture < 20",
                payload,
                printed,
            )
            for payload, printed in [
                ('{"moisture": 12}', b'{"thing":"dev7","moisture":12}'),
                ('{"moisture": 40}', b""),
                ("{}", b""),
                ('{"moisture": "dry"}', b""),
            ]
        ],
        (f"SELECT * {FROM} WHERE NULL", "{}", b""),
        (f"SELECT * {FROM} WHERE nope", "{}", b""),
        (f"SELECT * {FROM} WHERE false", "{}", b""),
        # §1.4: literals; Undefined omitted; VALUE of Undefined an empty string; Null kept
        (
            f"SELECT 'abc' AS s, 42 AS i, 4.2 AS d, 5E-12 AS e, true AS b, NULL AS n, "
            f"{{'a': 1}} AS o, [1, 2] AS l {FROM}",
            "{}",
            b'{"s":"abc","i":42,"d":4.2,"e":5E-12,"b":true,"n":null,"o":{"a":1},"l":[1,2]}',
        ),
        (f"SELECT a, b {FROM}", '{"a": 1}', b'{"a":1}'),
        (f"SELECT VALUE b {FROM}", '{"a": 1}', b'""'),
        (f"SELECT x {FROM}", '{"x": null}', b'{"x":null}'),
        # §1.4 conversions: numeric strings, "true"/"false" any case, numbers not Boolean,
        # Null stays Null in arithmetic, arrays and objects only to a JSON string
        (
            f"SELECT '-1.2' * 1 AS a, '5E-12' * 1 AS b, '0' * 1 AS c {FROM}",
            "{}",
            b'{"a":-1.2,"b":5E-12,"c":0}',
        ),
        (f"SELECT VALUE 'FALSE' OR 'true' {FROM}", "{}", b"true"),
        (f"SELECT 1 AND true AS x, [1] > 0 AS y, n + 1 AS z {FROM}", '{"n": null}', b'{"z":null}'),
        (f"SELECT cast([1, 'a'] AS String) AS s {FROM}", "{}", b'{"s":"[1,\\"a\\"]"}'),
        # §1.5: operators
        (
            f"SELECT 'a' + 1 AS x, 1 + '2' AS y, 1 + 2 AS i, 1 + 0.5 AS d {FROM}",
            "{}",
            b'{"x":"a1","y":"12","i":3,"d":1.5}',
        ),
        (
            f"SELECT 7 / 2 AS a, -7 / 2 AS b, 7 % 3 AS c, '7' % 2 AS d, 1 / 0 AS z {FROM}",
            "{}",
            b'{"a":3,"b":-3,"c":1,"d":1}',
        ),
        (
            f"SELECT [1, 2] = [2, 1] AS a, {{'a': 1, 'b': 2}} = {{'b': 2, 'a': 1}} AS o, "
            f"1 = 1.0 AS n, 1 = '1' AS t, 1 <> '1' AS u, nope = 1 AS x {FROM}",
            "{}",
            b'{"a":false,"o":true,"n":true,"t":false,"u":true}',
        ),
        (
            f"SELECT NOT 1 > 2 AND true AS a, 2 + 3 * 4 AS b, -2 * 3 AS c, "
            f"(true OR false) AND false AS d {FROM}",
            "{}",
            b'{"a":true,"b":14,"c":-6,"d":false}',
        ),
        # §1.6: functions
        (
            f"SELECT topic(4) AS t4, topic(9) AS t9, clientid() AS c {FROM}",
            "{}",
            b'{"t4":"dev7","c":"n/a"}',
        ),
        (f"SELECT get(arr, 5) AS g, get('abc', 1) AS s {FROM}", P, b'{"s":"b"}'),
        (
            f"SELECT cast(true AS Int) AS a, cast(NULL AS Int) AS b, cast(-10.7 AS Int) AS c, "
            f"cast('1' AS Boolean) AS d, cast(0 AS Bool) AS e {FROM}",
            "{}",
            b'{"a":1,"c":-10,"e":false}',
        ),
        (
            f"SELECT isUndefined(nope) AS a, isNull(nope) AS b, isNull(NULL) AS c {FROM}",
            "{}",
            b'{"a":true,"b":false,"c":true}',
        ),
        (
            f"SELECT abs(-3) AS a, abs(-2.5) AS b, abs('-2') AS c, abs(true) AS d {FROM}",
            "{}",
            b'{"a":3,"b":2.5,"c":2}',
        ),
        (
            f"SELECT round(1.5) AS a, round(-1.5) AS b, floor(-1.2) AS c, ceil(-1.2) AS d {FROM}",
            "{}",
            b'{"a":2,"b":-2,"c":-2,"d":-1}',
        ),
        (
            f"SELECT concat(arr, [3], 4) AS a, concat() AS b, concat(m) AS c, concat('x', 1) AS d "
            f"{FROM}",
            P,
            b'{"a":[1,2,3,4],"c":{"v":40},"d":"x1"}',
        ),
        (f"SELECT lower(12) AS a, upper(true) AS b {FROM}", "{}", b'{"a":"12","b":"TRUE"}'),
        (
            f"SELECT substring('hello', 1, 3) AS a, substring('hello', 3, 1) AS b, "
            f"substring('hello', -2, 99) AS c {FROM}",
            "{}",
            b'{"a":"el","b":"","c":"hello"}',
        ),
        (f"SELECT startswith(12, 1) AS a, startswith(NULL, 'a') AS b {FROM}", "{}", b'{"a":true}'),
        (f"SELECT decode(encode(*, 'base64'), 'base64').t AS temp {FROM}", P, b'{"temp":21.5}'),
        (
            f"SELECT encode(*, 'base64') AS p {FROM}",
            P,
            b'{"p":"' + base64.b64encode(P.encode()) + b'"}',
        ),
        # §1.7: non-JSON payloads
        (f"SELECT * {FROM}", "hello world", b"hello world"),
        (f"SELECT a {FROM}", "hello world", b"{}"),
        (f"SELECT VALUE decode(encode(*, 'base64'), 'base64') {FROM}", "80", b"80"),
    ],
)
def test_spec_example(
    sql: str, payload: str, printed: bytes, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    assert rules_eval(sql, payload, capsysbinary) == (printed + b"\n" if printed else b"")


@pytest.mark.parametrize(
    ("topic", "fires"),
    [("sensor/", True), ("sensor/a", True), ("sensor/a/b", True), ("sensor", False)],
)
def test_spec_multi_level_wildcard_follows_aws(
    topic: str, fires: bool, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    """§1.3: ``sensor/#`` matches ``sensor/``, ``sensor/a``, ``sensor/a/b``, not ``sensor``."""
    out = rules_eval("SELECT * FROM 'sensor/#'", '{"a":1}', capsysbinary, topic=topic)
    assert out == (b'{"a":1}\n' if fires else b"")


def test_spec_envelope_functions(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    """§1.6: timestamp() is Int milliseconds; newuuid() a UUID; parse_time's example; §1.7's
    wrapping of a binary payload for the Lambda action."""
    sql = (
        "SELECT encode(*, 'base64') AS data, timestamp() AS ts, newuuid() AS id, "
        "parse_time('yyyy-MM-dd', timestamp()) AS day FROM 'a/b'"
    )
    doc = json.loads(rules_eval(sql, "\x01binary", capsysbinary, topic="a/b"))
    assert doc["data"] == base64.b64encode(b"\x01binary").decode()
    assert isinstance(doc["ts"], int) and doc["ts"] > 1_700_000_000_000
    assert re.fullmatch(
        r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", doc["id"]
    )
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", doc["day"])


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELECT arr[0] AS x FROM 'a'", "use get(x, n)"),
        ("SELECT aws_lambda('arn', *) AS x FROM 'a'", "aws_lambda() is not supported locally"),
        ("SELECT t FROM 'a' -- note", "comments are not allowed"),
        ("SELECT t FROM 'a' WHERE t != 1", "use '<>'"),
    ],
)
def test_spec_refusals_exit_2_with_one_line(
    sql: str, message: str, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    code = main(["rules", "eval", "--sql", sql, "--topic", "a", "--payload", "{}"])
    out, err = capsysbinary.readouterr()
    assert code == 2 and out == b""
    assert err.count(b"\n") == 1 and message.encode() in err
