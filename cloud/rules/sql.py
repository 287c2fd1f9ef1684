"""AWS IoT SQL (version 2016-03-23), the subset plantwatch runs: text -> frozen AST.

Anything outside the subset is rejected here, at load time, with a :class:`RuleSqlError`
whose ``position`` is the 1-based character offset of the offending token, so a rule that
loads is a rule the evaluator can run.

Grammar (precedence lowest to highest, spec §1.5 project rule)::

    statement := SELECT [VALUE] item {, item} [FROM 'filter'] [WHERE expr]
                 (no FROM: a rule only Basic Ingest triggers)
    item      := '*' [AS name] | expr [AS name {. name}]
    expr      := or;  or := and {OR and};  and := not {AND not};  not := NOT not | cmp
    cmp       := add [(= | <> | < | <= | > | >=) add]
    add       := mul {(+ | -) mul};  mul := unary {(* | / | %) unary}
    unary     := - unary | postfix;  postfix := (primary | '*' . name) {. name}
    primary   := literal | name | func(arg {, arg}) | cast(expr AS type) | (expr) | [..] | {..}
               | (SELECT [VALUE] item {, item} FROM (expr | '*') [WHERE expr])
               | CASE expr WHEN expr THEN expr {WHEN expr THEN expr} [ELSE expr] END
    arg       := '*' | expr | SELECT [VALUE] item {, item} FROM (expr | '*') [WHERE expr]

A nested SELECT (2016-03-23) reads the value its FROM expression names in the message: each
element of an array, or an object itself (AWS's nested-queries page and its ``transform``
example 3), with names inside it resolved against that element.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal, DecimalException
from re import _constants as re_constants  # type: ignore[attr-defined]
from re import _parser as re_parser  # type: ignore[attr-defined]
from typing import Any

import regex

from cloud.rules.numbers import INT_DIGITS, decimal_from_text, whole_to_int
from cloud.rules.topic_filter import validate_filter
from edge.errors import RuleSqlError

SQL_VERSION = "2016-03-23"

HASH_FUNCTIONS = ("md2", "md5", "sha1", "sha224", "sha256", "sha384", "sha512")
"""AWS's "Hashing functions": each the hex digest of its argument's UTF-8 bytes."""
# name -> (min args, max args or None for any)
FUNCTIONS: dict[str, tuple[int, int | None]] = {
    "topic": (0, 1),
    "clientid": (0, 0),
    "timestamp": (0, 0),
    "newuuid": (0, 0),
    "traceid": (0, 0),
    "sql_version": (0, 0),
    "rand": (0, 0),
    "get": (2, 2),
    "isundefined": (1, 1),
    "isnull": (1, 1),
    "abs": (1, 1),
    "round": (1, 1),
    "floor": (1, 1),
    "ceil": (1, 1),
    "concat": (0, None),
    "lower": (1, 1),
    "upper": (1, 1),
    "substring": (2, 3),
    "startswith": (2, 2),
    "encode": (2, 2),
    "decode": (2, 2),
    "parse_time": (2, 3),
    "time_to_epoch": (2, 2),
    "mod": (2, 2),
    "remainder": (2, 2),
    "sign": (1, 1),
    "trunc": (2, 2),
    "nanvl": (2, 2),
    **{name: (1, 1) for name in ("acos", "asin", "atan", "cos", "cosh", "exp", "ln", "log")},
    **{name: (1, 1) for name in ("sin", "sinh", "sqrt", "tan", "tanh")},
    "atan2": (2, 2),
    "power": (2, 2),
    "bitand": (2, 2),
    "bitor": (2, 2),
    "bitxor": (2, 2),
    "bitnot": (1, 1),
    "chr": (1, 1),
    "endswith": (2, 2),
    "indexof": (2, 2),
    "length": (1, 1),
    "numbytes": (1, 1),
    "lpad": (2, 2),
    "rpad": (2, 2),
    "ltrim": (1, 1),
    "rtrim": (1, 1),
    "trim": (1, 1),
    "replace": (3, 3),
    "regexp_matches": (2, 2),
    "regexp_replace": (3, 3),
    "regexp_substr": (2, 2),
    **{name: (1, 1) for name in HASH_FUNCTIONS},
    "transform": (3, 3),
}
NEEDS_AWS = {
    "aws_lambda": "it calls an AWS Lambda function",
    "get_dynamodb": "it reads an Amazon DynamoDB table",
    "get_secret": "it reads AWS Secrets Manager",
    "get_thing_shadow": "it reads a Device Shadow through the AWS IoT service",
    "get_registry_data": "it reads the AWS IoT registry",
    "machinelearning_predict": "it calls Amazon Machine Learning",
    "principal": "it is the certificate or IAM identity AWS IoT authenticated the publisher "
    "with, which the local broker does not have",
    "accountid": "it is the AWS account that owns the rule",
    "sourceip": "it is the publisher's IP address as AWS IoT saw it",
    "get_mqtt_property": "the local rules runner does not receive the MQTT 5 properties",
    "get_user_properties": "the local rules runner does not receive the MQTT 5 properties",
}
"""Functions AWS documents whose value only AWS has: refused at load, never a silent
Undefined or a made-up value."""
REGEX_FUNCTIONS = ("regexp_matches", "regexp_replace", "regexp_substr")
"""Their pattern (second argument) must be a string literal: compiled at load, so a bad
pattern is an error naming it, and a device cannot send a pattern that backtracks for
minutes (project rule; AWS also takes an expression)."""
REGEX_FLAGS = regex.VERSION0 | regex.ASCII
"""Patterns run on the ``regex`` package, whose matches can be given a time limit (``re``
has none, and a device controls the string); VERSION0 is its ``re``-compatible syntax, and
a pattern loads only if ``re`` accepts it too (with :data:`RE_FLAGS`), so what loads is
what ``re`` reads. ASCII, as the rules engine's Java ``Pattern`` reads a pattern without
flags: ``\\d \\w \\s`` are ASCII classes (``'٣'`` is no digit, ``'é'`` no word character)
and ``(?i)`` folds ASCII letters only (``(?i)é`` does not match ``É``). ``\\b`` is Java's
own (:func:`python_pattern`)."""
RE_FLAGS = re.ASCII
CAST_TYPES = {
    "string": "String",
    "varchar": "String",
    "text": "String",
    "nvarchar": "String",
    "ntext": "String",
    "int": "Int",
    "integer": "Int",
    "double": "Double",
    "decimal": "Decimal",
    "bool": "Bool",
    "boolean": "Bool",
}
KEYWORDS = {"select", "from", "where", "as", "and", "or", "not", "true", "false", "null", "value"}
COMPARISONS = ("=", "<>", "<", "<=", ">", ">=")
_CLAUSE_WORDS = ("select", "from", "where", "as")
"""Keywords that cannot be an output name after AS (they end or restart the statement)."""
UNSUPPORTED_OPERATORS = {
    "in": "write x = a OR x = b",
    "contains": "for a string write indexof(s, t) >= 0",
}
"""Operators AWS documents that the local engine refuses, with what to write instead."""
NOT_IOT_SQL = {
    "is": "write isNull(x), or isUndefined(x) for a missing field",
    "between": "write x >= a AND x <= b",
    "like": "write regexp_matches(s, pattern), or startswith(s, prefix)",
}
"""Other SQL's operators, absent from IoT SQL's operators page, with the IoT SQL way."""
MAX_DEPTH = 64
"""Nesting the parser recurses through: parentheses, NOT, unary minus, calls, literals."""
MAX_TREE_DEPTH = 256
"""Depth of an expression's tree, chains included: ``a + a + ...`` and ``a.b.b...`` parse in
loops, yet each operator or field is one more level the evaluator recurses through."""


# ---- AST ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Literal:
    value: Any


@dataclass(frozen=True, slots=True)
class Field:
    """A top-level payload key, e.g. ``temp`` in ``temp.inner``."""

    name: str


@dataclass(frozen=True, slots=True)
class Star:
    """``*``: the whole payload (raw bytes when it is not JSON)."""


@dataclass(frozen=True, slots=True)
class Attr:
    base: Expr
    name: str


@dataclass(frozen=True, slots=True)
class Call:
    name: str
    args: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Cast:
    expr: Expr
    type: str
    """``String``, ``Int``, ``Decimal`` or ``Bool``."""


@dataclass(frozen=True, slots=True)
class Unary:
    op: str
    operand: Expr


@dataclass(frozen=True, slots=True)
class Binary:
    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True)
class ArrayLit:
    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class ObjectLit:
    pairs: tuple[tuple[str, Expr], ...]


@dataclass(frozen=True, slots=True)
class SelectItem:
    expr: Expr
    alias: str | None
    """Output key; None only for ``*``. A dotted one (``state.reported.t``) is a path of
    keys: the value goes into nested objects (:func:`cloud.rules.evaluate.put_output`)."""


@dataclass(frozen=True, slots=True)
class Subquery:
    """``(SELECT ... FROM source [WHERE ...])``: *source* is an expression on the enclosing
    document; the items and WHERE are evaluated on each element it names."""

    items: tuple[SelectItem, ...]
    source: Expr
    """``Star()`` for ``FROM *``: the payload as rows, an object being one row (AWS's
    rules validation sample reads ``get((SELECT *, topic() AS topic FROM *), 0)``)."""
    where: Expr | None
    value: bool = False


@dataclass(frozen=True, slots=True)
class Case:
    """``CASE subject WHEN t THEN r ... [ELSE e] END`` (AWS "Case statements")."""

    subject: Expr
    branches: tuple[tuple[Expr, Expr], ...]
    otherwise: Expr | None


Expr = (
    Literal
    | Field
    | Star
    | Attr
    | Call
    | Cast
    | Unary
    | Binary
    | ArrayLit
    | ObjectLit
    | Subquery
    | Case
)


@dataclass(frozen=True, slots=True)
class Statement:
    items: tuple[SelectItem, ...]
    topic_filter: str | None
    """None when the statement has no FROM: AWS's SQL reference makes FROM "Optional for
    rules that are only triggered using the Basic Ingest feature", so such a rule matches
    no topic and runs only on its ``$aws/rules/<rule>/...`` messages."""
    where: Expr | None
    value: bool = False
    """``SELECT VALUE expr``: the output is the value itself, not an object."""


# ---- tokens ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Token:
    kind: str
    """``name``, ``kw``, ``str``, ``num``, ``op`` or ``eof``."""
    text: str
    value: Any
    pos: int
    """1-based character offset."""


_NUMBER = re.compile(r"[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPS = ("<>", "<=", ">=", "!=", "=", "<", ">", "+", "-", "*", "/", "%", "(", ")", ",", ".")
_OPS += ("[", "]", "{", "}", ":")


def tokenize(sql: str) -> list[Token]:
    tokens: list[Token] = []
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch.isspace():
            i += 1
            continue
        pos = i + 1
        if sql.startswith("--", i) or sql.startswith("/*", i):
            raise RuleSqlError("comments are not allowed in IoT SQL", position=pos)
        if ch in "'\"":
            j, chars = i + 1, []
            while True:
                if j >= n:
                    raise RuleSqlError("unterminated string literal", position=pos)
                if sql[j] == ch:
                    if j + 1 < n and sql[j + 1] == ch:
                        chars.append(ch)
                        j += 2
                        continue
                    break
                chars.append(sql[j])
                j += 1
            tokens.append(Token("str", sql[i : j + 1], "".join(chars), pos))
            i = j + 1
            continue
        if "0" <= ch <= "9":
            m = _NUMBER.match(sql, i)
            if m is None:
                raise RuleSqlError(f"unexpected character {ch!r}", position=pos)
            text = m.group()
            if len(text) > 64:
                raise RuleSqlError("number literal longer than 64 characters", position=pos)
            if m.end() < n and (sql[m.end()].isalpha() or sql[m.end()] == "_"):
                raise RuleSqlError(
                    f"unexpected character {sql[m.end()]!r} after a number", position=m.end() + 1
                )
            value: Any
            if m.group(1) is None and m.group(2) is None and len(text) <= INT_DIGITS:
                value = int(text)
            else:  # a Decimal literal, or an Int of more than 34 digits, which is one
                try:
                    # whole (10.0, 1e2) is an Int, as the same number in a payload is
                    value = whole_to_int(decimal_from_text(text))
                except DecimalException:
                    raise RuleSqlError(
                        f"number {text} is outside the Decimal range 1E-999 to 9.999...E999",
                        position=pos,
                    ) from None
            tokens.append(Token("num", text, value, pos))
            i = m.end()
            continue
        m = _NAME.match(sql, i)
        if m:
            text = m.group()
            kind = "kw" if text.lower() in KEYWORDS else "name"
            tokens.append(Token(kind, text, text.lower() if kind == "kw" else text, pos))
            i = m.end()
            continue
        for op in _OPS:
            if sql.startswith(op, i):
                if op == "!=":
                    raise RuleSqlError("'!=' is not IoT SQL; use '<>'", position=pos)
                tokens.append(Token("op", op, op, pos))
                i += len(op)
                break
        else:
            raise RuleSqlError(f"unexpected character {ch!r}", position=pos)
    tokens.append(Token("eof", "", None, n + 1))
    return tokens


# ---- parser ---------------------------------------------------------------------------


def parse(sql: str) -> Statement:
    """Parse one rule's SQL; raise RuleSqlError naming the position and the reason."""
    if not isinstance(sql, str):
        raise RuleSqlError("sql: expected a string")
    if m := _SET_CLAUSE.match(sql):  # before tokenizing: its variables are written @name
        raise RuleSqlError(
            "the SET clause (rule variables) is not supported by the local rules engine; "
            "write each variable's expression where it is used",
            position=m.start(1) + 1,
        )
    return _Parser(sql).statement()


_SET_CLAUSE = re.compile(r"\s*(set)(?![A-Za-z0-9_])", re.IGNORECASE)


def parse_expression(text: str) -> Expr:
    """One expression on its own (``${...}`` substitution templates)."""
    parser = _Parser(text)
    expr = parser.expr()
    parser.expect_eof()
    return expr


class _Parser:
    def __init__(self, sql: str) -> None:
        self.sql = sql
        self.tokens = tokenize(sql)
        self.i = 0
        self.depth = 0
        self.subject_at = -1
        """Index of the token a CASE's subject starts at: a field ``case`` there may be
        followed by WHEN (``CASE case WHEN 1 ...``); anywhere else ``case WHEN`` is a CASE
        with no subject."""
        self.when_ahead: list[bool] | None = None

    # helpers
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        if tok.kind != "eof":
            self.i += 1
        return tok

    def at_kw(self, *words: str) -> bool:
        return self.tok.kind == "kw" and self.tok.value in words

    def at_op(self, *ops: str) -> bool:
        return self.tok.kind == "op" and self.tok.value in ops

    def fail(self, expected: str, tok: Token | None = None) -> RuleSqlError:
        tok = tok or self.tok
        got = "end of statement" if tok.kind == "eof" else repr(tok.text)
        return RuleSqlError(f"expected {expected}, got {got}", position=tok.pos)

    def expect_kw(self, word: str) -> Token:
        if not self.at_kw(word):
            raise self.fail(word.upper())
        return self.advance()

    def expect_op(self, op: str) -> Token:
        if not self.at_op(op):
            raise self.fail(f"'{op}'")
        return self.advance()

    def expect_eof(self) -> None:
        if self.tok.kind != "eof":
            raise self.fail("end of statement")

    # statement
    def statement(self) -> Statement:
        items, value = self.select_list()
        topic_filter = None
        if not (self.at_kw("where") or self.tok.kind == "eof"):  # else no FROM: Basic Ingest
            self.expect_kw("from")
            tok = self.tok
            if tok.kind != "str":
                raise self.fail("a quoted topic filter")
            self.advance()
            topic_filter = validate_filter(tok.value, tok.pos)
        where = None
        if self.at_kw("where"):
            self.advance()
            where = self.expr()
        self.expect_eof()
        return Statement(items=items, topic_filter=topic_filter, where=where, value=value)

    def select_list(self) -> tuple[tuple[SelectItem, ...], bool]:
        """``SELECT [VALUE] items``: the items, and whether it is SELECT VALUE."""
        self.expect_kw("select")
        following = self.tokens[self.i + 1] if self.tok.kind != "eof" else self.tok
        if self.at_kw("value") and following.kind == "op" and following.value == "*":
            after = self.tokens[self.i + 2]
            if after.kind == "eof" or (after.kind == "kw" and after.value in _CLAUSE_WORDS):
                raise RuleSqlError(
                    "SELECT VALUE * is not supported; SELECT * outputs the payload",
                    position=self.tok.pos,
                )
        # VALUE is the keyword only where an expression follows it; else (SELECT value,
        # value AS v, value + 1 ...) it is a payload field named value
        starts = _starts_expression(following) or (
            following.kind == "op"
            and following.value == "*"
            and self.tokens[self.i + 2].text == "."
        )
        if not (self.at_kw("value") and starts) or (
            following.kind == "op" and following.value == "-" and self.alias_or_comma_follows()
        ):  # SELECT VALUE -x takes no alias and one item: 'value - 1 AS v' is the field
            return _nested_names_checked(tuple(self.select_items())), False
        self.advance()
        items = (SelectItem(self.expr(), None),)
        if self.at_kw("as"):
            raise RuleSqlError("SELECT VALUE takes no alias", position=self.tok.pos)
        return items, True

    def alias_or_comma_follows(self) -> bool:
        """Whether AS or ',' comes before FROM, WHERE or the end, outside brackets."""
        for tok in self.level_ahead():
            if tok is None:
                continue
            if tok.kind == "op" and tok.value == ",":
                return True
            if tok.kind == "kw" and tok.value in _CLAUSE_WORDS:
                return tok.value == "as"
        return False

    def level_ahead(self) -> Iterator[Token | None]:
        """The tokens from here to the end of the statement that stand at this bracket
        level (brackets and what they hold left out), and None for each bracket that closes
        one opened before here: the look-ahead that decides between two readings."""
        depth = 0
        tokens = self.tokens
        for j in range(self.i, len(tokens)):  # not a slice: no copy of the rest each time
            tok = tokens[j]
            if tok.kind == "eof":
                return
            if tok.kind == "op" and tok.value in ("(", "[", "{"):
                depth += 1
            elif tok.kind == "op" and tok.value in (")", "]", "}"):
                depth -= 1
                if depth < 0:
                    yield None
            elif depth == 0:
                yield tok

    def subquery(self) -> Subquery:
        """``SELECT ... FROM source [WHERE ...]`` inside parentheses, the ``(`` consumed."""
        items, value = self.select_list()
        self.expect_kw("from")
        if self.tok.kind == "str":
            raise RuleSqlError(
                "a nested SELECT's FROM names a value of the message (FROM e), not a topic",
                position=self.tok.pos,
            )
        if self.at_op("*") and not self.star_path():  # FROM *: the payload (or element)
            self.advance()
            source: Expr = Star()
        else:
            source = self.expr()
        where = None
        if self.at_kw("where"):
            self.advance()
            where = self.expr()
        return Subquery(items=items, source=source, where=where, value=value)

    def select_items(self) -> list[SelectItem]:
        items = [self.select_item()]
        while self.at_op(","):
            self.advance()
            items.append(self.select_item())
        seen: set[str] = set()
        for name in (it.alias for it in items if it.alias is not None):
            if name in seen:
                raise RuleSqlError(f"SELECT: output name {name!r} is used twice")
            seen.add(name)
        return items

    def select_item(self) -> SelectItem:
        start = self.tok
        if self.at_op("*") and not self.star_path():
            self.advance()
            if self.at_kw("as"):  # the payload under a name (AWS's '*' makes an object)
                self.advance()
                return SelectItem(Star(), self.output_name())
            return SelectItem(Star(), None)
        expr = self.expr()
        if self.at_kw("as"):
            self.advance()
            return SelectItem(expr, self.output_name())
        if isinstance(expr, Field):
            return SelectItem(expr, expr.name)
        if isinstance(expr, Attr):
            return SelectItem(expr, expr.name)
        raise RuleSqlError(
            "a computed SELECT item needs an alias (... AS name)", position=start.pos
        )

    def star_path(self) -> bool:
        """Whether the ``*`` here starts a path (``*.messages``): the payload read as a value,
        as AWS's rules validation samples run ``SELECT VALUE *.messages``."""
        following = self.tokens[self.i + 1] if self.tok.kind != "eof" else self.tok
        return self.at_op("*") and following.kind == "op" and following.value == "."

    def output_name(self) -> str:
        """The name after AS, dotted for nested output (``AS state.reported.t``: AWS's JSON
        extensions page, and its rules validation samples give ``{"state": {"reported":
        {"t": ...}}}``), its parts joined with ``.``."""
        parts: list[str] = []
        while True:
            tok = self.tok
            # only a name can follow AS or '.', so a keyword there is a name too (AS value)
            if tok.kind != "name" and not (tok.kind == "kw" and tok.value not in _CLAUSE_WORDS):
                raise self.fail("an output name after AS" if not parts else "a name after '.'")
            self.advance()
            parts.append(tok.text)
            if not self.at_op("."):
                return ".".join(parts)
            self.advance()

    # expressions
    def expr(self) -> Expr:
        start = self.tok
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise RuleSqlError(f"expression nested deeper than {MAX_DEPTH}", position=self.tok.pos)
        try:
            expr = self.or_expr()
        finally:
            self.depth -= 1
        if self.depth == 0 and tree_depth(expr) > MAX_TREE_DEPTH:
            raise RuleSqlError(
                f"expression more than {MAX_TREE_DEPTH} levels deep (each operator, call or "
                "field in a chain is a level)",
                position=start.pos,
            )
        return expr

    def or_expr(self) -> Expr:
        left = self.and_expr()
        while self.at_kw("or"):
            self.advance()
            left = Binary("or", left, self.and_expr())
        return left

    def and_expr(self) -> Expr:
        left = self.not_expr()
        while self.at_kw("and"):
            self.advance()
            left = Binary("and", left, self.not_expr())
        return left

    def not_expr(self) -> Expr:
        if self.at_kw("not"):
            self.advance()
            return Unary("not", self.expr_at(self.not_expr))
        return self.comparison()

    def expr_at(self, rule: Any) -> Expr:
        """Recurse through *rule* counting depth, so hostile input cannot blow the stack."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise RuleSqlError(f"expression nested deeper than {MAX_DEPTH}", position=self.tok.pos)
        try:
            return rule()
        finally:
            self.depth -= 1

    def comparison(self) -> Expr:
        left = self.additive()
        self.refuse_unsupported_operator()
        if self.at_op(*COMPARISONS):
            op = self.advance().value
            left = Binary(op, left, self.additive())
            self.refuse_unsupported_operator()
            if self.at_op(*COMPARISONS):
                raise RuleSqlError(
                    "comparisons do not chain; combine them with AND", position=self.tok.pos
                )
        return left

    def refuse_unsupported_operator(self) -> None:
        """AWS documents ``IN`` and ``CONTAINS``; the local engine does not run them. Other
        SQL's ``IS NULL``, ``BETWEEN`` and ``LIKE`` are no IoT SQL at all. After an operand
        only an operator can come, so a word there is refused by its name rather than as an
        unexpected token."""
        tok, negated = self.tok, ""
        if self.at_kw("not"):
            tok, negated = self.tokens[self.i + 1], "NOT "
        word = tok.value.lower() if tok.kind == "name" else ""
        if word in UNSUPPORTED_OPERATORS:
            raise RuleSqlError(
                f"operator {negated}{word.upper()} is not supported by the local rules engine; "
                f"{UNSUPPORTED_OPERATORS[word]}",
                position=self.tok.pos,
            )
        if word in NOT_IOT_SQL:
            named, instead = f"{negated}{word.upper()}", NOT_IOT_SQL[word]
            if word == "is":
                after = self.tokens[self.i + 1]
                if after.kind == "kw" and after.value == "not":
                    named, instead = "IS NOT NULL", "write NOT isNull(x)"
                else:
                    named = "IS NULL"
            raise RuleSqlError(f"{named} is not IoT SQL; {instead}", position=self.tok.pos)

    def additive(self) -> Expr:
        left = self.multiplicative()
        while self.at_op("+", "-"):
            op = self.advance().value
            left = Binary(op, left, self.multiplicative())
        return left

    def multiplicative(self) -> Expr:
        left = self.unary()
        while self.at_op("*", "/", "%"):
            op = self.advance().value
            left = Binary(op, left, self.unary())
        return left

    def unary(self) -> Expr:
        if self.at_op("-"):
            self.advance()
            operand = self.expr_at(self.unary)
            if isinstance(operand, Literal) and _is_number(operand.value):
                value = operand.value
                return Literal(value.copy_negate() if isinstance(value, Decimal) else -value)
            return Unary("-", operand)
        return self.postfix()

    def postfix(self) -> Expr:
        expr = self.primary()
        while True:
            if self.at_op("."):
                self.advance()
                tok = self.tok
                if tok.kind not in ("name", "kw"):
                    raise self.fail("a field name after '.'")
                self.advance()
                expr = Attr(expr, tok.text)
            elif self.at_op("["):
                raise RuleSqlError(
                    "array index syntax x[n] is not supported; use get(x, n)",
                    position=self.tok.pos,
                )
            else:
                return expr

    def primary(self) -> Expr:
        tok = self.tok
        if tok.kind == "num":
            self.advance()
            return Literal(tok.value)
        if tok.kind == "str":
            self.advance()
            return Literal(tok.value)
        if tok.kind == "kw":
            if tok.value in ("true", "false"):
                self.advance()
                return Literal(tok.value == "true")
            if tok.value == "null":
                self.advance()
                return Literal(None)
            if tok.value == "value":  # a keyword only right after SELECT: here a field
                self.advance()
                return Field(tok.text)
            if tok.value == "select":
                raise RuleSqlError(
                    "a nested SELECT must be in parentheses: (SELECT ... FROM ...)",
                    position=tok.pos,
                )
            raise self.fail("an expression")
        if tok.kind == "name":
            self.advance()
            if (
                tok.value.lower() == "case"
                and self.at_word("when")
                and self.i - 1 != self.subject_at
            ):
                raise RuleSqlError(
                    "CASE needs a value to match (CASE v WHEN t THEN r ...); for conditions "
                    "write CASE true WHEN condition THEN r ... (AWS's CASE has no other form)",
                    position=tok.pos,
                )
            if tok.value.lower() == "case" and (
                self.starts_case_subject() or (self.at_op("-") and self.when_follows())
            ):
                return self.expr_at(self.case)
            if self.at_op("("):
                return self.call(tok)
            return Field(tok.value)
        if self.at_op("("):
            self.advance()
            expr = self.expr_at(self.subquery) if self.at_kw("select") else self.expr()
            self.expect_op(")")
            return expr
        if self.at_op("["):
            self.advance()
            items: list[Expr] = []
            if not self.at_op("]"):
                items.append(self.expr())
                while self.at_op(","):
                    self.advance()
                    items.append(self.expr())
            self.expect_op("]")
            return ArrayLit(tuple(items))
        if self.at_op("{"):
            self.advance()
            pairs: list[tuple[str, Expr]] = []
            if not self.at_op("}"):
                pairs.append(self.pair())
                while self.at_op(","):
                    self.advance()
                    pairs.append(self.pair())
            self.expect_op("}")
            return ObjectLit(tuple(pairs))
        if self.star_path():
            self.advance()
            return Star()
        if self.at_op("*"):
            raise RuleSqlError(
                "'*' is only allowed as a SELECT item, a nested SELECT's FROM, a path's start "
                "(*.name) or a function argument",
                position=tok.pos,
            )
        raise self.fail("an expression")

    def starts_case_subject(self) -> bool:
        """Whether ``case`` just read opens a CASE statement rather than naming a payload
        field ``case``: CASE and its words are not reserved, so a field of that name still
        reads as one (``SELECT case FROM ...``, ``case + 1``)."""
        tok = self.tok
        if tok.kind == "name":  # a field named case inside a CASE: CASE case WHEN ...
            return tok.value.lower() not in ("when", "then", "else", "end")
        if tok.kind in ("str", "num"):
            return True
        if tok.kind == "kw":
            return tok.value in ("true", "false", "null", "not")
        return tok.kind == "op" and tok.value in ("(", "[", "{")

    def when_follows(self) -> bool:
        """Whether a ``WHEN`` comes next at this nesting level, before anything that ends an
        expression: after ``case -`` that makes it a CASE statement whose subject starts
        with unary minus (``CASE -v WHEN -1 THEN ...``), not the field ``case`` minus
        something (``case - 1``). Worked out for every token at once, the first time it is
        asked: a look-ahead per ``case -`` made a chain of them cost its length squared."""
        if self.when_ahead is None:
            self.when_ahead = _when_ahead(self.tokens)
        return self.when_ahead[self.i]

    def at_word(self, word: str) -> bool:
        return self.tok.kind == "name" and self.tok.value.lower() == word

    def case(self) -> Case:
        """``CASE v WHEN t THEN r ... [ELSE e] END``, ``CASE`` consumed."""
        self.subject_at = self.i
        subject = self.expr()
        branches: list[tuple[Expr, Expr]] = []
        while self.at_word("when"):
            self.advance()
            test = self.expr()
            if not self.at_word("then"):
                raise self.fail("THEN")
            self.advance()
            branches.append((test, self.expr()))
        if not branches:
            raise self.fail("WHEN (a CASE needs at least one)")
        otherwise = None
        if self.at_word("else"):
            self.advance()
            otherwise = self.expr()
        if not self.at_word("end"):
            raise self.fail("END" if otherwise is not None else "WHEN, ELSE or END")
        self.advance()
        return Case(subject, tuple(branches), otherwise)

    def pair(self) -> tuple[str, Expr]:
        tok = self.tok
        if tok.kind not in ("str", "name"):
            raise self.fail("an object key")
        self.advance()
        self.expect_op(":")
        return (tok.value, self.expr())

    def call(self, name_tok: Token) -> Expr:
        name = name_tok.value.lower()
        self.expect_op("(")
        if name == "cast":
            expr = self.expr()
            self.expect_kw("as")
            type_tok = self.tok
            if type_tok.kind != "name" or type_tok.value.lower() not in CAST_TYPES:
                raise self.fail(f"a cast type ({', '.join(sorted(set(CAST_TYPES.values())))})")
            self.advance()
            self.expect_op(")")
            return Cast(expr, CAST_TYPES[type_tok.value.lower()])
        if name in NEEDS_AWS:
            raise RuleSqlError(
                f"function {name_tok.value}() is not supported locally: {NEEDS_AWS[name]}",
                position=name_tok.pos,
            )
        if name not in FUNCTIONS:
            raise RuleSqlError(
                f"function {name_tok.value}() is not supported", position=name_tok.pos
            )
        args: list[Expr] = []
        if not self.at_op(")"):
            args.append(self.argument())
            while self.at_op(","):
                self.advance()
                args.append(self.argument())
        self.expect_op(")")
        # a wrong argument count loads: the call is Undefined (spec §1.4, AWS's data types
        # page: "Functions called with invalid arguments (for example, wrong types, wrong
        # number of arguments, and so on) return Undefined")
        if name in REGEX_FUNCTIONS and arity_fits(name, len(args)):
            _check_pattern(name, args[1], name_tok.pos)
        return Call(name, tuple(args))

    def argument(self) -> Expr:
        if self.at_op("*") and not self.star_path():
            self.advance()
            return Star()
        if self.at_kw("select"):  # AWS runs isNull(SELECT VALUE v FROM e) unparenthesised
            return self.expr_at(self.subquery)
        return self.expr()


def _nested_names_checked(items: tuple[SelectItem, ...]) -> tuple[SelectItem, ...]:
    """*items*, unless their dotted output names ask for output AWS documents nothing about:
    one name inside another's value (``AS s, ... AS s.t``), or a dotted name beside ``*``,
    whose payload may hold that name already. Refused, rather than guessed (project rule)."""
    names = {item.alias for item in items if item.alias is not None}
    dotted = [item.alias for item in items if item.alias is not None and "." in item.alias]
    if dotted and any(item.alias is None for item in items):
        raise RuleSqlError(
            f"a dotted output name ({dotted[0]}) beside '*' is not supported: AWS does not "
            "document how it merges with the payload's own keys"
        )
    for name in dotted:
        parts = name.split(".")
        for end in range(1, len(parts)):
            if (prefix := ".".join(parts[:end])) in names:
                raise RuleSqlError(
                    f"SELECT: output name {name!r} is inside output name {prefix!r}; AWS does "
                    "not document which wins"
                )
    return items


_OPENERS = ("(", "[", "{")
_CLOSERS = (")", "]", "}")
_CASE_WORDS = ("when", "then", "else", "end")


def _when_ahead(tokens: list[Token]) -> list[bool]:
    """For each token, whether the first token from it (itself included) at its bracket
    level that ends an expression (``,``, a clause word, ``WHEN``, ``THEN``, ``ELSE``,
    ``END``, or the bracket closing the level) is ``WHEN``. One pass from the end, keeping
    the verdict of the nearest such token at each depth."""
    depths: list[int] = []
    depth = 0
    for tok in tokens:
        depths.append(depth)
        if tok.kind == "op" and tok.value in _OPENERS:
            depth += 1
        elif tok.kind == "op" and tok.value in _CLOSERS:
            depth -= 1
    nearest: dict[int, bool] = {}
    ahead = [False] * len(tokens)
    for i in range(len(tokens) - 1, -1, -1):
        tok, level = tokens[i], depths[i]
        if (tok.kind == "op" and tok.value in (*_CLOSERS, ",")) or (
            tok.kind == "kw" and tok.value in _CLAUSE_WORDS
        ):
            nearest[level] = False
        elif tok.kind == "name" and tok.value.lower() in _CASE_WORDS:
            nearest[level] = tok.value.lower() == "when"
        ahead[i] = nearest.get(level, False)
    return ahead


def arity_fits(name: str, count: int) -> bool:
    """Whether function *name* takes *count* arguments (else a call is Undefined)."""
    low, high = FUNCTIONS[name]
    return low <= count and (high is None or count <= high)


def _check_pattern(name: str, arg: Expr, position: int) -> None:
    if not (isinstance(arg, Literal) and isinstance(arg.value, str)):
        raise RuleSqlError(
            f"{name}(): the pattern must be a string literal ('...')", position=position
        )
    java = _read_otherwise_by_java(arg.value)
    if java is not None:
        raise RuleSqlError(f"{name}(): {arg.value!r}: {java}", position=position)
    translated = python_pattern(arg.value)
    as_python = _python_named_groups(arg.value)  # re reads no \p{...} of the translation
    try:
        re.compile(as_python, RE_FLAGS)
        size = _pattern_size(re_parser.parse(as_python, RE_FLAGS))
        if size > MAX_PATTERN_SIZE:
            raise RuleSqlError(
                f"{name}(): {arg.value!r} repeats to {size:,} elements, over "
                f"{MAX_PATTERN_SIZE:,} (the regex package unrolls repetitions when it compiles: "
                "too long, or forever); repeat less",
                position=position,
            )
        regex.compile(translated, REGEX_FLAGS)
    except (re.error, regex.error, ValueError, RecursionError, OverflowError) as exc:
        raise RuleSqlError(
            f"{name}(): {arg.value!r} is not a regular expression: {exc}", position=position
        ) from None


def _read_otherwise_by_java(pattern: str) -> str | None:
    """Why Java's ``Pattern`` reads *pattern* otherwise than Python, or None: inside a
    class Java reads ``[`` as a nested class (``[a[bc]]``, ``[[:alpha:]]``) and ``&&`` as
    an intersection (``[a-z&&[^b]]``), Python both as characters; ``\\0`` takes one to
    three octal digits in Java (``\\0141`` is ``a``) and is an error alone, Python takes
    at most two after it (``\\014`` then ``1``); Python reads ``\\101`` as octal, Java
    as a back reference; a ``{`` that starts no repetition (``{}``, ``a{,3}``) is an error
    in Java, characters (or 0 to 3 repetitions) in Python; ``\\v`` is one character in
    Python, a class in Java; ``\\Z`` is the very end in Python, Java's ``\\z``; and Java
    has no ``(?P<name>...)`` or ``(?P=name)`` (its named group is ``(?<name>...)``)."""
    in_class = False
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            if in_class and pattern[i + 1 : i + 2] in ("b", "B"):
                return "Java refuses \\b or \\B in a class (Python reads [\\b] as a backspace)"
            if pattern.startswith("0", i + 1):
                return "octal escapes (\\0...) read otherwise in Java; write \\xhh"
            if _OCTAL3.match(pattern, i + 1):
                return (
                    f"\\{pattern[i + 1 : i + 4]} is octal in Python, a back reference in "
                    "Java; write \\xhh"
                )
            if pattern.startswith("v", i + 1):
                return "\\v is \\x0B in Python, any vertical white space in Java"
            if pattern.startswith("Z", i + 1):
                return (
                    "\\Z is the very end in Python, the end or before a final line "
                    "terminator in Java; write $"
                )
            i += 2
            continue
        if pattern.startswith("(?P", i) and not in_class:
            return "Java's Pattern has no (?P...): a named group is (?<name>...)"
        flags = None if in_class else _FLAG_GROUP.match(pattern, i)
        if flags is not None:
            letters = flags.group(1) + (flags.group(2) or "")
            if "a" in letters or "L" in letters:
                return "Java's Pattern has no (?a) or (?L) flag"
            if flags.group(3) == ":" and ("s" in letters or "m" in letters):
                return (
                    "a scoped (?s:...) or (?m:...) is not supported: Java's '.', '^' and "
                    "'$' know line terminators Python's do not; set (?s) at the start"
                )
        if ch == "{" and not in_class and not _REPETITION.match(pattern, i):
            return (
                "Java reads '{' as a repetition {n}, {n,} or {n,m} and refuses any other; "
                "write \\{ for the character"
            )
        if in_class:
            if ch == "]":
                in_class = False
            elif ch == "[" or pattern.startswith("&&", i):
                return (
                    "Java reads '[' inside a class as a nested class and '&&' as an "
                    "intersection, Python as characters; write \\[ or \\& for the character"
                )
        elif ch == "[":
            in_class = True
            i += 1
            if pattern.startswith("^", i):
                i += 1
            if pattern.startswith("]", i):  # a ']' first is a character in a class
                i += 1
            continue
        i += 1
    return None


_OCTAL3 = re.compile(r"[0-7]{3}")
_FLAG_GROUP = re.compile(r"\(\?([a-zA-Z]*)(?:-([a-zA-Z]*))?([:)])")
_JAVA_DOT = "[^\\n\\r\\x85\\u2028\\u2029]"
"""Java's '.' without DOTALL: any character but its line terminators."""
_JAVA_DOLLAR = "(?:(?=\\r\\n\\Z)|(?!(?<=\\r)\\n)(?=[\\n\\r\\x85\\u2028\\u2029]\\Z)|\\Z)"
"""Java's '$' without MULTILINE: the end of the input, or before a final line terminator
('\\r\\n' being one, so never between its '\\r' and '\\n')."""
_JAVA_MULTILINE_CARET = "(?:(?!\\Z)(?:\\A|(?<=[\\n\\x85\\u2028\\u2029])|(?<=\\r)(?!\\n)))"
"""Java's '^' under MULTILINE: the start of the input or after a line terminator (never
between '\\r' and '\\n'), but not at the end of the input, even after a final terminator
(so not in an empty input): Java's ``Caret`` node. Python's knows '\\n' only, and matches
at the end after one."""
_JAVA_MULTILINE_DOLLAR = "(?:(?=[\\r\\x85\\u2028\\u2029])|(?<!\\r)(?=\\n)|\\Z)"
"""Java's '$' under MULTILINE: before any line terminator but not between '\\r' and
'\\n', or at the end of the input (Java's ``Dollar`` node)."""
_LEFT_WORD = "[\\p{L}\\p{Nd}_]|[\\p{L}\\p{Nd}]\\p{Mn}+"
_RIGHT_WORD = "[\\p{L}\\p{Nd}_]|(?<=[\\p{L}\\p{Nd}]\\p{Mn}*)\\p{Mn}"
_JAVA_BOUNDARY = {
    "\\b": f"(?u-i:(?<={_LEFT_WORD})(?!{_RIGHT_WORD})|(?<!{_LEFT_WORD})(?={_RIGHT_WORD}))",
    "\\B": f"(?u-i:(?<={_LEFT_WORD})(?={_RIGHT_WORD})|(?<!{_LEFT_WORD})(?!{_RIGHT_WORD}))",
}
"""Java's ``\\b`` and ``\\B`` (8 to 18; 19 made them ASCII with ``\\w``): a word
character is a letter or digit of any script (``Character.isLetterOrDigit``) or ``_``, and
a combining mark after a letter or digit, over other marks, belongs to its word. The
lookarounds need Unicode properties, so their scope is ``(?u-i:...)``: not
case-insensitive either, as the ``regex`` package matches no non-ASCII letter with a
case-insensitive ``[\\p{L}\\p{Nd}_]``."""
_LEADING_FLAGS = re.compile(r"(?:\(\?[a-zA-Z]+\))+")


def _leading_flags(pattern: str) -> str:
    """The letters of the flag groups that open *pattern* (``(?i)(?m)`` gives ``im``): the
    only place Python takes a global flag, so they hold for the whole pattern, as in Java."""
    m = _LEADING_FLAGS.match(pattern)
    return "" if m is None else m.group()


@functools.lru_cache(maxsize=1024)
def can_match_empty(pattern: str) -> bool:
    """Whether *pattern* (one that loaded) can match the empty string somewhere: where Java's
    and Python's finders part (after an empty match)."""
    return bool(re_parser.parse(_python_named_groups(pattern), RE_FLAGS).getwidth()[0] == 0)


@functools.lru_cache(maxsize=1024)
def python_pattern(pattern: str) -> str:
    """*pattern* (one :func:`_check_pattern` let load) as the ``regex`` package must read it
    to answer as Java's ``Pattern``: outside classes, ``.`` and ``$`` become what Java's
    mean (its line terminators are ``\\n``, ``\\r``, ``\\u0085``, ``\\u2028``, ``\\u2029``
    and ``\\r\\n``, Python's only ``\\n``); ``.`` stays under a ``(?s)`` in the flag
    groups that open the pattern, and under a ``(?m)`` there ``^`` and ``$`` become Java's
    multi-line anchors.
    AWS's functions page: ``regexp_*`` take "a valid regex expression", run by the rules
    engine's Java."""
    flags = _leading_flags(pattern)
    dotall, multiline = "s" in flags, "m" in flags
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            escape = pattern[i : i + 2]
            out.append(_JAVA_BOUNDARY.get(escape, escape) if not in_class else escape)
            i += 2
            continue
        if in_class:
            if ch == "]":
                in_class = False
        elif ch == "[":
            in_class = True
            start = i
            i += 1
            if pattern.startswith("^", i):
                i += 1
            if pattern.startswith("]", i):
                i += 1
            out.append(pattern[start:i])
            continue
        elif ch == "." and not dotall:
            ch = _JAVA_DOT
        elif ch == "$":
            ch = _JAVA_MULTILINE_DOLLAR if multiline else _JAVA_DOLLAR
        elif ch == "^" and multiline:
            ch = _JAVA_MULTILINE_CARET
        out.append(ch)
        i += 1
    return "".join(out)


_JAVA_GROUP_NAME = re.compile(r"(\\.)|\(\?<([A-Za-z][A-Za-z0-9]*)>", re.DOTALL)


def _python_named_groups(pattern: str) -> str:
    """*pattern* with Java's named groups ``(?<name>...)`` written as ``re`` writes them,
    ``(?P<name>...)``, for the checks ``re`` makes; the ``regex`` package reads both."""
    return _JAVA_GROUP_NAME.sub(lambda m: m.group(1) or f"(?P<{m.group(2)}>", pattern)


_REPETITION = re.compile(r"\{[0-9]+(,[0-9]*)?\}")


MAX_PATTERN_SIZE = 200_000
"""Project rule: a ``regexp_*`` pattern's size with its repetitions unrolled
(``(a{1000}){1000}`` is 1,000,000). The ``regex`` package compiles such a pattern in time
proportional to it: a second for 1,000,000, and ``((a{1000}){1000}){1000}`` never
finishes, which would hang loading the rules; 200,000 compiles in a fraction of that."""
_REPEATS = (re_constants.MAX_REPEAT, re_constants.MIN_REPEAT, re_constants.POSSESSIVE_REPEAT)


def _pattern_size(items: Any) -> int:
    """Elements of a parsed pattern with each repetition counted as many times as it may
    repeat (its minimum when it has no maximum)."""
    total = 0
    for op, av in items:
        if op in _REPEATS:
            low, high, sub = av
            times = high if high != re_constants.MAXREPEAT else max(low, 1)
            total += times * _pattern_size(sub)
            continue
        total += 1
        for part in av if isinstance(av, tuple | list) else (av,):
            if isinstance(part, re_parser.SubPattern):
                total += _pattern_size(part)
            elif isinstance(part, list) and all(isinstance(b, re_parser.SubPattern) for b in part):
                total += sum(_pattern_size(b) for b in part)
    return total


def _starts_expression(tok: Token) -> bool:
    """Whether *tok* can begin an expression (after ``SELECT VALUE``)."""
    if tok.kind in ("num", "str", "name"):
        return True
    if tok.kind == "kw":
        return tok.value in ("true", "false", "null", "not", "value")
    return tok.kind == "op" and tok.value in ("(", "[", "{", "-")


def tree_depth(expr: Expr) -> int:
    """The depth of *expr*'s tree, walked without recursion (it may be deeper than Python's
    stack allows, which is why it is measured)."""
    deepest = 0
    stack: list[tuple[Expr, int]] = [(expr, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in _children(node))
    return deepest


def _children(node: Expr) -> tuple[Expr, ...]:
    match node:
        case Attr(base, _) | Cast(base, _) | Unary(_, base):
            return (base,)
        case Binary(_, left, right):
            return (left, right)
        case Call(_, args) | ArrayLit(args):
            return args
        case ObjectLit(pairs):
            return tuple(value for _, value in pairs)
        case Subquery(items, source, where, _):
            where_part = () if where is None else (where,)
            return (source, *where_part, *(item.expr for item in items))
        case Case(subject, branches, otherwise):
            else_part = () if otherwise is None else (otherwise,)
            return (subject, *(e for branch in branches for e in branch), *else_part)
    return ()


def _is_number(value: Any) -> bool:
    return isinstance(value, int | Decimal) and not isinstance(value, bool)
