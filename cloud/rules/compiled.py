"""Rules whose SELECT only reads the message's envelope, evaluated without the evaluator.

Why: the project's telemetry rule (``SELECT encode(*, 'base64') AS payload, topic() AS
topic, clientid() AS clientid, timestamp() AS received_ms FROM ...``) runs on every message
the rules runner takes in. Walking its syntax tree for each one cost several microseconds
of a budget of tens. A statement built only of such items (no WHERE, no ``*`` that parses
the payload) is turned once into a list of small item readers; anything else returns None
and goes through :func:`cloud.rules.evaluate.evaluate` as before.

The output is the evaluator's, item for item (``tests/property/test_compiled_rules.py``
checks that on random statements and messages).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from cloud.rules.evaluate import UNDEFINED, Encoded, Message, RuleOutput, topic_level
from cloud.rules.sql import Call, Expr, Literal, Star, Statement

Reader = Callable[[Message], Any]
Compiled = Callable[[Message], RuleOutput]


def compile_statement(statement: Statement, *, defer_encoding: bool = False) -> Compiled | None:
    """A function giving ``evaluate(statement, message, defer_encoding=...)`` for a message
    whose topic matches the statement's FROM filter; None when the statement needs the
    general evaluator."""
    if statement.where is not None or statement.value:
        return None
    readers: list[tuple[str, Reader]] = []
    for item in statement.items:
        if item.alias is None:
            return None  # only '*' has no alias, and '*' reads the payload
        if "." in item.alias:
            return None  # a dotted name nests the output: the evaluator builds it
        reader = _reader(item.expr, defer_encoding)
        if reader is None:
            return None
        readers.append((item.alias, reader))

    def run(message: Message) -> RuleOutput:
        out: dict[str, Any] = {}
        for alias, read in readers:
            value = read(message)
            if value is not UNDEFINED:
                out[alias] = value
        return RuleOutput(out)

    return run


def _reader(expr: Expr, defer_encoding: bool) -> Reader | None:
    if isinstance(expr, Literal):
        value = expr.value
        return lambda _message: value
    if not isinstance(expr, Call):
        return None
    name, args = expr.name, expr.args
    if name == "clientid" and not args:
        return lambda message: message.client_id
    if name == "timestamp" and not args:
        return lambda message: message.timestamp_ms
    if name == "topic":
        if not args:
            return lambda message: message.topic
        if len(args) == 1 and isinstance(args[0], Literal) and type(args[0].value) is int:
            return _topic_level(args[0].value)
        return None
    if (
        name == "encode"
        and len(args) == 2
        and isinstance(args[0], Star)
        and isinstance(args[1], Literal)
        and args[1].value == "base64"
        and type(args[1].value) is str
    ):
        if defer_encoding:
            return lambda message: Encoded(bytes(message.payload))
        return lambda message: base64.b64encode(message.payload).decode("ascii")
    return None


def _topic_level(n: int) -> Reader:
    return lambda message: topic_level(message.topic, n)
