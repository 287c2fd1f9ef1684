"""A number means the same in a rule's SQL as in the payload it reads: AWS's data-types
page says that with 2016-03-23 "numeric values that are whole numbers, such as 10.0, are
processed as an Int value (10)", and the payload's ``{"a": 10.0}`` is read so. A literal
``10.0`` is such a numeric value too, so ``10.0 / 4`` divides Ints as ``a / 4`` does."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import example, given, settings
from hypothesis import strategies as st

from cloud.rules.evaluate import Message, evaluate
from cloud.rules.sql import parse

coefficients = st.one_of(st.integers(0, 999), st.integers(0, 10**40))
numbers = st.one_of(
    st.integers(0, 10**36).map(str),
    st.tuples(coefficients, st.integers(0, 40)).map(lambda t: str(Decimal(t[0]).scaleb(-t[1]))),
    st.tuples(coefficients, st.integers(-40, 40)).map(lambda t: f"{t[0]}e{t[1]}"),
    st.sampled_from(["10.0", "1e2", "0.0", "1.50", "2.5", "4E+1", "1E+40", "7.000"]),
)
signs = st.sampled_from(["", "-"])


def output(sql: str, payload: str) -> bytes:
    out = evaluate(parse(f"SELECT {sql} AS r FROM 't/#'"), Message("t/x", payload.encode()))
    assert out is not None
    return out.to_bytes()


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(["+", "-", "*", "/", "%"]), signs, numbers, signs, numbers)
@example("/", "", "10.0", "", "4")
@example("/", "", "1e2", "", "3")
@example("/", "-", "0.0", "", "4")
@example("%", "", "7.000", "", "4.0")
def test_a_literal_and_a_payload_number_give_the_same_result(
    op: str, sign_a: str, a: str, sign_b: str, b: str
) -> None:
    payload = f'{{"a": {sign_a}{a}, "b": {sign_b}{b}}}'
    from_payload = output(f"a {op} b", payload)
    from_literals = output(f"{sign_a}{a} {op} {sign_b}{b}", payload)
    mixed = output(f"a {op} {sign_b}{b}", payload)
    assert from_literals == from_payload == mixed, (payload, op)


def test_a_whole_literal_with_a_fraction_divides_as_an_int() -> None:
    assert output("10.0 / 4", "{}") == b'{"r":2}'
    assert output("1e2 / 3", "{}") == b'{"r":33}'
    assert output("10.5 / 4", "{}") == b'{"r":2.625}'
