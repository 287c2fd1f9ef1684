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
from decimal import Decimal

import pytest

from cloud.rules.evaluate import UNDEFINED, Message, evaluate
from cloud.rules.sql import parse

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
    ("cast(1 / 3.0 AS Double)", Decimal("0.3333333333333333")),
    # past an Int's 34 digits a whole number stays a Decimal (data types page: Int is
    # "34 digits maximum")
    ("cast(1E+40 AS Decimal)", Decimal("1E+40")),
]


@pytest.mark.parametrize(("expr", "want"), CAST_TO_DECIMAL)
def test_cast_to_decimal_of_a_whole_number_is_an_int_in_2016_03_23(expr: str, want: object) -> None:
    got = result(expr)
    assert same(got, want), (expr, got, want)
