"""IoT SQL functions beyond the pipeline's own, each example of AWS's functions page
(https://docs.aws.amazon.com/iot/latest/developerguide/iot-sql-functions.html) as a test,
plus the argument-type tables' Undefined cases; and the functions that need AWS, refused at
load with their name."""

from __future__ import annotations

import json
import re

import pytest

from cloud.rules.compiled import compile_statement
from cloud.rules.evaluate import Message, RuleOutput, evaluate
from cloud.rules.sql import parse
from edge.errors import RuleSqlError

TOPIC = "things/myThings/thingOne"
MISSING = object()


def value(expr: str, payload: bytes = b'{"n": null, "s": "dry"}') -> object:
    """``SELECT expr AS x`` read back from its action's JSON; MISSING when Undefined left
    the key out."""
    out = evaluate(parse(f"SELECT {expr} AS x FROM '#'"), Message(TOPIC, payload))
    assert out is not None
    return json.loads(out.to_bytes()).get("x", MISSING)


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("abs(-5)", 5),
        ("acos(0)", 1.5707963267948966),
        ("asin(0)", 0),  # AWS writes 0.0; 2016-03-23 writes whole numbers as Ints (spec §1.1)
        ("atan(0)", 0),
        ("atan2(1, 0)", 1.5707963267948966),
        ("bitand(13, 5)", 5),
        ("bitor(8, 5)", 13),
        ("bitxor(13, 5)", 8),
        ("cast(true as Int)", 1),
        ("ceil(1.2)", 2),
        ("ceil(-1.2)", -1),
        ("chr(65)", "A"),
        ("chr(49)", "1"),
        ("concat([1, 2, 3], 4)", [1, 2, 3, 4]),
        ("concat([1, 2, 3], 'hello')", [1, 2, 3, "hello"]),
        ("concat('con', 'cat')", "concat"),
        ("concat(1, 'hello')", "1hello"),
        ("concat('he', 'is', 'man')", "heisman"),
        ("concat([1, 2, 3], 'hello', [4, 5, 6])", [1, 2, 3, "hello", 4, 5, 6]),
        ("cos(0)", 1),
        ("cosh(2.3)", 5.037220649268761),
        ("endswith('cat', 'at')", True),
        ("exp(1)", 2.718281828459045),
        ("floor(1.2)", 1),
        ("floor(-1.2)", -2),
        ("get(['a', 'b', 'c'], 1)", "b"),
        ("get({'a': 'b'}, 'a')", "b"),
        ("md2('hello')", "a9046c73e00331af68917d3804f70655"),
        ("md5('hello')", "5d41402abc4b2a76b9719d911017c592"),
        ("indexof('abcd', 'bc')", 1),
        ("isNull(5)", False),
        ("isNull(Null)", True),
        ("isUndefined(5)", False),
        ("isUndefined(floor([1, 2, 3]))", True),
        ("length('hi')", 2),
        ("length(false)", 5),
        ("ln(exp(1))", 1),
        ("log(100)", 2),
        ("lower('HELLO')", "hello"),
        ("lower(['HELLO'])", '["hello"]'),
        ("lpad('hello', 2)", "  hello"),
        ("lpad(1, 3)", "   1"),
        ("rtrim(' h i ')", " h i"),
        ("mod(8, 3)", 2),
        ("nanvl(8, 3)", 8),
        ("numbytes('hi')", 2),
        ("numbytes('€')", 3),
        (
            "parse_time('yyyy.MM.dd G ''at'' HH:mm:ss z', 100000000, 'America/Belize')",
            "1970.01.01 AD at 21:46:40 CST",
        ),
        ("power(2, 5)", 32),
        ("regexp_matches('aaaa', 'a{2,}')", True),
        ("regexp_matches('aaaa', 'b')", False),
        ("regexp_replace('abcd', 'bc', 'x')", "axd"),
        ("regexp_replace('abcd', 'b(.*)d', '$1')", "ac"),
        ("regexp_substr('hihihello', 'hi')", "hi"),
        ("regexp_substr('hihihello', '(hi)*')", "hihi"),
        ("remainder(8, 3)", 2),
        ("replace('abcd', 'bc', 'x')", "axd"),
        ("replace('abcdabcd', 'b', 'x')", "axcdaxcd"),
        ("rpad('hello', 2)", "hello  "),
        ("rpad(1, 3)", "1   "),
        ("round(1.2)", 1),
        ("round(1.5)", 2),
        ("round(1.7)", 2),
        ("round(-1.1)", -1),
        ("round(-1.5)", -2),
        ("sign(-7)", -1),
        ("sign(0)", 0),
        ("sign(13)", 1),
        ("sin(0)", 0),
        ("sinh(2.3)", 4.936961805545957),
        ("substring('012345', 0)", "012345"),
        ("substring('012345', 2)", "2345"),
        ("substring('012345', 2.745)", "2345"),
        ("substring(123, 2)", "3"),
        ("substring('012345', -1)", "012345"),
        ("substring(true, 1.2)", "rue"),
        ("substring(false, -2.411E247)", "false"),
        ("substring('012345', 1, 3)", "12"),
        ("substring('012345', -50, 50)", "012345"),
        ("substring('012345', 3, 1)", ""),
        ("sql_version()", "2016-03-23"),
        ("sqrt(9)", 3),
        ("startswith('ranger', 'ran')", True),
        ("tan(3)", -0.1425465430742778),
        ("tanh(2.3)", 0.9800963962661914),
        ("time_to_epoch('2020-04-03 09:45:18 UTC+01:00', 'yyyy-MM-dd HH:mm:ss VV')", 1585903518000),
        ("time_to_epoch('18 December 2015', 'dd MMMM yyyy')", 1450396800000),
        (
            "time_to_epoch('2007-12-03 10:15:30.592 America/Los_Angeles', "
            "'yyyy-MM-dd HH:mm:ss.SSS z')",
            1196705730592,
        ),
        ("topic()", TOPIC),
        ("topic(1)", "things"),
        ("trim(' hi ')", "hi"),
        ("trunc(2.3, 0)", 2),
        ("trunc(2.3123, 2)", 2.31),
        ("trunc(2.888, 2)", 2.88),
        ("trunc(2.00, 5)", 2),
        ("upper('hello')", "HELLO"),
        ("upper(['hello'])", '["HELLO"]'),
    ],
)
def test_the_aws_function_examples(expr: str, expected: object) -> None:
    assert value(expr) == expected


@pytest.mark.parametrize(
    ("expr", "expected", "aws_says"),
    [
        # the page's own tables and the spec decide where an example contradicts them
        ("bitnot(13)", -14, "2: a 4-bit NOT; any Int NOT of 13 in two's complement is -14"),
        ("ltrim(' h i ')", "h i ", "'hi ': ltrim removes leading white space only"),
        ("get('abc', 1)", "b", "'a': the table and spec §1.6 say 0-based"),
        ("concat(1)", 1, "'1': spec §1.6 project rule, 1 argument returned unchanged"),
    ],
)
def test_where_an_aws_example_contradicts_its_own_table(
    expr: str, expected: object, aws_says: str
) -> None:
    assert value(expr) == expected, aws_says


@pytest.mark.parametrize(
    "expr",
    [
        # wrong types, Null and Undefined: Undefined, per each function's table
        "sqrt(true)",
        "sqrt(n)",
        "sqrt(nope)",
        "sqrt([1])",
        "sqrt('x')",
        "power(2, {})",
        "sqrt(-1)",
        "ln(0)",
        "acos(2)",
        "exp(100000)",
        "power(10, 400)",  # imaginary/overflow
        "bitand(1, true)",
        "bitnot('x')",
        "chr(true)",
        "chr(128)",
        "chr(-1)",
        "sign('x')",
        "sign(NULL)",
        "trunc('x', 1)",
        "trunc(1.5, '1')",
        "mod(NULL, 2)",
        "mod(1, 0)",
        "mod('a', 2)",
        "endswith(NULL, 'a')",
        "endswith('a', nope)",
        "indexof(NULL, 'a')",
        "length(NULL)",
        "numbytes(nope)",
        "lpad('a', true)",
        "lpad('a', [1])",
        "lpad(NULL, 1)",
        "trim(NULL)",
        "replace('a', NULL, 'b')",
        "regexp_matches(NULL, 'a')",
        "regexp_substr('x', 'y')",
        "regexp_replace('a', 'a', '$2')",
        "regexp_replace('a', 'a', '$x')",
        "regexp_replace('a-b', '-', '${x}')",
        "regexp_replace('a', 'a', 'x\\')",
        "md5(NULL)",
        "time_to_epoch('2015', 'yyyy')",
        "time_to_epoch('x', 'dd MMMM yyyy')",
        "time_to_epoch('2015-01-01 Mars/Base', 'yyyy-MM-dd VV')",
        "time_to_epoch('2015-01-01', 'yyyy-MM-dd [HH]')",
        "time_to_epoch(5, 'yyyy')",
        "time_to_epoch('2015-02-32', 'yyyy-MM-dd')",
        "time_to_epoch('2015-01-01 1', 'yyyy-MM-dd h')",
        "transform('other', {}, [])",
        "transform('enrichArray', {}, [1])",
        "transform('enrichArray', [], [])",
        "parse_time('yyyy D', 0)",
        "parse_time('zzzz', 0)",
    ],
)
def test_wrong_arguments_are_undefined(expr: str) -> None:
    assert value(expr) is MISSING


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        # conversions the tables name: numeric strings, Decimals rounded down, clamps
        ("sqrt('16')", 4),
        ("power('2', '0.5')", 1.4142135623730951),
        ("bitand(13.9, '5.2')", 5),
        ("bitor(-1.5, 0)", -2),  # rounded down, not truncated
        ("chr('65.9')", "A"),
        ("sign('-0.5')", -1),
        ("sign(2.5)", 1),
        ("trunc(-2.888, 1)", -2.8),  # toward zero
        ("trunc(7, 2)", 7),
        ("trunc('2.555', 1)", 2.5),
        ("trunc(1.23456, -3)", 1),
        ("trunc(1.23456, 99)", 1.23456),
        # Joda's pattern letters: 'a' of any count is one AM/PM; Z and ZZ print hours
        # and minutes only (seconds of an old offset cut off); ZZZ or more is the zone id
        ("parse_time('a aa', 0)", "AM AM"),
        ("parse_time('Z ZZ', 0, 'Africa/Monrovia')", "-0044 -00:44"),  # -00:44:30 in 1970
        ("parse_time('ZZZ|ZZZZ', 0, 'America/New_York')", "America/New_York|America/New_York"),
        ("parse_time('Z ZZ ZZZ', 0)", "+0000 +00:00 UTC"),
        ("trunc(1.23456, 1e40)", 1.23456),  # places past an Int still clamp to 34
        ("trunc(1.23456, -1e40)", 1),
        ("trunc(-2.5, 1e999)", -2.5),
        ("mod(-7, 2)", -1),
        ("mod('7.5', 2)", 1.5),
        ("nanvl(NULL, 3)", 3),
        ("nanvl(nope, 'x')", "x"),
        ("nanvl('a', 3)", "a"),
        ("lpad('a', -5)", "a"),
        ("length(rpad('a', 5000))", 1001),
        ("rpad('a', '2.9')", "a  "),
        ("lpad(true, 1)", " true"),
        ("indexof('abc', 'z')", -1),
        ("indexof(12345, 34)", 2),
        ("endswith(123, 3)", True),
        ("length('€😀')", 3),  # UTF-16 units, as Java's String.length()
        ("numbytes('😀')", 4),
        ("trim('\t a \t')", "a"),
        ("replace(1.5, '.', ',')", "1,5"),
        ("regexp_matches(12345, '^[0-9]+$')", True),
        ("regexp_replace('2024-05', '(?<y>[0-9]+)-([0-9]+)', '${y}/$2')", "2024/05"),
        ("regexp_replace('abc', 'b', '\\$1')", "a$1c"),
        ("regexp_replace('abc', 'x*', '-')", "-a-b-c-"),
        ("sha1('hello')", "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d"),
        ("sha256(1)", "6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b"),
        ("time_to_epoch('03/Jan/2024:10:00:00 +0100', 'dd/MMM/yyyy:HH:mm:ss Z')", 1704272400000),
        ("time_to_epoch('2024-01-03 01:00 PM', 'yyyy-MM-dd hh:mm a')", 1704286800000),
        (
            "time_to_epoch('Wed, 03 Jan 2024 12:00:00 Z', 'EEE, dd MMM yyyy HH:mm:ss X')",
            1704283200000,
        ),
        ("transform('enrichArray', {'k': 1}, [])", []),
    ],
)
def test_conversions_the_tables_name(expr: str, expected: object) -> None:
    assert value(expr) == expected


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        # "Decimal (with double precision)" in every double function's table, and the /
        # table: Int/Decimal operands give a Decimal; a whole result still prints as an Int
        ("sqrt(9) / 2", 1.5),
        ("power(2, 5) / 64", 0.5),
        ("cos(0) / 2", 0.5),
        ("exp(0) / 4", 0.25),
        ("ln(1) / 2", 0),
        ("sqrt(9)", 3),
        ("cast(sqrt(9) AS String)", "3"),
        ("get(['a', 'b'], cos(0))", "b"),
    ],
)
def test_double_results_are_decimals(expr: str, expected: object) -> None:
    assert value(expr) == expected


def test_rand_is_a_double_in_0_1_and_new_per_call() -> None:
    draws = value("[rand(), rand(), rand()]")
    assert isinstance(draws, list) and len(set(draws)) == 3
    assert all(0 <= d < 1 for d in draws)


@pytest.mark.parametrize(
    "payload",
    [
        b'{"v": "\\ud800"}',  # a lone surrogate: not UTF-8, so no bytes to count or hash
    ],
)
def test_strings_without_utf8_are_undefined_not_an_error(payload: bytes) -> None:
    assert value("numbytes(v)", payload) is MISSING
    assert value("md5(v)", payload) is MISSING
    assert value("length(v)", payload) == 1


@pytest.mark.parametrize(
    ("example", "payload", "expected"),
    [
        (
            "select value transform('enrichArray', attributes, values) from 'A/B'",
            {"attributes": {"data1": 1, "data2": 2}, "values": [{"a": 3}, {"b": 4}, {"c": 5}]},
            b'[{"a":3,"data1":1,"data2":2},{"b":4,"data1":1,"data2":2},'
            b'{"c":5,"data1":1,"data2":2}]',
        ),
        (
            "select value transform('enrichArray', {'key': attributes.data1}, values) from 'A/B'",
            {"attributes": {"data1": 1, "data2": 2}, "values": [{"a": 3}, {"b": 4}, {"c": 5}]},
            b'[{"a":3,"key":1},{"b":4,"key":1},{"c":5,"key":1}]',
        ),
        (
            "select value transform('enrichArray', (select a, b from data2), "
            "(select value c from data2)) from 'A/B'",
            {
                "data1": "example",
                "data2": {
                    "a": "first attribute",
                    "b": "second attribute",
                    "c": [
                        {"x": {"someInt": 5, "someString": "hello"}, "y": True},
                        {"x": {"someInt": 10, "someString": "world"}, "y": False},
                    ],
                },
            },
            b'[{"x":{"someInt":5,"someString":"hello"},"y":true,"a":"first attribute",'
            b'"b":"second attribute"},{"x":{"someInt":10,"someString":"world"},"y":false,'
            b'"a":"first attribute","b":"second attribute"}]',
        ),
    ],
)
def test_the_transform_examples(example: str, payload: dict, expected: bytes) -> None:
    out = evaluate(parse(example), Message("A/B", json.dumps(payload).encode()))
    assert out is not None and out.to_bytes() == expected


def test_transform_refuses_a_result_over_128_kib_before_building_it() -> None:
    """AWS limits transform's array to 128 KiB; one payload must not multiply into GBs."""
    attributes = {f"k{i}": "x" * 10 for i in range(1000)}  # about 18 KB
    payload = json.dumps({"a": attributes, "v": [{}] * 10_000}).encode()
    assert value("transform('enrichArray', a, v)", payload) is MISSING
    small = json.dumps({"a": {"k": 1}, "v": [{}] * 100}).encode()
    assert value("transform('enrichArray', a, v)", small) == [{"k": 1}] * 100


def test_the_json_extensions_example() -> None:
    """AWS "JSON extensions" page: a function applied to an attribute value."""
    payload = (
        b'{"deviceid": "iot123", "temp": 54.98, "humidity": 32.43,'
        b' "coords": {"latitude": 47.615694, "longitude": -122.3359976}}'
    )
    out = evaluate(
        parse("SELECT temp, md5(deviceid) AS hashed_id FROM 'topic/#'"), Message("topic/x", payload)
    )
    assert out is not None
    assert out.to_bytes() == b'{"temp":54.98,"hashed_id":"e37f81fb397e595c4aeb5645b8cbbbd1"}'


def test_the_decode_example() -> None:
    sql = "SELECT decode(encoded_temp,\"base64\").temperature AS temp from 'topic/subtopic'"
    payload = b'{"encoded_temp": "eyAidGVtcGVyYXR1cmUiOiAzMyB9Cg=="}'
    out = evaluate(parse(sql), Message("topic/subtopic", payload))
    assert out is not None and out.to_bytes() == b'{"temp":33}'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("aGk", "hi"),  # the final '=' left out
        ("aGVsbG8", "hello"),
        ("YQ", "a"),  # both left out
        ("eyJ0IjoxfQ", {"t": 1}),  # JSON text, read as JSON as padded text is
        ("aGk=", "hi"),
        ("YR==", "a"),
        ("", ""),
        ("YQ=", None),  # half the padding: Java refuses "wrong 4-byte ending unit"
        ("YQ===", None),
        ("Y", None),  # one character holds no byte
        ("aGk=aGk=", None),  # padding inside
        ("aGk=\n", None),  # the basic decoder takes no line breaks
    ],
)
def test_decode_reads_base64_as_javas_decoder(text: str, expected: object) -> None:
    """Measured with OpenJDK 17.0.15, ``java.util.Base64.getDecoder().decode(text)``: the
    padding may be left out, a wrong one is an error (Null here, as for any text that is no
    base64). Apache Commons Codec and the MIME decoder take unpadded text too."""
    payload = json.dumps({"b": text}).encode()
    assert value("decode(b, 'base64')", payload) == expected


@pytest.mark.parametrize(
    "name",
    [
        "aws_lambda('arn:aws:lambda:us-east-1:1:function:f', *)",
        "get_dynamodb('t', 'k', 1, 'arn:aws:iam::1:role/r')",
        "get_secret('k', 'SecretString', 'v', 'arn:aws:iam::1:role/r')",
        "get_thing_shadow('t', 'arn:aws:iam::1:role/r')",
        "get_registry_data('DescribeThing', 't', 'arn:aws:iam::1:role/r')",
        "machinelearning_predict('m', 'arn:aws:iam::1:role/r', *)",
        "principal()",
        "accountid()",
        "sourceip()",
        "get_mqtt_property('name')",
        "get_user_properties('k')",
    ],
)
def test_functions_that_need_aws_are_refused_naming_them(name: str) -> None:
    function = name.split("(")[0]
    with pytest.raises(RuleSqlError, match=rf"{function}\(\) is not supported locally: ") as info:
        parse(f"SELECT {name} AS x FROM 't'")
    assert info.value.position == 8


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("SELECT regexp_matches(s, p) AS x FROM 't'", "pattern must be a string literal"),
        ("SELECT regexp_substr(s, 5) AS x FROM 't'", "pattern must be a string literal"),
        ("SELECT regexp_replace(s, '(', 'x') AS x FROM 't'", "'(' is not a regular expression"),
        # repetitions the regex package would unroll for seconds, or forever, at load
        ("SELECT regexp_matches(s, '(a{1000}){1000}') AS x FROM 't'", "over 200,000"),
        ("SELECT regexp_matches(s, '((a{1000}){1000}){1000}') AS x FROM 't'", "over 200,000"),
        ("SELECT regexp_substr(s, '(?:(?:x|y{999}){999})+') AS x FROM 't'", "over 200,000"),
    ],
)
@pytest.mark.timeout(30)
def test_refused_function_calls_name_the_reason(sql: str, reason: str) -> None:
    with pytest.raises(RuleSqlError, match=re.escape(reason)):
        parse(sql)


@pytest.mark.parametrize(
    "pattern", ["a{100000}", "(a{100}){100}", "((a{20}){20}){20}", "(?:a|b){65535}", "x*y+"]
)
def test_large_repetitions_within_the_bound_load(pattern: str) -> None:
    parse(f"SELECT regexp_matches(s, '{pattern}') AS x FROM 't'")


@pytest.mark.parametrize(
    "call",
    [
        "md2('a', 'b')",
        "sqrt(1, 2)",
        "trunc(1)",
        "get(a)",
        "topic(1, 2)",
        "clientid(1)",
        "timestamp(1)",
        "encode(*)",
        "regexp_matches(a)",
        "regexp_replace(a, '(', 'x', 'y')",
        "substring('abc')",
        "isUndefined()",
        "abs()",
    ],
)
def test_a_function_called_with_the_wrong_argument_count_is_undefined(call: str) -> None:
    """Spec §1.4 and AWS's data-types page: "Functions called with invalid arguments (for
    example, wrong types, wrong number of arguments, and so on) return Undefined." The rule
    loads (as on AWS) and the call is Undefined, on the general and the compiled path."""
    sql = f"SELECT {call} AS x, isUndefined({call}) AS u FROM 't'"
    message = Message("t", b'{"a": "abc"}', client_id="c", timestamp_ms=5)
    assert evaluate(parse(sql), message) == RuleOutput({"u": True})
    assert evaluate(parse(sql), message, defer_encoding=True) == RuleOutput({"u": True})
    compiled = compile_statement(parse(f"SELECT {call} AS x FROM 't'"))
    assert compiled is None or compiled(message) == RuleOutput({})


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    "expr",
    [
        "replace(a, '', b)",  # b between every character of a
        "replace(a, 'x', b)",
        "regexp_replace(a, 'x', b)",
        "regexp_replace(a, '', b)",
        "regexp_replace(a, '(x)', '$1$1$1')",
    ],
)
def test_replace_refuses_a_result_over_128_kib_before_building_it(expr: str) -> None:
    """Project rule (AWS documents no bound): one call on a 64 KiB string and a 64 KiB
    replacement would build gigabytes; a result longer than 128 Ki characters and than
    the string it replaces in is Undefined."""
    payload = json.dumps({"a": "x" * 60_000, "b": "y" * 60_000}).encode()
    assert value(f"length({expr})", payload) is MISSING


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("length(replace(a, 'x', 'yy'))", 120_000),  # within the bound
        ("length(regexp_replace(a, 'x', '$0$0'))", 120_000),
        ("length(replace(c, 'x', 'y'))", 140_000),  # longer already, and no longer
        ("length(regexp_replace(c, 'x+', 'z'))", 1),
        ("replace(b, 'z', b)", "y" * 60_000),  # no match: unchanged
    ],
)
def test_replace_within_the_bound_is_unchanged(expr: str, expected: object) -> None:
    big = json.dumps({"a": "x" * 60_000, "b": "y" * 60_000, "c": "x" * 140_000}).encode()
    assert value(expr, big) == expected


@pytest.mark.parametrize("count", [10**9, "1000000000", 1e30, 10**33])
@pytest.mark.parametrize("name", ["lpad", "rpad"])
def test_a_huge_pad_count_from_the_payload_adds_1000_spaces(name: str, count: object) -> None:
    """AWS's page: "The Int argument must be between 0 and 1000 ... set to the nearest
    valid value": a device's count of a billion costs a thousand spaces, not a gigabyte."""
    payload = json.dumps({"s": "ab", "n": count}).encode()
    padded = value(f"{name}(s, n)", payload)
    assert padded == (" " * 1000 + "ab" if name == "lpad" else "ab" + " " * 1000)
