"""Every row of AWS's IoT SQL operator tables, one or more cases each, with the result's
type as well as its value (an Int and a whole Decimal write the same JSON, but divide
differently afterwards).

Source: https://docs.aws.amazon.com/iot/latest/developerguide/iot-sql-operators.html
(read as ``developerguide/iot-sql-operators.md`` of ``awsdocs/aws-iot-docs``). Each case
names its table and row. Where the page is silent the project rules of
``docs/iot-sql.md`` and the spec's §1.5 decide (Int ``/`` truncates toward zero, ``%``
takes the dividend's sign, division by zero is Undefined); those rows say "project rule".
The page's newer ``IN`` and ``CONTAINS`` sections are not in any copy this project could
read, so both stay refused by name (last test).
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from cloud.rules.evaluate import UNDEFINED, Message, evaluate
from cloud.rules.sql import parse
from edge.errors import RuleSqlError

PAYLOAD = {
    "i": 7,
    "d": 2.5,
    "s": "dry",
    "ns": "5",
    "t": True,
    "ts": "TRUE",
    "fs": "False",
    "n": None,
    "a": [1, 2],
    "o": {"k": 1, "j": "x"},
}


def result(expr: str) -> object:
    """*expr*'s value as the evaluator holds it (Python int for Int, Decimal for Decimal),
    or UNDEFINED."""
    out = evaluate(
        parse(f"SELECT {expr} AS r FROM '#'"), Message("t", json.dumps(PAYLOAD).encode())
    )
    assert out is not None and isinstance(out.value, dict)
    return out.value.get("r", UNDEFINED)


def same(got: object, want: object) -> bool:
    return type(got) is type(want) and got == want


ROWS = [
    # AND: Boolean | Boolean -> Boolean
    ("AND: Boolean, Boolean", "t AND true", True),
    ("AND: Boolean, Boolean", "t AND false", False),
    # AND: String/Boolean | String/Boolean, "true"/"false" any case -> converted
    ("AND: String/Boolean", "ts AND t", True),
    ("AND: String/Boolean", "'false' AND t", False),
    ("AND: String/Boolean", "ts AND fs", False),
    # AND: Other value -> Undefined
    ("AND: Other value", "s AND t", UNDEFINED),
    ("AND: Other value", "i AND t", UNDEFINED),
    ("AND: Other value", "n AND t", UNDEFINED),
    ("AND: Other value", "false AND i", UNDEFINED),
    ("AND: Other value", "nope AND t", UNDEFINED),
    # OR, the same three rows
    ("OR: Boolean, Boolean", "false OR t", True),
    ("OR: Boolean, Boolean", "false OR false", False),
    ("OR: String/Boolean", "fs OR ts", True),
    ("OR: String/Boolean", "'FALSE' OR false", False),
    ("OR: Other value", "true OR 1", UNDEFINED),
    ("OR: Other value", "a OR true", UNDEFINED),
    ("OR: Other value", "t OR nope", UNDEFINED),
    # NOT: Boolean; String "true"/"false"; Other value -> Undefined
    ("NOT: Boolean", "NOT t", False),
    ("NOT: String", "NOT fs", True),
    ("NOT: Other value", "NOT s", UNDEFINED),
    ("NOT: Other value", "NOT 0", UNDEFINED),
    ("NOT: Other value", "NOT n", UNDEFINED),
    # > >= < <=: Int/Decimal | Int/Decimal -> Boolean
    ("> : Int/Decimal", "i > d", True),
    (">=: Int/Decimal", "d >= 2.5", True),
    ("< : Int/Decimal", "i < 7", False),
    ("<=: Int/Decimal", "7.0 <= i", True),
    # > >= < <=: String/Int/Decimal, all strings convertible -> Boolean
    ("> : String/Int/Decimal", "ns > 4.9", True),
    ("< : String/Int/Decimal", "'10' < '9'", False),
    ("<=: String/Int/Decimal", "'-1.2' <= '5E-12'", True),
    # > >= < <=: Other value -> Undefined
    ("> : Other value", "s > 1", UNDEFINED),
    (">=: Other value", "'b' >= 'a'", UNDEFINED),
    ("< : Other value", "t < 2", UNDEFINED),
    ("<=: Other value", "n <= 1", UNDEFINED),
    ("< : Other value", "a < 3", UNDEFINED),
    ("> : Other value", "nope > 1", UNDEFINED),
    # = and <>: Int | Int
    ("=: Int, Int", "i = 7", True),
    ("<>: Int, Int", "i <> 7", False),
    # = and <>: Decimal | Decimal, Int converted to Decimal
    ("=: Decimal, Decimal", "d = 2.50", True),
    ("=: Decimal, Decimal (Int converted)", "i = 7.0", True),
    ("<>: Decimal, Decimal (Int converted)", "i <> 7.5", True),
    # = and <>: String | String
    ("=: String, String", "s = 'dry'", True),
    ("<>: String, String", "s <> 'Dry'", True),
    # = and <>: Array | Array, equal items in the same order
    ("=: Array, Array", "a = [1, 2]", True),
    ("=: Array, Array", "a = [2, 1]", False),
    ("<>: Array, Array", "a <> [1, 2.0]", False),
    # = and <>: Object | Object, key order unimportant
    ("=: Object, Object", "o = {'j': 'x', 'k': 1}", True),
    ("<>: Object, Object", "o <> {'k': 1}", True),
    # <>: Null | Null -> False
    ("<>: Null, Null", "n <> NULL", False),
    ("=: Null, Null", "n = NULL", True),
    # = and <>: Any value | Undefined, Undefined | Any value -> Undefined
    ("=: Any value, Undefined", "i = nope", UNDEFINED),
    ("=: Undefined, Any value", "nope = n", UNDEFINED),
    ("<>: Any value, Undefined", "s <> nope", UNDEFINED),
    ("<>: Undefined, Any value", "nope <> a", UNDEFINED),
    # = and <>: Mismatched types -> False / True
    ("=: Mismatched Type", "ns = 5", False),
    ("=: Mismatched Type", "t = 'true'", False),
    ("=: Mismatched Type", "n = 0", False),
    ("<>: Mismatched Type", "a <> '[1,2]'", True),
    ("<>: Mismatched Type", "o <> n", True),
    # +: String | Any value -> right converted to a String, concatenated
    ("+: String, Any value", "s + 1", "dry1"),
    ("+: String, Any value", "s + t", "drytrue"),
    ("+: String, Any value", "s + d", "dry2.5"),
    ("+: String, Any value", "s + a", "dry[1,2]"),
    ("+: String, Any value", "ns + 1", "51"),
    # +: Any value | String -> left converted to a String
    ("+: Any value, String", "1 + ns", "15"),
    ("+: Any value, String", "o + s", '{"k":1,"j":"x"}dry'),
    # +: a side with no String form (data types page: Null and Undefined) -> Undefined
    ("+: String, Null (no String form)", "s + n", UNDEFINED),
    ("+: String, Undefined", "s + nope", UNDEFINED),
    # +: Int | Int -> Int
    ("+: Int, Int", "i + 1", 8),
    # +: Int/Decimal | Int/Decimal -> Decimal
    ("+: Int/Decimal", "i + d", Decimal("9.5")),
    ("+: Int/Decimal", "0.5 + 0.5", Decimal("1.0")),
    # +: Other value -> Undefined
    ("+: Other value", "t + 1", UNDEFINED),
    ("+: Other value", "a + 1", UNDEFINED),
    ("+: Other value", "a + [3]", UNDEFINED),
    ("+: Other value", "o + 1", UNDEFINED),
    # -: Int | Int -> Int; Int/Decimal -> Decimal
    ("-: Int, Int", "i - 10", -3),
    ("-: Int/Decimal", "i - d", Decimal("4.5")),
    # -: String/Int/Decimal, all strings convertible -> Decimal; else Undefined
    ("-: String/Int/Decimal", "ns - 1", Decimal("4")),
    ("-: String/Int/Decimal", "'5E-1' - '0.25'", Decimal("0.25")),
    ("-: String/Int/Decimal (not convertible)", "s - 1", UNDEFINED),
    ("-: Other value", "t - 1", UNDEFINED),
    ("-: Other value", "a - 1", UNDEFINED),
    # *: the same rows
    ("*: Int, Int", "i * 3", 21),
    ("*: Int/Decimal", "i * d", Decimal("17.5")),
    ("*: String/Int/Decimal", "ns * '2'", Decimal("10")),
    ("*: String/Int/Decimal (not convertible)", "'x' * 2", UNDEFINED),
    ("*: Other value", "o * 2", UNDEFINED),
    # /: Int | Int -> Int (project rule: truncated toward zero)
    ("/: Int, Int", "i / 2", 3),
    ("/: Int, Int (project rule)", "-7 / 2", -3),
    ("/: Int/Decimal", "i / 2.5", Decimal("2.8")),
    ("/: String/Int/Decimal", "ns / 2", Decimal("2.5")),
    ("/: String/Int/Decimal (not convertible)", "i / s", UNDEFINED),
    ("/: Other value", "i / t", UNDEFINED),
    ("/: by zero (project rule)", "i / 0", UNDEFINED),
    ("/: by zero (project rule)", "d / '0.0'", UNDEFINED),
    # %: Int | Int -> Int (project rule: the dividend's sign)
    ("%: Int, Int", "i % 4", 3),
    ("%: Int, Int (project rule)", "-7 % 4", -3),
    ("%: Int, Int (project rule)", "7 % -4", 3),
    # %: String/Int/Decimal, all strings convertible -> Decimal; else Undefined
    ("%: String/Int/Decimal", "i % d", Decimal("2.0")),
    ("%: String/Int/Decimal", "ns % 2", Decimal("1")),
    ("%: String/Int/Decimal (not convertible)", "s % 2", UNDEFINED),
    ("%: Other value", "a % 2", UNDEFINED),
    ("%: by zero (project rule)", "i % 0", UNDEFINED),
]


@pytest.mark.parametrize(("row", "expr", "want"), ROWS, ids=[f"{r[0]}: {r[1]}" for r in ROWS])
def test_each_row_of_the_operator_tables(row: str, expr: str, want: object) -> None:
    got = result(expr)
    assert same(got, want), f"{row}: {expr} gave {got!r}, the page says {want!r}"


@pytest.mark.parametrize(
    ("expr", "want"),
    [
        # Null in arithmetic: the data types page converts Null to Null (To Decimal, To Int)
        ("n + 1", None),
        ("2 * n", None),
        ("-n", None),
    ],
)
def test_null_converts_to_null_in_arithmetic(expr: str, want: object) -> None:
    assert same(result(expr), want)


@pytest.mark.parametrize(("operator", "sql"), [("IN", "i IN a"), ("CONTAINS", "a CONTAINS 1")])
def test_in_and_contains_are_refused_by_name(operator: str, sql: str) -> None:
    with pytest.raises(RuleSqlError, match=rf"operator {operator} is not supported"):
        parse(f"SELECT * FROM 't' WHERE {sql}")


@pytest.mark.parametrize(
    ("sql", "named", "instead"),
    [
        ("x IS NULL", "IS NULL", "isNull(x)"),
        ("x IS NOT NULL", "IS NOT NULL", "NOT isNull(x)"),
        ("x BETWEEN 1 AND 5", "BETWEEN", "x >= a AND x <= b"),
        ("x NOT BETWEEN 1 AND 5", "NOT BETWEEN", "x >= a AND x <= b"),
        ("s LIKE 'ab%'", "LIKE", "regexp_matches(s, pattern)"),
        ("s NOT LIKE 'ab%'", "NOT LIKE", "startswith(s, prefix)"),
        ("lower(s) like 'ab%'", "LIKE", "regexp_matches(s, pattern)"),
    ],
)
def test_sql_operators_iot_sql_lacks_are_refused_naming_the_iot_sql_way(
    sql: str, named: str, instead: str
) -> None:
    """Not IoT SQL at all (its operators page has none of them); they were refused only as
    'expected end of statement', which reads as a typo rather than a missing operator."""
    for where in (f"SELECT * FROM 't' WHERE {sql}", f"SELECT {sql} AS v FROM 't'"):
        with pytest.raises(RuleSqlError) as info:
            parse(where)
        message = str(info.value)
        assert f"{named} is not IoT SQL" in message
        assert instead in message
        assert "end of statement" not in message
