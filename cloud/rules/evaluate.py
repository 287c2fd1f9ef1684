"""Run a parsed IoT SQL statement on one message: ``(topic, payload, clientid) -> output``.

Types map to Python as Int -> int (at most 34 digits), Decimal -> ``decimal.Decimal`` (34
digits, computed in :data:`cloud.rules.numbers.CONTEXT`), Boolean -> bool, String -> str,
Array -> list, Object -> dict, Null -> None, Undefined -> :data:`UNDEFINED`. Undefined
follows spec §1.4/§1.5: missing keys, wrong argument types and failed conversions are
Undefined; Undefined output fields are omitted; WHERE passes only on Boolean ``true``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import random
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import (
    ROUND_CEILING,
    ROUND_DOWN,
    ROUND_FLOOR,
    ROUND_HALF_UP,
    Decimal,
    DecimalException,
)
from typing import Any

import regex

from cloud.rules.md2 import md2_hex
from cloud.rules.numbers import (
    CONTEXT,
    MAX_INT,
    Number,
    bounded_int,
    decimal_from_text,
    json_text,
    number_text,
    whole_to_int,
    within_int,
)
from cloud.rules.sql import (
    HASH_FUNCTIONS,
    REGEX_FLAGS,
    REGEX_FUNCTIONS,
    SQL_VERSION,
    ArrayLit,
    Attr,
    Binary,
    Call,
    Case,
    Cast,
    Expr,
    Field,
    Literal,
    ObjectLit,
    Star,
    Statement,
    Subquery,
    Unary,
    arity_fits,
    can_match_empty,
    python_pattern,
)
from cloud.rules.time_parse import epoch_ms, joda_format, zone_by_id
from cloud.rules.topic_filter import topic_matches


class _Undefined:
    _instance: _Undefined | None = None

    def __new__(cls) -> _Undefined:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNDEFINED"

    def __bool__(self) -> bool:
        return False


UNDEFINED: Any = _Undefined()
_NUMERIC_STRING = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE]-?[0-9]+)?")
"""Spec §1.4's numeric-string pattern, with ASCII digits as in Java's regex ``\\d``:
Python's ``\\d`` takes any Unicode digit, so ``'١٢' > 5`` would be true."""


@dataclass(frozen=True, slots=True)
class Message:
    """What a rule sees of one MQTT message."""

    topic: str
    payload: bytes
    client_id: str = "n/a"
    timestamp_ms: int = 0
    """Rules-engine time (``timestamp()``), from the injected clock."""
    _trace_id: list[str] = field(default_factory=list, init=False, repr=False, compare=False)

    @property
    def trace_id(self) -> str:
        """The message's trace id (``traceid()``, an errorAction's ``cloudwatchTraceId``):
        drawn the first time it is read, since few messages ever need one."""
        if not self._trace_id:
            self._trace_id.append(str(uuid.uuid4()))
        return self._trace_id[0]

    @property
    def document(self) -> Any:
        """The payload as JSON, or UNDEFINED when it is not JSON."""
        return parse_json(self.payload)


def parse_json(payload: bytes | str) -> Any:
    """JSON with IoT SQL numbers, read exactly: every number is a Decimal of the 34-digit
    context (more digits are rounded off), and :func:`_read` makes a whole one an Int when
    an expression takes it out of the document (2016-03-23: ``10.0`` is ``10``).

    Why not convert while parsing: a Python hook per number cost more than the whole
    float parse did; the context's own ``create_decimal`` is called from C, and most of a
    payload's numbers are never read one by one (``*`` writes them out as they are, a
    whole one as an Int). It also keeps a 10,000-digit integer away from ``int()``,
    whose limit on digits would fail the payload.

    Project rule: a payload holding a number outside the Decimal range (``1e999999``, a
    10,000-digit integer, ``1e-1000``) is not JSON the rules engine can read, like one with
    ``NaN``: its fields are Undefined and ``*`` is its bytes."""
    try:
        return _parse_json(payload)
    except RecursionError:
        return UNDEFINED


def _parse_json(payload: bytes | str) -> Any:
    """:func:`parse_json`, but raising RecursionError for nesting deeper than the parser
    goes from the caller's stack."""
    try:
        return json.loads(
            payload, parse_float=_DECIMAL, parse_int=_DECIMAL, parse_constant=_reject_constant
        )
    except (ValueError, UnicodeDecodeError, ArithmeticError):
        return UNDEFINED


_DECIMAL = CONTEXT.create_decimal


def _read(value: Any) -> Any:
    """A value taken out of a parsed document: a whole Decimal of at most 34 digits is the
    Int 2016-03-23 makes of it, so that ``v / 4`` on ``{"v": 10.0}`` divides Ints."""
    return whole_to_int(value) if type(value) is Decimal else value


def _reject_constant(text: str) -> Any:
    raise ValueError(f"{text} is not JSON")


@dataclass(frozen=True, slots=True)
class Encoded:
    """A SELECT item's ``encode(value, 'base64')`` kept as the bytes it encodes, when the
    evaluation was asked to defer encoding (:func:`evaluate`).

    An action that wants the bytes (the local kinesis action, whose batcher would decode
    the text straight back) reads :attr:`data`; anything that serialises the output
    (:meth:`RuleOutput.to_bytes`, :func:`plain`) writes the base64 text, so what leaves
    the rules engine is the same either way. Only a SELECT item's own value is deferred:
    an ``encode`` that another expression reads is text, as always."""

    data: bytes

    def text(self) -> str:
        return base64.b64encode(self.data).decode("ascii")


_JSON_SCALARS = (str, int, type(None))


def plain(value: Any) -> Any:
    """*value* as a consumer of the rule's JSON output reads it back (``json.loads``):
    every :class:`Encoded` as its text, every Decimal as an int or a float. The local
    batcher takes a rule's output as such a document, as the Lambda batcher does from a
    Kinesis record."""
    if isinstance(value, Encoded):
        return value.text()
    if isinstance(value, dict) and all(isinstance(v, _JSON_SCALARS) for v in value.values()):
        return value
    if isinstance(value, dict | list | Decimal):
        return json.loads(json_text(value, _encoded_text))
    return value


def _encoded_text(value: Any) -> str:
    if isinstance(value, Encoded):
        return value.text()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


@dataclass(frozen=True, slots=True)
class RuleOutput:
    """What the rule's actions receive: an object, any value (SELECT VALUE) or raw bytes."""

    value: Any

    def to_bytes(self) -> bytes:
        if isinstance(self.value, bytes):
            return self.value
        if self.value is UNDEFINED:
            return b""
        return json_text(self.value, _encoded_text).encode()


def evaluate(
    statement: Statement,
    message: Message,
    *,
    defer_encoding: bool = False,
    match_from: bool = True,
) -> RuleOutput | None:
    """The rule's output, or None when the topic does not match FROM (or there is none) or
    WHERE is not true.
    Without *match_from* FROM is not checked: a Basic Ingest message names its rule.

    With *defer_encoding*, a SELECT item that is ``encode(..., 'base64')`` is delivered as
    :class:`Encoded` (the bytes, encoded only if something serialises the output); without
    it, as its text. The rules runner defers: its batcher wants the payload's bytes."""
    if match_from and (
        statement.topic_filter is None or not topic_matches(statement.topic_filter, message.topic)
    ):
        return None
    try:
        return _run(statement, _Context(message), defer_encoding)
    except _ParseHere:  # read first deep in an expression: parsed here, where all are
        return _run(statement, _Context(message, message.document), defer_encoding)


def _run(statement: Statement, ctx: _Context, defer_encoding: bool) -> RuleOutput | None:
    message = ctx.message
    if statement.where is not None and ctx.eval(statement.where) is not True:
        return None
    if statement.value:
        value = ctx.item(statement.items[0].expr, defer_encoding)
        return RuleOutput(_bounded("" if value is UNDEFINED else value))
    out: dict[str, Any] = {}
    for item in statement.items:
        if isinstance(item.expr, Star) and item.alias is None:
            if not isinstance(ctx.doc, dict):
                # '*' alone is the whole payload (spec §1.2, §1.7): raw bytes when it is
                # not JSON, and a JSON array, string or number unchanged rather than {}
                if len(statement.items) == 1:
                    return RuleOutput(message.payload)
                continue
            out.update(ctx.doc)
            continue
        value = ctx.item(item.expr, defer_encoding)
        if value is not UNDEFINED and item.alias is not None:
            put_output(out, item.alias, value)
    return RuleOutput(_bounded(out))


def _bounded(value: Any) -> Any:
    """*value*, when its JSON is within :data:`RULE_OUTPUT_MAX_BYTES`: the items of the outer
    SELECT may each copy the payload, or a function's 128 KiB result, and nothing before
    counted them together."""
    size = json_size(value, RULE_OUTPUT_MAX_BYTES)
    if size > RULE_OUTPUT_MAX_BYTES:
        raise RuleOutputLimitError(_over_output(size))
    return value


def put_output(out: dict[str, Any], name: str, value: Any) -> None:
    """``out[name] = value``, a dotted *name* (``state.reported.t``) putting the value into
    nested objects, made as needed and shared by the names that start alike, as AWS's rules
    give ``{"state": {"debug": ..., "command": ...}}`` for ``AS state.debug, ... AS
    state.command``. The parser refuses names that would overwrite one another. An
    Undefined value is left out before this is called, so it makes no empty object."""
    if "." not in name:
        out[name] = value
        return
    *parents, last = name.split(".")
    for part in parents:
        out = out.setdefault(part, {})
    out[last] = value


def evaluate_expression(expr: Expr, message: Message) -> Any:
    """One expression against a message (substitution templates in actions)."""
    try:
        return _Context(message).eval(expr)
    except _ParseHere:
        return _Context(message, message.document).eval(expr)


# ---- conversions ----------------------------------------------------------------------


def is_number(v: Any) -> bool:
    return isinstance(v, int | Decimal) and not isinstance(v, bool)


def to_number(v: Any) -> Number | _Undefined:
    """Operand conversion to a number: numbers, numeric strings (as Decimals, spec §1.4's
    conversion table); else Undefined, also for a string outside the Decimal range."""
    if is_number(v):
        return v
    if isinstance(v, str) and _NUMERIC_STRING.fullmatch(v):
        try:
            return decimal_from_text(v)
        except DecimalException:
            return UNDEFINED
    return UNDEFINED


def to_bool(v: Any) -> bool | _Undefined:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.lower() in ("true", "false"):
        return v.lower() == "true"
    return UNDEFINED


def to_string(v: Any) -> str | _Undefined:
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, Decimal):
        return number_text(v)
    if isinstance(v, list | dict):
        try:
            return json_text(v, _encoded_text, ascii_only=False)
        except RecursionError:  # nested deeper than the encoder goes: not convertible
            return UNDEFINED
    return UNDEFINED


def _equal(a: Any, b: Any) -> bool:
    """``=`` on two values; iterative, since a device's payload may nest arrays hundreds
    of levels deep and a recursion error would fail the message every time it came."""
    pending = [(a, b)]
    while pending:
        x, y = pending.pop()
        if is_number(x) and is_number(y):
            if x != y:
                return False
        elif type(x) is not type(y):
            return False
        elif isinstance(x, list):
            if len(x) != len(y):
                return False
            pending.extend(zip(x, y, strict=True))
        elif isinstance(x, dict):
            if x.keys() != y.keys():
                return False
            pending.extend((x[k], y[k]) for k in x)
        elif x != y:
            return False
    return True


# ---- evaluation -----------------------------------------------------------------------


_UNPARSED: Any = object()


class _ParseHere(Exception):
    """The payload, read first deep inside an expression, nests deeper than the JSON parser
    could go from there (it shares the interpreter's recursion limit): the evaluation
    starts again with the payload parsed at its top, so that whether a payload is JSON does
    not depend on the expression that happens to read it first."""


class _Context:
    """Parses the payload only if an expression reads it (``encode(*)`` does not).

    A nested SELECT evaluates in a context whose document is one element of the value its
    FROM names (*nested*): names, ``*`` and ``encode(*)`` read that element."""

    def __init__(
        self,
        message: Message,
        doc: Any = _UNPARSED,
        *,
        nested: bool = False,
        root: _Context | None = None,
    ) -> None:
        self.message = message
        self._doc = doc
        self.nested = nested
        self.root = root
        """The evaluation's outermost context, which keeps its ``regexp_*`` time and ``md2``
        blocks; None in that context itself (a reference to itself would leave a cycle for
        the collector)."""
        self.regex_spent_s = 0.0
        self.md2_blocks = 0
        self.elements = 0
        self.output_bytes = 0
        """What the nested SELECTs' results add to the output so far (compact JSON)."""
        self.counted: dict[int, Any] = {}
        """Nested SELECT results already in :attr:`output_bytes`, by id (the value kept so
        the id stays its own): an outer result holding one adds only the rest."""
        self.started_s = time.thread_time() if root is None else 0.0

    @property
    def doc(self) -> Any:
        if self._doc is _UNPARSED:
            try:
                self._doc = _parse_json(self.message.payload)
            except RecursionError:
                raise _ParseHere from None
        return self._doc

    def item(self, expr: Expr, defer_encoding: bool) -> Any:
        """A SELECT item's value; an ``encode`` left as :class:`Encoded` when deferring."""
        if (
            defer_encoding
            and isinstance(expr, Call)
            and expr.name == "encode"
            and len(expr.args) == 2
        ):
            return self.encode(expr.args, defer=True)
        return self.eval(expr)

    def eval(self, expr: Expr) -> Any:
        match expr:
            case Literal(value):
                return value
            case Field(name):
                doc = self.doc
                return _read(doc.get(name, UNDEFINED)) if isinstance(doc, dict) else UNDEFINED
            case Star():
                return _read(self.doc)
            case Attr(base, name):
                value = self.eval(base)
                return _read(value.get(name, UNDEFINED)) if isinstance(value, dict) else UNDEFINED
            case Unary(op, operand):
                return self.unary(op, self.eval(operand))
            case Binary("and" | "or" as op, left, right):
                a, b = to_bool(self.eval(left)), to_bool(self.eval(right))
                if a is UNDEFINED or b is UNDEFINED:
                    return UNDEFINED
                return (a and b) if op == "and" else (a or b)
            case Binary(op, left, right):
                return self.binary(op, self.eval(left), self.eval(right))
            case ArrayLit(items):
                values = [self.eval(i) for i in items]
                return [v for v in values if v is not UNDEFINED]
            case ObjectLit(pairs):
                out = {}
                for key, item in pairs:
                    value = self.eval(item)
                    if value is not UNDEFINED:
                        out[key] = value
                return out
            case Cast(inner, type_name):
                return cast(self.eval(inner), type_name)
            case Call(name, args):
                return self.call(name, args)
            case Subquery():
                return self.subquery(expr)
            case Case(subject, branches, otherwise):
                return self.case(self.eval(subject), branches, otherwise)
        raise AssertionError(f"unknown node {expr!r}")

    def case(
        self, subject: Any, branches: tuple[tuple[Expr, Expr], ...], otherwise: Expr | None
    ) -> Any:
        """The result of the first branch whose value equals the subject (``=``), else the
        ELSE value, else Undefined; an Undefined subject is Undefined (AWS's note). Only
        the chosen result is evaluated."""
        if subject is UNDEFINED:
            return UNDEFINED
        for test, result in branches:
            candidate = self.eval(test)
            if candidate is not UNDEFINED and _equal(subject, candidate):
                return self.eval(result)
        return UNDEFINED if otherwise is None else self.eval(otherwise)

    def subquery(self, sub: Subquery) -> Any:
        """A nested SELECT: on an array, the list of each element's result (elements WHERE
        does not pass, and Undefined SELECT VALUE results, left out); on an object, its one
        result, as AWS's ``transform`` example 3 reads ``(select a, b from data2)``.
        Project rule where AWS is silent: any other source (missing, Null, a number, a
        string) is Undefined, and so is an object that WHERE does not pass."""
        source = self.eval(sub.source)
        if isinstance(source, list):
            results = (self.select_on(sub, _read(element)) for element in source)
            return self._counted([r for r in results if r is not UNDEFINED])
        if isinstance(source, dict):
            result = self.select_on(sub, source)
            if isinstance(sub.source, Star):  # FROM *: the payload is one row, so a list
                return self._counted([] if result is UNDEFINED else [result])
            return self._counted(result)
        return UNDEFINED

    def _counted(self, result: Any) -> Any:
        """Mark a nested SELECT's result as counted, its elements having been, one by one."""
        if isinstance(result, list | dict):
            (self.root or self).counted[id(result)] = result
        return result

    def _count_output(self, result: Any) -> None:
        """Add an element's result to the output's size, stopping the evaluation as soon as
        the output would be over :data:`RULE_OUTPUT_MAX_BYTES`: a nested SELECT repeats its
        items per element, so cheap work (``rpad(*, 1000)`` on 30,000 one-letter strings)
        builds tens of MB well within :data:`RULE_TIME_BUDGET_S`."""
        root = self.root or self
        left = RULE_OUTPUT_MAX_BYTES - root.output_bytes
        root.output_bytes += json_size(result, left, skip=root.counted) + 1  # and its comma
        if root.output_bytes > RULE_OUTPUT_MAX_BYTES:
            raise RuleOutputLimitError(
                _over_output(root.output_bytes)
                + f", at element {root.elements:,} of its nested SELECTs"
            )

    def select_on(self, sub: Subquery, element: Any) -> Any:
        root = self.root or self
        root.elements += 1
        if root.elements % _BUDGET_CHECK_EVERY == 0:
            spent = time.thread_time() - root.started_s
            if spent > RULE_TIME_BUDGET_S:
                raise RuleTimeLimitError(
                    f"the rule ran over the {RULE_TIME_BUDGET_S} s of CPU one rule may take on "
                    f"a message, at element {root.elements:,} of its nested SELECTs"
                )
        scope = _Context(self.message, element, nested=True, root=root)
        result = scope.result_on(sub, element)
        if result is not UNDEFINED:
            self._count_output(result)
        return result

    def result_on(self, sub: Subquery, element: Any) -> Any:
        """The nested SELECT's result on one element, in this element's context."""
        if sub.where is not None and self.eval(sub.where) is not True:
            return UNDEFINED
        if sub.value:
            return self.eval(sub.items[0].expr)
        out: dict[str, Any] = {}
        for item in sub.items:
            if isinstance(item.expr, Star) and item.alias is None:
                if isinstance(element, dict):
                    out.update(element)
                elif len(sub.items) == 1:
                    return element  # '*' alone is the element, as it is the payload above
                continue
            value = self.eval(item.expr)
            if value is not UNDEFINED and item.alias is not None:
                put_output(out, item.alias, value)
        return out

    def unary(self, op: str, v: Any) -> Any:
        if op == "not":
            b = to_bool(v)
            return UNDEFINED if b is UNDEFINED else not b
        if v is None:
            return None
        n = to_number(v)
        if isinstance(n, Decimal):
            return n.copy_negate()
        return UNDEFINED if n is UNDEFINED else -n

    def binary(self, op: str, a: Any, b: Any) -> Any:
        if a is UNDEFINED or b is UNDEFINED:
            return UNDEFINED
        if op == "=":
            return _equal(a, b)
        if op == "<>":
            return not _equal(a, b)
        if op in ("<", "<=", ">", ">="):
            x, y = to_number(a), to_number(b)
            if x is UNDEFINED or y is UNDEFINED:
                return UNDEFINED
            return {"<": x < y, "<=": x <= y, ">": x > y, ">=": x >= y}[op]
        if op == "+" and (isinstance(a, str) or isinstance(b, str)):
            x, y = to_string(a), to_string(b)
            return UNDEFINED if x is UNDEFINED or y is UNDEFINED else x + y
        if a is None or b is None:
            return None
        x, y = to_number(a), to_number(b)
        if x is UNDEFINED or y is UNDEFINED:
            return UNDEFINED
        if (op == "/" or op == "%") and y == 0:
            return UNDEFINED
        try:
            if isinstance(x, int) and isinstance(y, int):
                return bounded_int(_INT_OPS[op](x, y))
            return _DECIMAL_OPS[op](x, y)
        except DecimalException:  # beyond the Decimal range, or % with no exact quotient
            return UNDEFINED

    def call(self, name: str, args: tuple[Expr, ...]) -> Any:
        if not arity_fits(name, len(args)):
            return UNDEFINED  # spec §1.4: a wrong argument count is Undefined
        msg = self.message
        if name == "topic":
            if not args:
                return msg.topic
            return topic_level(msg.topic, _as_int(self.eval(args[0])))
        if name == "clientid":
            return msg.client_id
        if name == "timestamp":
            return msg.timestamp_ms
        if name == "newuuid":
            return str(uuid.uuid4())
        if name == "traceid":
            return msg.trace_id
        if name == "mod" or name == "remainder":
            a, b = self.eval(args[0]), self.eval(args[1])
            return UNDEFINED if a is None or b is None else self.binary("%", a, b)
        if name == "encode":
            return self.encode(args)
        values = [self.eval(a) for a in args]
        if name in REGEX_FUNCTIONS:
            return _regexp(name, values, self.root or self)
        if name == "md2":
            return _md2(values[0], self.root or self)
        return FUNCTION_IMPLS[name](*values)

    def encode(self, args: tuple[Expr, ...], *, defer: bool = False) -> Any:
        scheme = self.eval(args[1])
        if scheme != "base64":
            return UNDEFINED
        if isinstance(args[0], Star) and not self.nested:
            data = self.message.payload
        else:
            value = self.eval(args[0])
            text = to_string(value)
            utf8 = UNDEFINED if text is UNDEFINED else _utf8(text)
            if utf8 is None or utf8 is UNDEFINED:
                return UNDEFINED  # no value, or a string with no UTF-8 form (a lone surrogate)
            data = utf8
        return Encoded(bytes(data)) if defer else base64.b64encode(data).decode("ascii")


def topic_level(topic: str, n: Any) -> Any:
    """``topic(n)``: the n-th level of *topic* (from 1); undefined outside it."""
    levels = topic.split("/")
    if n is UNDEFINED or not 1 <= n <= len(levels):
        return UNDEFINED
    return levels[n - 1]


def _int_div(x: int, y: int) -> int:
    """Project rule: Int ``/`` truncates toward zero (``-7 / 2`` = ``-3``)."""
    q = abs(x) // abs(y)
    return q if (x >= 0) == (y >= 0) else -q


def _int_mod(x: int, y: int) -> int:
    return x - y * _int_div(x, y)


_INT_OPS: dict[str, Callable[[int, int], int]] = {
    "+": int.__add__,
    "-": int.__sub__,
    "*": int.__mul__,
    "/": _int_div,
    "%": _int_mod,
}


def _remainder(x: Number, y: Number) -> Decimal:
    """``x % y`` with a Decimal operand, written with the digits Java's
    ``BigDecimal.remainder(y, MathContext.DECIMAL128)`` gives it (the rules engine runs on
    the JVM). The value is Python's ``remainder`` (the dividend's sign, as Int ``%``; a
    quotient past 34 digits raises, so ``1E+40 % 3`` is Undefined rather than a guess).
    Python writes it at the smaller exponent of the two operands (``21.6 % 2.15`` is
    ``0.10``); Java subtracts the integral quotient times ``y``, the quotient being 0 at
    the preferred scale (``scale(x) - scale(y)``) when ``|x| < |y|`` and otherwise
    stripped of the trailing zeros that scale lets it drop, so ``0.1`` (and ``1.5 % 2.25``
    is ``1.5``). The two differ only when ``y`` has more decimals than ``x``."""
    result = CONTEXT.remainder(x, y)
    x_scale = -_exponent(x)
    y_scale = -_exponent(y)
    if y_scale <= x_scale:
        return result
    quotient = int(CONTEXT.divide_int(x, y))
    if quotient == 0:
        scale = x_scale
    else:
        digits = str(abs(quotient))
        spare_zeros = len(digits) - len(digits.rstrip("0"))
        scale = max(x_scale, y_scale - min(spare_zeros, y_scale - x_scale))
    return result.quantize(Decimal(1).scaleb(-scale, CONTEXT), context=CONTEXT)


def _exponent(n: Number) -> int:
    return 0 if isinstance(n, int) else int(n.as_tuple().exponent)


_DECIMAL_OPS: dict[str, Callable[[Number, Number], Decimal]] = {
    "+": CONTEXT.add,
    "-": CONTEXT.subtract,
    "*": CONTEXT.multiply,
    "/": CONTEXT.divide,
    "%": _remainder,
}
"""With a Decimal operand the result is a Decimal in the 34-digit context."""


def _as_int(v: Any) -> int | _Undefined:
    """An index or a time argument as an Int, truncated toward zero; Undefined beyond an
    Int's 34 digits."""
    n = to_number(v)
    if isinstance(n, Decimal):
        return int(n) if within_int(n) else UNDEFINED
    return n


# ---- functions ------------------------------------------------------------------------


def cast(v: Any, type_name: str) -> Any:
    """``cast(v AS type)`` by AWS's cast tables. A Decimal or Double result that is a whole
    number is an Int: the "Cast to decimal" table says that with SQL V2 (2016-03-23) "numeric
    values that are whole numbers, such as 10.0, return an Int value (10)", so
    ``cast(7 AS Decimal) / 2`` divides Ints (3); ``cast(7.5 AS Decimal)`` stays a Decimal."""
    if v is UNDEFINED or v is None:
        return UNDEFINED
    if type_name == "String":
        return to_string(v)
    if type_name == "Bool":
        if isinstance(v, bool):
            return v
        if is_number(v):
            return v != 0
        return to_bool(v)
    if isinstance(v, bool):
        return int(v)  # true = 1, false = 0; as a Decimal (1.0, 0.0) whole, so an Int too
    n = to_number(v) if isinstance(v, str | int | Decimal) else UNDEFINED
    if n is UNDEFINED:
        return UNDEFINED
    if type_name == "Int":
        return _truncate(n)
    if type_name == "Double":
        n = _double_decimal(n)
    return _read(n)


def _double_decimal(n: Number) -> Any:
    """``cast(x AS Double)``: AWS's cast table says "Casts value to Decimal (with double
    precision)", so the value is rounded to the nearest double and read back as the
    double's shortest decimal text (``cast(0.1/0.3 AS Double)`` is ``0.3333333333333333``,
    not 34 digits); :func:`cast` then makes a whole one an Int, as for ``AS Decimal``
    (``cast(7 AS Double) / 2`` is 3). Beyond the double range (``1E+400``) there is no
    double: Undefined, as for the double-precision functions."""
    return _from_double(float(n))


def _truncate(n: Number) -> Number:
    """Project rule: Decimal -> Int truncates toward zero. A Decimal of more than 34 digits
    is whole already and stays a Decimal, which is what an Int that large becomes."""
    if isinstance(n, int) or not within_int(n):
        return n
    return int(n)


def _get(x: Any, k: Any) -> Any:
    if isinstance(x, dict):
        return _read(x.get(k, UNDEFINED)) if isinstance(k, str) else UNDEFINED
    if isinstance(x, list | str):
        items = utf16_units(x) if isinstance(x, str) else x  # a string's unit, as charAt
        i = _as_int(k)
        if i is UNDEFINED or not 0 <= i < len(items):
            return UNDEFINED
        return _read(items[i])
    return UNDEFINED


def _abs(v: Any) -> Any:
    n = to_number(v)
    if isinstance(n, Decimal):
        return n.copy_abs()
    return UNDEFINED if n is UNDEFINED else abs(n)


def _rounding(mode: str) -> Callable[[Any], Any]:
    """``round``, ``floor``, ``ceil``: an Int, computed exactly on the Decimal (these are
    not among the functions AWS documents as computed in double precision). A Decimal of
    more than 34 digits has no fraction to round and stays a Decimal."""

    def apply(v: Any) -> Any:
        n = to_number(v)
        if not isinstance(n, Decimal) or not within_int(n):
            return n
        return int(n.to_integral_value(rounding=mode, context=CONTEXT))

    return apply


def _concat(*values: Any) -> Any:
    if not values or any(v is UNDEFINED for v in values):
        return UNDEFINED
    if len(values) == 1:
        return values[0]
    if any(isinstance(v, list) for v in values):
        out: list[Any] = []
        for v in values:
            out.extend(v if isinstance(v, list) else [v])
        return out
    parts = [to_string(v) for v in values]
    return UNDEFINED if any(p is UNDEFINED for p in parts) else "".join(parts)


def _case(fn: Callable[[str], str]) -> Callable[[Any], Any]:
    def apply(v: Any) -> Any:
        s = to_string(v)
        return UNDEFINED if s is UNDEFINED else fn(s)

    return apply


def _substring(s: Any, i: Any, j: Any = UNDEFINED) -> Any:
    """Java's ``substring`` in UTF-16 units (:func:`utf16_units`), the indexes clamped."""
    text = to_string(s)
    start = _string_index(i)
    if text is UNDEFINED or start is UNDEFINED:
        return UNDEFINED
    units = utf16_units(text)
    end = len(units) if j is UNDEFINED else _string_index(j)
    if end is UNDEFINED:
        return UNDEFINED
    start = min(max(start, 0), len(units))
    end = min(max(end, 0), len(units))
    return from_utf16_units(units[start:end]) if start < end else ""


_PAST_BMP = re.compile("[\U00010000-\U0010ffff]")


def utf16_units(text: str) -> str:
    """*text* with each character past U+FFFF written as its two UTF-16 surrogates, so that
    ``len``, indexes and ``find`` count as Java's ``String`` does (the rules engine runs on
    the JVM): ``length('a😀b')`` is 4 there, and ``substring`` may cut a pair in two."""
    if _PAST_BMP.search(text) is None:
        return text  # the common case: code points are units
    return _PAST_BMP.sub(_surrogates, text)


def _surrogates(m: re.Match[str]) -> str:
    n = ord(m.group()) - 0x10000
    return chr(0xD800 + (n >> 10)) + chr(0xDC00 + (n & 0x3FF))


def from_utf16_units(units: str) -> str:
    """Surrogate pairs of *units* joined back into their characters; a lone surrogate (a
    pair that was cut) stays, as in Java's string."""
    return units.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")


def _string_index(v: Any) -> Any:
    """A substring index: truncated to an Int; one beyond an Int's 34 digits is clamped
    like any out-of-range index (AWS: ``substring(false, -2.411E247)`` = ``"false"``)."""
    n = to_number(v)
    if isinstance(n, Decimal) and not within_int(n):
        return -1 if n < 0 else MAX_INT
    return _as_int(n)


def _startswith(s: Any, p: Any) -> Any:
    if s is None or p is None:
        return UNDEFINED
    a, b = to_string(s), to_string(p)
    return UNDEFINED if a is UNDEFINED or b is UNDEFINED else a.startswith(b)


def _decode(s: Any, scheme: Any) -> Any:
    """``decode(s, 'base64')``: text that is no base64 is Null. The final unit's padding may
    be left out (``aGk`` is ``hi``), as Java's ``Base64.getDecoder()`` (and the MIME and
    Commons Codec decoders) read it; Python's ``b64decode`` would refuse it."""
    if scheme != "base64" or not isinstance(s, str):
        return UNDEFINED
    if len(s) % 4 in (2, 3) and "=" not in s:
        s += "=" * (4 - len(s) % 4)
    try:
        data = base64.b64decode(s, validate=True)
        text = data.decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    doc = parse_json(text)
    return text if doc is UNDEFINED else _read(doc)


def _parse_time(pattern: Any, ms: Any, zone: Any = "UTC") -> Any:
    """Format epoch milliseconds with a Joda-Time pattern (:func:`joda_format`); an unknown
    zone, a pattern it does not write or a bad argument is Undefined."""
    millis = _as_int(ms)
    if not isinstance(pattern, str) or millis is UNDEFINED or not isinstance(zone, str):
        return UNDEFINED
    tz = zone_by_id(zone)
    if tz is None:
        return UNDEFINED
    try:
        at = datetime.fromtimestamp(millis / 1000, tz)
    except (ValueError, OverflowError, OSError):
        return UNDEFINED
    text = joda_format(pattern, at, millis)
    return UNDEFINED if text is None else text


# ---- functions beyond the pipeline's own (AWS's functions page, computed locally) ----


def _from_double(x: float) -> Any:
    """A double result as the Decimal AWS makes of it ("Decimal (with double precision)"):
    the double's shortest decimal text; not finite (an imaginary or infinite result) is
    Undefined. It stays a Decimal, as the functions page's tables type it, so that
    ``sqrt(9) / 2`` divides a Decimal (1.5) as the ``/`` table says, not Ints (1); a whole
    one is still written as an Int (:func:`number_text`), as every 2016-03-23 whole number
    is."""
    if not math.isfinite(x):
        return UNDEFINED
    return CONTEXT.create_decimal(repr(x))


def _double(fn: Callable[..., float]) -> Callable[..., Any]:
    """acos, sin, sqrt, power, ...: arguments (numbers or numeric strings) rounded to
    double precision, then *fn*; a domain error or overflow is Undefined."""

    def apply(*values: Any) -> Any:
        xs = []
        for v in values:
            n = to_number(v)
            if n is UNDEFINED:
                return UNDEFINED
            xs.append(float(n))
        try:
            return _from_double(fn(*xs))
        except (ValueError, OverflowError, ZeroDivisionError):
            return UNDEFINED

    return apply


def _floor_int(v: Any) -> Any:
    """An argument AWS "rounds down to the nearest Int" (bit functions, chr, lpad, trunc's
    places): a number or numeric string; anything else Undefined."""
    n = to_number(v)
    if not isinstance(n, Decimal):
        return n
    if not within_int(n):
        return UNDEFINED
    return int(n.to_integral_value(rounding=ROUND_FLOOR, context=CONTEXT))


def _bits(fn: Callable[..., int]) -> Callable[..., Any]:
    def apply(*values: Any) -> Any:
        ints = [_floor_int(v) for v in values]
        if any(i is UNDEFINED for i in ints):
            return UNDEFINED
        try:
            return bounded_int(fn(*ints))
        except DecimalException:
            return UNDEFINED

    return apply


def _sign(v: Any) -> Any:
    n = to_number(v)
    if n is UNDEFINED:
        return UNDEFINED
    return (n > 0) - (n < 0)


def _trunc(v: Any, places: Any) -> Any:
    """``trunc(x, n)``: x cut (toward zero) to n decimal places, n clamped to [0, 34],
    trailing zeros stripped (``trunc(2.00, 5)`` = 2)."""
    n = to_number(v)
    if n is UNDEFINED or not is_number(places):
        return UNDEFINED
    if isinstance(n, int):
        return n
    digits = _floor_int(places)
    if digits is UNDEFINED:  # a number past an Int's 34 digits: clamped like any other
        digits = 0 if places < 0 else 34
    digits = min(max(digits, 0), 34)
    if n.as_tuple().exponent < -digits:  # type: ignore[operator]
        n = n.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_DOWN, context=CONTEXT)
    return _read(n.normalize(CONTEXT))


def _nanvl(a: Any, b: Any) -> Any:
    """The first argument unless it is Undefined or Null (IoT SQL numbers have no NaN)."""
    return b if a is UNDEFINED or a is None else a


def _chr(v: Any) -> Any:
    if isinstance(v, bool):
        return UNDEFINED
    code = _floor_int(v)
    return chr(code) if code is not UNDEFINED and 0 <= code <= 127 else UNDEFINED


def _strings(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A function of Strings: every argument converted with the standard conversions;
    Null or Undefined (which do not convert) make the result Undefined."""

    def apply(*values: Any) -> Any:
        texts = [to_string(v) for v in values]
        if any(t is UNDEFINED for t in texts):
            return UNDEFINED
        return fn(*texts)

    return apply


def _utf8(text: str) -> bytes | None:
    """*text* as UTF-8; None for a string that has none (a lone surrogate from a
    ``\\ud800`` escape in the payload)."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return None


def _numbytes(text: str) -> Any:
    data = _utf8(text)
    return UNDEFINED if data is None else len(data)


def _hash(name: str) -> Callable[..., Any]:
    def digest(text: str) -> Any:
        data = _utf8(text)
        if data is None:
            return UNDEFINED
        return hashlib.new(name, data).hexdigest()

    return _strings(digest)


MD2_MAX_BLOCKS = 131_072 // 16 + 2
"""16-byte blocks one rule's ``md2`` calls may hash together on one message (project rule;
AWS documents no bound): what one digest of a whole 128 KiB payload hashes (its blocks,
then the padding and the checksum). hashlib has no MD2, and the Python one
(:mod:`cloud.rules.md2`) costs about 45 microseconds a block with two more per call: a
nested SELECT hashing each short element of a 128 KiB payload took over two seconds. At
the bound it is about a third of a second, well within :data:`RULE_TIME_BUDGET_S`; a call
that would go over stops the evaluation with :class:`Md2LimitError` before hashing, as
over the regular expressions' budget."""


def _md2(value: Any, root: _Context) -> Any:
    """``md2`` counted against the evaluation's blocks (kept by its outermost context, so a
    nested SELECT's calls share them)."""
    text = to_string(value)
    data = None if text is UNDEFINED else _utf8(text)
    if data is None:
        return UNDEFINED
    blocks = len(data) // 16 + 2
    if root.md2_blocks + blocks > MD2_MAX_BLOCKS:
        raise Md2LimitError(
            f"md2(): a {len(data)}-byte string takes the message's digests over the "
            f"{MD2_MAX_BLOCKS} blocks of 16 bytes one rule's md2 calls may hash on a message"
        )
    root.md2_blocks += blocks
    return md2_hex(data)


_BLANKS = " \t"
"""What ltrim, rtrim and trim remove: "white space (tabs and spaces)"."""


def _pad(left: bool) -> Callable[[Any, Any], Any]:
    """lpad/rpad: that many spaces added (not padded to a width), the count rounded down
    and clamped to [0, 1000]; a count that is not a number or numeric string is Undefined."""

    def apply(value: Any, count: Any) -> Any:
        text = to_string(value)
        n = UNDEFINED if isinstance(count, bool) else _floor_int(count)
        if text is UNDEFINED or n is UNDEFINED:
            return UNDEFINED
        spaces = " " * min(max(n, 0), 1000)
        return spaces + text if left else text + spaces

    return apply


REPLACE_MAX_CHARS = 128 * 1024
"""Project rule (AWS documents no bound): a ``replace`` or ``regexp_replace`` result longer
than this and than its string is Undefined, found before it is built. Without it one call
on a 64 KiB string with a 64 KiB replacement (``replace(s, '', t)``) builds gigabytes."""


def _too_long(length: int, text: str) -> bool:
    return length > max(REPLACE_MAX_CHARS, len(text))


def _replace(text: str, old: str, new: str) -> Any:
    count = len(text) + 1 if not old else text.count(old)
    if _too_long(len(text) + count * (len(new) - len(old)), text):
        return UNDEFINED
    return text.replace(old, new)


REGEX_TIME_BUDGET_S = 1.0
"""CPU seconds one rule's ``regexp_*`` calls may take together on one message: its
SELECT, WHERE and nested SELECTs (project rule; AWS documents no bound). The ``regex``
package counts CPU time, so the budget does not shrink on a loaded machine. Without it a
backtracking pattern holds the rules worker for minutes on a string a device controls:
``(a+)+$`` on 30 characters, or plain ``a+b`` on 128 KiB of ``a``, under ``re``. Over
budget, the evaluation stops with :class:`RegexTimeLimitError`; an ordinary pattern on a
whole 128 KiB payload takes milliseconds."""


class RuleCostLimitError(RuntimeError):
    """A rule's evaluation on one message ran over a bound on its cost (project rules: AWS
    documents none), so it stops rather than hold the rules worker.

    Not a PlantwatchError on purpose: the rules runner sets aside (quarantines, reason
    ``rule_failed``) a message whose rules raise this, where a PlantwatchError would leave
    the batch unacknowledged to come back and stall the worker again."""


RULE_TIME_BUDGET_S = 1.0
"""CPU seconds one rule's evaluation may take on one message (project rule; AWS documents
no bound). A nested SELECT runs its items once per element of the array it names, and a
128 KiB payload holds 65,000 elements (``[0,0,...]``): 20 microseconds of work an element
(``time_to_epoch`` or ``parse_time`` on each) is over a second, and several items are
several seconds. The time is looked at every :data:`_BUDGET_CHECK_EVERY` elements of the
evaluation's nested SELECTs (nothing else in IoT SQL repeats work per element of the
payload); over it, the evaluation stops with :class:`RuleTimeLimitError`."""
_BUDGET_CHECK_EVERY = 256
"""Elements between two looks at the clock: a look costs a system call. What the items do
on an element is bounded by the element's size (and ``regexp_*`` and ``md2`` by their own
bounds), so 256 elements take the evaluation little past the budget."""


RULE_OUTPUT_MAX_BYTES = 1024 * 1024
"""Bytes of compact JSON one rule's output on one message may hold (project rule; AWS
documents no bound on a rule's output). 1 MiB is the most a Kinesis record (data and
partition key) or an asynchronous Lambda invocation carries, the largest message any rule
action but s3 can deliver, and eight times a whole 128 KiB payload. Without it a nested
SELECT's cheap items (``rpad(*, 1000)`` on each of 30,000 elements) build tens of MB
within :data:`RULE_TIME_BUDGET_S`. Over it, the evaluation stops with
:class:`RuleOutputLimitError`; strings count their characters, so text that JSON escapes
may pass a little over."""


class RuleOutputLimitError(RuleCostLimitError):
    """A rule's output on one message would be over :data:`RULE_OUTPUT_MAX_BYTES`."""


def _over_output(size: int) -> str:
    return (
        f"the rule's output would be over the {RULE_OUTPUT_MAX_BYTES:,} bytes one rule may "
        f"produce on a message (at least {size:,})"
    )


def json_size(value: Any, limit: int, *, skip: dict[int, Any] | None = None) -> int:
    """The length of *value*'s compact JSON, a string counting its characters and quotes;
    past *limit* the count stops there, so a huge value costs no more than *limit*. A list
    or object whose id is in *skip* counts nothing (it was counted before). Iterative: an
    output holds the payload's values, which may nest deeper than recursion could go."""
    size = 0
    stack = [value]
    while stack and size <= limit:
        v = stack.pop()
        if isinstance(v, str):
            size += len(v) + 2
        elif isinstance(v, bool) or v is None:
            size += 4 if v is not False else 5
        elif isinstance(v, int):
            size += len(str(v))
        elif isinstance(v, Decimal):
            size += len(number_text(v))
        elif isinstance(v, dict):
            if skip is not None and id(v) in skip:
                continue
            size += 2 + max(len(v) - 1, 0)
            for key, item in v.items():
                size += len(key) + 3
                stack.append(item)
        elif isinstance(v, list):
            if skip is not None and id(v) in skip:
                continue
            size += 2 + max(len(v) - 1, 0)
            stack.extend(v)
        elif isinstance(v, Encoded):
            size += 4 * ((len(v.data) + 2) // 3) + 2
        elif isinstance(v, bytes):
            size += len(v)
        else:
            size += len(repr(v))
    return size


class RuleTimeLimitError(RuleCostLimitError):
    """A rule's evaluation on one message ran over :data:`RULE_TIME_BUDGET_S`."""


class RegexTimeLimitError(RuleCostLimitError):
    """A message's regular expressions ran over :data:`REGEX_TIME_BUDGET_S`."""


class Md2LimitError(RuleCostLimitError):
    """A message's ``md2`` calls would hash more than :data:`MD2_MAX_BLOCKS`."""


def _regexp(name: str, values: list[Any], root: _Context) -> Any:
    """A ``regexp_*`` call within what is left of the evaluation's regular-expression time
    (kept by its outermost context, so a nested SELECT's calls share it)."""
    texts = [to_string(v) for v in values]
    if any(t is UNDEFINED for t in texts):
        return UNDEFINED
    left = REGEX_TIME_BUDGET_S - root.regex_spent_s
    started = time.thread_time()
    try:
        if left <= 0:
            raise TimeoutError
        return _REGEXP_IMPLS[name](*texts, timeout=left)
    except TimeoutError:
        raise RegexTimeLimitError(
            f"{name}(): pattern {texts[1]!r} on a {len(texts[0])}-character string ran over "
            f"the {REGEX_TIME_BUDGET_S} s one rule's regular expressions may take on a message"
        ) from None
    finally:
        root.regex_spent_s += time.thread_time() - started


def _regexp_matches(text: str, java: str, *, timeout: float) -> Any:
    return regex.search(python_pattern(java), text, REGEX_FLAGS, timeout=timeout) is not None


def _regexp_substr(text: str, java: str, *, timeout: float) -> Any:
    """The first match; project rule where AWS is silent: no match is Undefined."""
    match = regex.search(python_pattern(java), text, REGEX_FLAGS, timeout=timeout)
    return UNDEFINED if match is None else match.group(0)


def _regexp_replace(text: str, java: str, replacement: str, *, timeout: float) -> Any:
    """Every match replaced; the replacement in Java's syntax (``$1``, ``${name}``, ``\\$``),
    as the rules engine reads it. A replacement Java would refuse is Undefined, unless
    nothing matches: Java's ``replaceAll`` then gives the string back without reading it."""
    compiled = regex.compile(python_pattern(java), REGEX_FLAGS)
    parts = _java_replacement(replacement, compiled)
    if parts is None:  # Java reads the replacement at the first match, if there is one
        return text if compiled.search(text, timeout=timeout) is None else UNDEFINED

    # as a template, expanded in C: a callable per match would cost more than the budget
    # on a long string with many matches (a group that did not match expands to "")
    template = "".join(
        p.replace("\\", "\\\\") if isinstance(p, str) else f"\\g<{p}>" for p in parts
    )
    if can_match_empty(java):
        started = time.thread_time()
        if _finders_part(compiled, text, timeout):
            return _java_replace(compiled, template, text, timeout)
        timeout -= time.thread_time() - started
    literal = sum(len(p) for p in parts if isinstance(p, str))
    groups = [p for p in parts if not isinstance(p, str)]
    if _too_long(len(text) + (len(text) + 1) * (literal + len(groups) * len(text)), text):
        # the result could be too long: measured match by match before it is built
        started = time.thread_time()
        length = len(text)
        for m in compiled.finditer(text, timeout=timeout):
            length += literal - (m.end() - m.start())
            length += sum(m.end(g) - m.start(g) for g in groups if m.start(g) >= 0)
        if _too_long(length, text):
            return UNDEFINED
        timeout -= time.thread_time() - started
        if timeout <= 0:
            raise TimeoutError
    return compiled.sub(template, text, timeout=timeout)


def _finders_part(compiled: Any, text: str, timeout: float) -> bool:
    """Whether Python's finder takes a match where an empty one ended, which Java's never
    does: only then do their matches differ (and :func:`_java_replace` is needed)."""
    empty_end = -1
    for m in compiled.finditer(text, timeout=timeout):
        if m.start() == empty_end:
            return True
        empty_end = m.end() if m.start() == m.end() else -1
    return False


def _java_replace(compiled: Any, template: str, text: str, timeout: float) -> Any:
    """``replaceAll`` of a pattern that can match empty, finding as Java's ``Matcher.find``
    does: one character on after an empty match (``.*?`` on ``ab`` matches empty at 0, 1
    and 2), where Python's finder tries a longer match at the same place (and takes ``a``).
    One search per match, from Python: slower than :meth:`sub`, so only for such patterns.
    A result over :data:`REPLACE_MAX_CHARS` (and longer than *text*) is Undefined."""
    started = time.thread_time()
    out: list[str] = []
    length = 0
    last = 0
    pos = 0
    while pos <= len(text):
        left = timeout - (time.thread_time() - started)
        if left <= 0:
            raise TimeoutError
        m = compiled.search(text, pos, timeout=left)
        if m is None:
            break
        out.append(text[last : m.start()])
        out.append(m.expand(template))
        length += len(out[-2]) + len(out[-1])
        if _too_long(length + len(text) - m.end(), text):
            return UNDEFINED
        last = m.end()
        pos = m.end() + 1 if m.end() == m.start() else m.end()
    out.append(text[last:])
    return "".join(out)


_REGEXP_IMPLS: dict[str, Callable[..., Any]] = {
    "regexp_matches": _regexp_matches,
    "regexp_replace": _regexp_replace,
    "regexp_substr": _regexp_substr,
}


def _java_replacement(text: str, pattern: Any) -> list[str | int] | None:
    """Java's ``Matcher.appendReplacement`` syntax: ``\\x`` is x, ``$n`` takes as many
    digits as still name a group, ``${name}`` a named group; anything else is an error."""
    parts: list[str | int] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            if i + 1 >= len(text):
                return None
            parts.append(text[i + 1])
            i += 2
        elif ch == "$":
            if text.startswith("{", i + 1):
                end = text.find("}", i + 2)
                name = text[i + 2 : end] if end > 0 else ""
                if name not in pattern.groupindex:
                    return None
                parts.append(pattern.groupindex[name])
                i = end + 1
                continue
            if i + 1 >= len(text) or not "0" <= text[i + 1] <= "9":
                return None
            group = int(text[i + 1])
            if group > pattern.groups:
                return None
            i += 2
            while i < len(text) and "0" <= text[i] <= "9":
                longer = group * 10 + int(text[i])
                if longer > pattern.groups:
                    break
                group = longer
                i += 1
            parts.append(group)
        else:
            parts.append(ch)
            i += 1
    return parts


def _time_to_epoch(timestamp: Any, pattern: Any) -> Any:
    if not isinstance(timestamp, str) or not isinstance(pattern, str):
        return UNDEFINED
    ms = epoch_ms(timestamp, pattern)
    return UNDEFINED if ms is None else ms


TRANSFORM_MAX_BYTES = 128 * 1024
"""AWS: "The array returned by this function is limited to 128 KiB"."""


def _transform(mode: Any, attributes: Any, items: Any) -> Any:
    """``transform('enrichArray', object, array)``: each element of the array (all must be
    objects) with the object's attributes added. A result over 128 KiB (AWS's limit) is
    Undefined, measured before it is built: a 100 KB object times 10,000 elements of one
    payload would otherwise be gigabytes."""
    if mode != "enrichArray" or not isinstance(attributes, dict) or not isinstance(items, list):
        return UNDEFINED
    if not all(isinstance(item, dict) for item in items):
        return UNDEFINED
    attributes_text, items_text = to_string(attributes), to_string(items)
    if attributes_text is UNDEFINED or items_text is UNDEFINED:
        return UNDEFINED
    if len(items_text) + len(items) * len(attributes_text) > TRANSFORM_MAX_BYTES:
        return UNDEFINED
    return [{**item, **attributes} for item in items]


FUNCTION_IMPLS: dict[str, Callable[..., Any]] = {
    "get": _get,
    "isundefined": lambda v: v is UNDEFINED,
    "isnull": lambda v: v is None,
    "abs": _abs,
    "round": _rounding(ROUND_HALF_UP),  # halves away from zero: 1.5 -> 2, -1.5 -> -2
    "floor": _rounding(ROUND_FLOOR),
    "ceil": _rounding(ROUND_CEILING),
    "concat": _concat,
    "lower": _case(str.lower),
    "upper": _case(str.upper),
    "substring": _substring,
    "startswith": _startswith,
    "decode": _decode,
    "parse_time": _parse_time,
    "time_to_epoch": _time_to_epoch,
    "sql_version": lambda: SQL_VERSION,
    "rand": lambda: _from_double(random.random()),
    "sign": _sign,
    "trunc": _trunc,
    "nanvl": _nanvl,
    "acos": _double(math.acos),
    "asin": _double(math.asin),
    "atan": _double(math.atan),
    "atan2": _double(math.atan2),
    "cos": _double(math.cos),
    "cosh": _double(math.cosh),
    "exp": _double(math.exp),
    "ln": _double(math.log),
    "log": _double(math.log10),
    "power": _double(math.pow),
    "sin": _double(math.sin),
    "sinh": _double(math.sinh),
    "sqrt": _double(math.sqrt),
    "tan": _double(math.tan),
    "tanh": _double(math.tanh),
    "bitand": _bits(int.__and__),
    "bitor": _bits(int.__or__),
    "bitxor": _bits(int.__xor__),
    "bitnot": _bits(int.__invert__),
    "chr": _chr,
    "endswith": lambda s, p: UNDEFINED if s is None or p is None else _strings(str.endswith)(s, p),
    "indexof": _strings(lambda t, p: utf16_units(t).find(utf16_units(p))),
    "length": _strings(lambda t: len(utf16_units(t))),
    "numbytes": _strings(_numbytes),
    "lpad": _pad(left=True),
    "rpad": _pad(left=False),
    "ltrim": _strings(lambda t: t.lstrip(_BLANKS)),
    "rtrim": _strings(lambda t: t.rstrip(_BLANKS)),
    "trim": _strings(lambda t: t.strip(_BLANKS)),
    "replace": _strings(_replace),
    **{name: _hash(name) for name in HASH_FUNCTIONS if name != "md2"},
    "transform": _transform,
}
