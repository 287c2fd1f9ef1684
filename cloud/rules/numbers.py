"""IoT SQL numbers: Int as a Python ``int`` of at most 34 digits, Decimal as a
``decimal.Decimal`` of 34 significant digits (spec §1.4).

Why not float: a binary double holds 15-17 digits and no decimal fraction exactly, so
``0.1 + 0.2`` came out ``0.30000000000000004`` and a payload's ``12345678901234567890.5``
lost its last digits, where the rules engine gives ``0.3`` and keeps all 21. AWS documents
the Decimal range as magnitudes from 1E-999 to 9.999...E999; :data:`CONTEXT` is exactly
that (34 digits, ``Emin=-999``, ``Emax=999``, half-even rounding as in Java's
``MathContext.DECIMAL128``), and a value outside it traps. Project rule: such a value is
Undefined, never infinity or zero. The range also bounds the cost of every operation:
an exponent can never reach the millions that make ``Decimal`` arithmetic slow.

Every operation goes through :data:`CONTEXT`'s methods, never Python's thread-wide
default context (28 digits, no range), which would round and accept different values.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from decimal import (
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
    Subnormal,
    Underflow,
)
from json.encoder import encode_basestring, encode_basestring_ascii
from typing import Any

CONTEXT = Context(
    prec=34,
    rounding=ROUND_HALF_EVEN,
    Emin=-999,
    Emax=999,
    capitals=1,
    clamp=0,
    flags=[],
    traps=[InvalidOperation, DivisionByZero, Overflow, Underflow, Subnormal],
)
MAX_INT = 10**34
"""IoT SQL Ints have up to 34 digits; a whole number beyond is a Decimal."""
INT_DIGITS = 34

Number = int | Decimal


def bounded_int(n: int) -> Number:
    """An Int result: itself within 34 digits, else the Decimal it becomes (which may
    raise :class:`DecimalException` beyond the range)."""
    if -MAX_INT < n < MAX_INT:
        return n
    return CONTEXT.create_decimal(n)


def decimal_from_text(text: str) -> Decimal:
    """*text* (already checked to be a number) rounded to 34 digits; raises
    :class:`DecimalException` outside the Decimal range."""
    return CONTEXT.create_decimal(text)


def within_int(d: Decimal) -> bool:
    """Whether *d*'s integer part has at most 34 digits (zero with any exponent has)."""
    return d.adjusted() < INT_DIGITS or d.is_zero()


def whole_to_int(d: Decimal) -> Number:
    """2016-03-23 processes whole numbers such as ``10.0`` as Int ``10``; one of more than
    34 digits (``1E+40``) cannot be an Int and stays a Decimal."""
    if within_int(d) and d == d.to_integral_value():  # whatever the rounding, whole is whole
        return int(d)
    return d


def number_text(d: Decimal) -> str:
    """The JSON text of a Decimal: its own digits (``0.3``, ``1.50``, ``1E+40``), and a
    whole value of at most 34 digits as an Int (2016-03-23: ``10.0`` -> ``10``)."""
    text = str(d)
    if "E" not in text:  # the common cases, told from the text alone
        if "." not in text:
            return "0" if text == "-0" else text  # an integer already
        if text[-1] != "0":
            return text  # a fraction whose last digit is not 0
    if within_int(d) and d == d.to_integral_value():
        return str(int(d))
    return text


class _HasDecimal(Exception):
    """The fast encoder met a Decimal, which ``json`` cannot write exactly."""


def json_text(value: Any, default: Callable[[Any], Any], *, ascii_only: bool = True) -> str:
    """Compact JSON of a rule's output with every Decimal written as :func:`number_text`.

    Output without Decimals goes through ``json.dumps`` unchanged; with them, through an
    iterative writer (a device's payload may nest deeper than a recursive one could go).
    Without *ascii_only*, characters past ASCII are written as they are, as the rules
    engine's conversion of an Array or Object to a String gives them (``'["é"]'``)."""

    def fast_default(obj: Any) -> Any:
        if isinstance(obj, Decimal):
            raise _HasDecimal
        return default(obj)

    encode = encode_basestring_ascii if ascii_only else encode_basestring
    if type(value) is dict and any(type(v) is Decimal for v in value.values()):
        return _write(value, default, encode)  # a payload's numbers: skip the bound attempt
    try:
        return json.dumps(
            value,
            separators=(",", ":"),
            allow_nan=False,
            default=fast_default,
            ensure_ascii=ascii_only,
        )
    except _HasDecimal:
        return _write(value, default, encode)


_END: Any = object()


def _write(
    value: Any,
    default: Callable[[Any], Any],
    encode: Callable[[str], str] = encode_basestring_ascii,
) -> str:
    out: list[str] = []
    append = out.append
    open_containers: list[tuple[Iterator[Any], bool]] = []  # (items left, is an object)
    v = value
    while True:
        t = type(v)
        if t is dict:
            append("{")
            open_containers.append((iter(v.items()), True))
        elif t is list or t is tuple:
            append("[")
            open_containers.append((iter(v), False))
        else:
            text = _scalar_text(v, t, encode)
            if text is None:
                v = default(v)
                continue
            append(text)
        while open_containers:  # write the open container's scalars up to its next container
            items, is_object = open_containers[-1]
            # a container just opened is the only thing written as exactly "{" or "["
            separator = "" if out[-1] == "{" or out[-1] == "[" else ","
            for item in items:
                if is_object:
                    key, v = item
                    append(separator + encode(key) + ":")
                else:
                    v = item
                    if separator:
                        append(separator)
                separator = ","
                t = type(v)
                if t is dict or t is list or t is tuple:
                    break
                text = _scalar_text(v, t, encode)
                if text is None:
                    break  # the default hook's value is written by the outer loop
                append(text)
            else:
                open_containers.pop()
                append("}" if is_object else "]")
                continue
            break
        else:
            return "".join(out)


def _scalar_text(v: Any, t: type, encode: Callable[[str], str]) -> str | None:
    if t is Decimal:
        return number_text(v)
    if t is str:
        return encode(v)
    if t is int:
        return int.__repr__(v)
    if v is None:
        return "null"
    if t is bool:
        return "true" if v else "false"
    if t is float:
        return json.dumps(v, allow_nan=False)
    return None
