"""Rules written for AWS IoT, checked against the rows and examples of AWS's own IoT SQL
pages, where an earlier table left a gap.

Sources (read as ``developerguide/*.md`` of ``awsdocs/aws-iot-docs``):

- cast: https://docs.aws.amazon.com/iot/latest/developerguide/iot-sql-functions.html#iot-sql-function-cast
- data types: https://docs.aws.amazon.com/iot/latest/developerguide/iot-sql-data-types.html

Each case reads the value as the evaluator holds it, with its type: an Int and a whole
Decimal write the same JSON but divide differently afterwards.
"""

from __future__ import annotations

import json
import re
from decimal import Context, Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.adapters.local import InMemoryObjectStore, InMemoryPublisher
from cloud.batcher import Batcher, BatcherConfig
from cloud.rules.actions import render_template
from cloud.rules.definitions import parse_template, rules_from_document
from cloud.rules.evaluate import UNDEFINED, Message, evaluate
from cloud.rules.runner import RulesRunner
from cloud.rules.sql import parse
from edge.clock import ManualClock

PAYLOAD = {"w": 10.0, "h": 2.5, "s": "10.0", "f": "2.5", "t": True}


def result(expr: str) -> object:
    out = evaluate(
        parse(f"SELECT {expr} AS r FROM '#'"), Message("t", json.dumps(PAYLOAD).encode())
    )
    assert out is not None and isinstance(out.value, dict)
    return out.value.get("r", UNDEFINED)


def same(got: object, want: object) -> bool:
    return type(got) is type(want) and got == want


# The cast page, "Cast to decimal", row Decimal: "With SQL V2 (2016-03-23), numeric values
# that are whole numbers, such as 10.0, return an Int value (10) instead of the expected
# Decimal value (10.0). To reliably cast whole number numeric values as Decimal values,
# use SQL V1 (2015-10-08)". Double "Casts value to Decimal (with double precision)": the
# same table, the same note.
CAST_TO_DECIMAL = [
    ("cast(10.0 AS Decimal)", 10),
    ("cast(w AS Decimal)", 10),
    ("cast(10 AS Decimal)", 10),
    ("cast(s AS Decimal)", 10),  # String row: parsed as a Decimal, whole
    ("cast(true AS Decimal)", 1),  # Boolean row: true = 1.0
    ("cast(false AS Decimal)", 0),
    ("cast(10.0 AS Decimal) / 4", 2),  # an Int, so Int division (project rule: toward zero)
    ("cast(7 AS Decimal) / 2", 3),
    ("cast(10.0 AS Double)", 10),
    ("cast(t AS Double)", 1),
    ("cast(7 AS Double) / 2", 3),
    # not whole: a Decimal, as before
    ("cast(h AS Decimal)", Decimal("2.5")),
    ("cast(f AS Decimal)", Decimal("2.5")),
    ("cast(h AS Double)", Decimal("2.5")),
    ("cast(0.1 / 0.3 AS Double)", Decimal("0.3333333333333333")),
    # past an Int's 34 digits a whole number stays a Decimal (data types page: Int is
    # "34 digits maximum")
    ("cast(1E+40 AS Decimal)", Decimal("1E+40")),
]


@settings(max_examples=300, deadline=None)
@given(
    st.integers(-(10**34) + 1, 10**34 - 1),  # at most 34 digits: exact, no rounding
    st.integers(0, 6),
    st.sampled_from(["Decimal", "Double"]),
)
def test_a_cast_to_decimal_is_an_int_exactly_when_it_is_whole(
    digits: int, places: int, type_name: str
) -> None:
    """For any number text, ``cast(x AS Decimal)`` is an Int when its value is whole and
    of at most 34 digits, and then divides as one (toward zero); otherwise a Decimal."""
    text = format(Decimal(digits).scaleb(-places, Context(prec=50)), "f")  # plain, exact
    value = Decimal(text) if type_name == "Decimal" else Decimal(repr(float(text)))
    got = result(f"cast('{text}' AS {type_name})")
    halved = result(f"cast('{text}' AS {type_name}) / 2")
    if value == value.to_integral_value() and value.copy_abs() < 10**34:
        assert type(got) is int and got == value, (text, got)
        quotient = abs(int(value)) // 2 * (1 if value >= 0 else -1)
        assert type(halved) is int and halved == quotient, (text, halved)
    else:
        assert type(got) is Decimal and got == value, (text, got)
        assert type(halved) is Decimal, (text, halved)


@pytest.mark.parametrize(("expr", "want"), CAST_TO_DECIMAL)
def test_cast_to_decimal_of_a_whole_number_is_an_int_in_2016_03_23(expr: str, want: object) -> None:
    got = result(expr)
    assert same(got, want), (expr, got, want)


def output(sql: str, payload: object, topic: str) -> bytes | None:
    out = evaluate(parse(sql), Message(topic, json.dumps(payload).encode()))
    return None if out is None else out.to_bytes()


COLOR = {"color": "red", "temperature": 50}

# Each page's own examples, verbatim: (page, SQL, payload, topic, outgoing payload or None
# when the actions do not run). Pages under
# https://docs.aws.amazon.com/iot/latest/developerguide/
PAGE_EXAMPLES = [
    ("iot-sql-reference", "SELECT color AS rgb FROM 'topic/subtopic' WHERE temperature > 50",
     {"color": "red", "temperature": 100}, "topic/subtopic", {"rgb": "red"}),
    ("iot-sql-select", "SELECT * FROM 'topic/subtopic'", COLOR, "topic/subtopic", COLOR),
    ("iot-sql-select", "SELECT color FROM 'topic/subtopic'", COLOR, "topic/subtopic",
     {"color": "red"}),
    ("iot-sql-select", "SELECT color AS my_color FROM 'topic/subtopic'", COLOR,
     "topic/subtopic", {"my_color": "red"}),
    ("iot-sql-select",
     "SELECT color as my_color, temperature as fahrenheit FROM 'topic/subtopic'", COLOR,
     "topic/subtopic", {"my_color": "red", "fahrenheit": 50}),
    ("iot-sql-select", "SELECT *, 15 as speed FROM 'topic/subtopic'", COLOR,
     "topic/subtopic", {"color": "red", "temperature": 50, "speed": 15}),
    ("iot-sql-select", "SELECT VALUE color FROM 'topic/subtopic'", COLOR, "topic/subtopic",
     "red"),
    ("iot-sql-select", "SELECT color.red as red_value FROM 'topic/subtopic'",
     {"color": {"red": 255, "green": 0, "blue": 0}, "temperature": 50}, "topic/subtopic",
     {"red_value": 255}),
    ("iot-sql-select",
     "SELECT (temperature - 32) * 5 / 9 AS celsius, upper(color) as my_color "
     "FROM 'topic/subtopic'", COLOR, "topic/subtopic", {"celsius": 10, "my_color": "RED"}),
    ("iot-sql-where",
     "SELECT color AS my_color FROM 'topic/subtopic' WHERE temperature > 50 AND color <> 'red'",
     {"color": "red", "temperature": 40}, "topic/subtopic", None),
    ("iot-sql-from", "SELECT temperature AS t FROM 'topic/subtopic'", {"temperature": 50},
     "topic/subtopic", {"t": 50}),
    ("iot-sql-from", "SELECT temperature AS t FROM 'topic/subtopic'", {"temperature": 50},
     "topic/subtopic-2", None),
    ("iot-sql-from", "SELECT temperature AS t FROM 'topic/#'", {"temperature": 50},
     "topic/subtopic", {"t": 50}),
    ("iot-sql-from", "SELECT temperature AS t FROM 'topic/#'", {"temperature": 70},
     "topic/subtopic-3/details", {"t": 70}),
    ("iot-sql-from", "SELECT temperature AS t FROM 'topic/#'", {"temperature": 80},
     "topic-2/subtopic-x", None),
    ("iot-sql-from", "SELECT temperature AS t FROM 'topic/+'", {"temperature": 60},
     "topic/subtopic-2", {"t": 60}),
    ("iot-sql-from", "SELECT temperature AS t FROM 'topic/+'", {"temperature": 70},
     "topic/subtopic-3/details", None),
    ("iot-sql-literals",
     "SELECT {'latitude': get(lat_long, 0),'longitude':get(lat_long, 1)} as lat_long "
     "FROM 'topic/subtopic'", {"lat_long": [47.606, -122.332]}, "topic/subtopic",
     {"lat_long": {"latitude": 47.606, "longitude": -122.332}}),
    # the page prints 47.606 for a payload of 47.696: a typo; the value is the payload's
    ("iot-sql-literals", "SELECT [lat,long] as lat_long FROM 'topic/subtopic'",
     {"lat": 47.696, "long": -122.332}, "topic/subtopic", {"lat_long": [47.696, -122.332]}),
    ("iot-rule-sql-version", "SELECT VALUE arr FROM 'topic'",
     {"a": {"b": "c"}, "arr": [1, 2, 3, 4]}, "topic", [1, 2, 3, 4]),
    ("iot-sql-data-types", "SELECT NULL AS n FROM 'topic/subtopic'", {}, "topic/subtopic",
     {"n": None}),
    ("iot-sql-data-types", "SELECT foo, bar FROM 'topic/subtopic'", {"foo": None},
     "topic/subtopic", {"foo": None}),
    ("iot-sql-json", "SELECT temp, md5(deviceid) AS hashed_id FROM 'topic/#'",
     {"deviceid": "iot123", "temp": 54.98, "humidity": 32.43}, "topic/x",
     {"temp": 54.98, "hashed_id": "e37f81fb397e595c4aeb5645b8cbbbd1"}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("page", "sql", "payload", "topic", "want"),
    PAGE_EXAMPLES,
    ids=[f"{e[0]}: {e[1][:60]} on {e[3]}" for e in PAGE_EXAMPLES],
)
def test_the_pages_examples_give_their_outgoing_payloads(
    page: str, sql: str, payload: object, topic: str, want: object
) -> None:
    got = output(sql, payload, topic)
    if want is None:
        assert got is None, page
    else:
        assert got is not None and json.loads(got) == want, page


# The data types page's conversion tables, "when a value of the incorrect type is given to
# a function", each row read through a function or operator that asks for that type:
# To decimal through abs() and -, To int through bitand() (rounded down there), To Boolean
# through AND, To string through concat() and +.
CONVERSIONS = [
    # To decimal
    ("To decimal: Int", "abs(-5)", 5),
    ("To decimal: Decimal", "abs(-5.5)", Decimal("5.5")),
    ("To decimal: Boolean -> Undefined", "abs(true)", UNDEFINED),
    ("To decimal: String", "abs('-5.123')", Decimal("5.123")),  # the page's own example
    ("To decimal: String 5E-12", "'5E-12' * 1", Decimal("5E-12")),
    ("To decimal: String not a number", "'5 m' - 1", UNDEFINED),
    ("To decimal: String E+ is not the pattern", "'5E+3' - 1", UNDEFINED),
    ("To decimal: Array", "[1] - 1", UNDEFINED),
    ("To decimal: Object", "{'a': 1} - 1", UNDEFINED),
    ("To decimal: Null -> Null", "NULL - 1", None),
    ("To decimal: Undefined", "nope - 1", UNDEFINED),
    # To int (bitand: "all non-Int numbers are rounded down to the nearest Int")
    ("To int: Int", "bitand(7, 7)", 7),
    ("To int: Decimal", "bitand(7.9, 7)", 7),
    ("To int: Boolean -> Undefined", "bitand(true, 7)", UNDEFINED),
    ("To int: String", "bitand('6.5', 7)", 6),
    ("To int: Array", "bitand([7], 7)", UNDEFINED),
    ("To int: Object", "bitand({'a': 7}, 7)", UNDEFINED),
    ("To int: Undefined", "bitand(nope, 7)", UNDEFINED),
    # To Boolean
    ("To Boolean: Int -> Undefined", "1 AND true", UNDEFINED),
    ("To Boolean: Decimal -> Undefined", "1.5 AND true", UNDEFINED),
    ("To Boolean: Boolean", "true AND true", True),
    ("To Boolean: String true, any case", "'TrUe' AND true", True),
    ("To Boolean: String false", "'FALSE' OR false", False),
    ("To Boolean: other String -> Undefined", "'yes' AND true", UNDEFINED),
    ("To Boolean: Array", "[true] AND true", UNDEFINED),
    ("To Boolean: Object", "{'a': true} AND true", UNDEFINED),
    ("To Boolean: Null -> Undefined", "NULL AND true", UNDEFINED),
    ("To Boolean: Undefined", "nope AND true", UNDEFINED),
    # To string
    ("To string: Int", "concat(12, 'x')", "12x"),
    ("To string: Decimal", "concat(1.5, 'x')", "1.5x"),
    ("To string: Decimal, scientific", "concat(1E+40, 'x')", "1E+40x"),
    ("To string: Boolean, lowercase", "concat(true, 'x')", "truex"),
    ("To string: String", "concat('a', 'x')", "ax"),
    ("To string: Array, JSON", "'' + ['a', 1, true, NULL]", '["a",1,true,null]'),
    ("To string: Object, JSON", "'' + {'k': 'v', 'n': NULL}", '{"k":"v","n":null}'),
    ("To string: Null -> Undefined", "concat(NULL, 'x')", UNDEFINED),
    ("To string: Undefined", "concat(nope, 'x')", UNDEFINED),
]


@pytest.mark.parametrize(("row", "expr", "want"), CONVERSIONS, ids=[c[0] for c in CONVERSIONS])
def test_the_data_types_conversion_tables(row: str, expr: str, want: object) -> None:
    got = result(expr)
    assert same(got, want), (row, expr, got, want)


def republished(rule: dict, topic: str, payload: object) -> list[tuple[str, object]]:
    """What the rule republishes for one message: (topic, JSON payload) pairs."""
    doc = {"rules": [{"ruleName": "r", "topicRulePayload": rule}]}
    clock = ManualClock(1579637878.451)
    publisher = InMemoryPublisher()
    runner = RulesRunner(
        "mqtt://127.0.0.1:1",
        rules_from_document(doc),
        Batcher(InMemoryObjectStore(), BatcherConfig(), clock),
        clock,
        republisher=publisher,
    )
    runner.handle(topic, json.dumps(payload).encode())
    return [(t, json.loads(body)) for t, body, _qos in publisher.published]


def test_the_substitution_templates_page_example() -> None:
    """https://docs.aws.amazon.com/iot/latest/developerguide/iot-substitution-templates.html:
    ``${topic()}/republish`` on a message to ``my/iot/topic`` republishes the payload plus
    the rules engine's ``timestamp`` to ``my/iot/topic/republish``."""
    payload = {
        "deviceid": "iot123",
        "temp": 54.98,
        "humidity": 32.43,
        "coords": {"latitude": 47.615694, "longitude": -122.3359976},
    }
    rule = {
        "sql": "SELECT *, timestamp() AS timestamp FROM 'my/iot/topic'",
        "ruleDisabled": False,
        "awsIotSqlVersion": "2016-03-23",
        "actions": [{"republish": {"topic": "${topic()}/republish", "roleArn": "arn"}}],
    }
    assert republished(rule, "my/iot/topic", payload) == [
        ("my/iot/topic/republish", {**payload, "timestamp": 1579637878451})
    ]


@pytest.mark.parametrize(
    ("template", "sent"),
    [
        # the functions page: parse_time() "can also be used as a substitution template"
        ("y/${parse_time('yyyy', timestamp(), 'UTC')}", "y/2020"),
        # any expression, read from the original payload, never from SELECT's aliases
        ("d/${deviceid}/${upper(deviceid)}", "d/iot123/IOT123"),
        ("d/${alias}", "d/"),
        ("d/${coords.latitude}/${temp * 2}", "d/47.615694/109.96"),
        ("d/${get(*, 'deviceid')}/${topic(2)}", "d/iot123/iot"),
        # the republish page: "$$" for a topic that begins with "$"
        ("$$aws/things/${deviceid}/shadow/update", "$aws/things/iot123/shadow/update"),
    ],
)
def test_a_template_is_any_expression_on_the_original_message(template: str, sent: str) -> None:
    """The substitution templates page: "expression can be any expression supported by
    AWS IoT in SELECT clauses, WHERE clauses", but "you cannot reference an alias created
    using the AS clause"."""
    rule = {
        "sql": "SELECT deviceid AS alias FROM 'my/iot/topic'",
        "awsIotSqlVersion": "2016-03-23",
        "actions": [{"republish": {"topic": template}}],
    }
    payload = {"deviceid": "iot123", "temp": 54.98, "coords": {"latitude": 47.615694}}
    assert republished(rule, "my/iot/topic", payload) == [(sent, {"alias": "iot123"})]


def test_the_error_action_pages_key_template() -> None:
    """https://docs.aws.amazon.com/iot/latest/developerguide/rule-error-handling.html: the
    errorAction's S3 key ``${replace(topic(), '/', '-') + '-' + timestamp() + '-' +
    newuuid()}``: ``+`` with a String operand concatenates (the operators page)."""
    template = parse_template("${replace(topic(), '/', '-') + '-' + timestamp() + '-' + newuuid()}")
    key = render_template(template, Message("testme/action", b"{}", timestamp_ms=1511213971966))
    assert re.fullmatch(
        r"testme-action-1511213971966-[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", key
    )
