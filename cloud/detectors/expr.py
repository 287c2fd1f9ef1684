"""The AWS IoT Events expression language: tokenizer, precedence parser, frozen AST, evaluator.

Semantics follow ``specs/iotevents-contracts.md`` §3. Values are Python ``int`` (integer),
``float`` (decimal), ``str``, ``bool``, ``None`` (JSON null) and :data:`UNDEFINED`. Parsing
never raises anything but :class:`ExpressionError` (a ``DetectorModelError``), which the model
loader prefixes with the JSON path of the field.
"""

from __future__ import annotations

import decimal
import json
import math
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol

from edge.errors import DetectorModelError


class _Undefined:
    """Missing data, an unset variable or a failed function: the language's ``undefined``."""

    _instance: _Undefined | None = None

    def __new__(cls) -> _Undefined:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNDEFINED"

    def __bool__(self) -> bool:
        return False


UNDEFINED: Final = _Undefined()

MAX_DEPTH: Final = 100
"""Nesting limit of the AST; keeps parsing and evaluation far from Python's recursion limit."""

MAX_INTEGER: Final = int(sys.float_info.max)
"""Largest integer magnitude: what a decimal can hold. Beyond it an integer is undefined, as a
decimal overflow is; unbounded integers would let a model that squares a variable on every
message grow it until the instance can no longer be printed or saved."""


class ExpressionError(DetectorModelError):
    """An expression does not parse; ``position`` is the 0-based character offset."""

    def __init__(self, reason: str, *, position: int, text: str) -> None:
        super().__init__(f"{reason} at position {position} in {text!r}")
        self.reason = reason
        self.position = position
        self.text = text


class InvalidExpression(Exception):
    """Raised during evaluation when ``convert`` fails: the whole expression is invalid."""


# ---------------------------------------------------------------- AST


@dataclass(frozen=True, slots=True)
class Literal:
    value: Any


@dataclass(frozen=True, slots=True)
class InputRef:
    input_name: str
    path: tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class VariableRef:
    name: str


@dataclass(frozen=True, slots=True)
class TypeName:
    """A bare ``String``/``Boolean``/``Decimal`` in the first argument of ``convert``."""

    name: str


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
class Call:
    name: str
    args: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Template:
    """A single-quoted string with ``${expr}`` parts."""

    parts: tuple[str | Expr, ...]


Expr = Literal | InputRef | VariableRef | TypeName | Unary | Binary | Call | Template

FUNCTIONS: Final[dict[str, int]] = {
    "timeout": 1,
    "triggerType": 1,
    "currentInput": 1,
    "isUndefined": 1,
    "isNull": 1,
    "convert": 2,
    "startsWith": 2,
    "endsWith": 2,
    "contains": 2,
    "bitand": 2,
    "bitor": 2,
    "bitxor": 2,
    "bitnot": 1,
}
"""AWS's complete list of built-ins with their arity; anything else is rejected."""

CONVERT_TYPES: Final = ("String", "Boolean", "Decimal")

# ---------------------------------------------------------------- tokenizer

_IDENT_START = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_IDENT_CHARS = _IDENT_START | set("0123456789_")
_DIGITS = set("0123456789")
_OPERATORS = ("&&", "||", "<=", ">=", "==", "!=", "!", "~", "-", "+", "*", "/", "<", ">")
_OPERATORS += ("&", "^", "|", "(", ")", ",", ".", "[", "]")


@dataclass(frozen=True, slots=True)
class Token:
    kind: str
    """``int``, ``dec``, ``str``, ``tmpl``, ``ident``, ``quoted`` (backticks), ``ref``, ``op``, ``end``."""
    value: Any
    pos: int


def _tokenize(text: str, offset: int = 0) -> list[Token]:
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        pos = offset + i
        if c in " \t\r\n":
            i += 1
        elif c in _DIGITS:
            j = i
            while j < n and text[j] in _DIGITS:
                j += 1
            is_dec = False
            if j < n and text[j] == "." and j + 1 < n and text[j + 1] in _DIGITS:
                is_dec = True
                j += 1
                while j < n and text[j] in _DIGITS:
                    j += 1
            if j < n and text[j] in "eE":
                k = j + 1
                if k < n and text[k] in "+-":
                    k += 1
                if k < n and text[k] in _DIGITS:
                    is_dec = True
                    j = k
                    while j < n and text[j] in _DIGITS:
                        j += 1
            if j < n and (text[j] in _IDENT_CHARS or text[j] == "."):
                raise ExpressionError("malformed number", position=pos, text=text)
            raw = text[i:j]
            if is_dec:
                value = float(raw)
                if not math.isfinite(value):
                    raise ExpressionError("number out of range", position=pos, text=text)
                tokens.append(Token("dec", value, pos))
            else:
                if len(raw.lstrip("0")) > len(str(MAX_INTEGER)) or int(raw) > MAX_INTEGER:
                    raise ExpressionError("number out of range", position=pos, text=text)
                tokens.append(Token("int", int(raw), pos))
            i = j
        elif c in _IDENT_START:
            j = i
            while j < n and text[j] in _IDENT_CHARS:
                j += 1
            tokens.append(Token("ident", text[i:j], pos))
            i = j
        elif c == "`":
            j = text.find("`", i + 1)
            if j < 0:
                raise ExpressionError("unterminated backtick identifier", position=pos, text=text)
            if j == i + 1:
                raise ExpressionError("empty backtick identifier", position=pos, text=text)
            tokens.append(Token("quoted", text[i + 1 : j], pos))
            i = j + 1
        elif c == "$":
            j = i + 1
            while j < n and text[j] in _IDENT_CHARS:
                j += 1
            word = text[i:j]
            if word == "$sitewise":
                raise ExpressionError(
                    "'$sitewise' reads an AWS IoT SiteWise asset property, and plantwatch has"
                    " no SiteWise: feed the property's values to an input and read"
                    " $input.<Input>.<path> instead",
                    position=pos,
                    text=text,
                )
            if word not in ("$input", "$variable"):
                raise ExpressionError(
                    f"unknown reference {word!r} (expected $input or $variable)",
                    position=pos,
                    text=text,
                )
            tokens.append(Token("ref", word, pos))
            i = j
        elif c == '"':
            j = _double_quoted_end(text, i)
            if j < 0:
                raise ExpressionError("unterminated string", position=pos, text=text)
            tokens.append(Token("str", _DOUBLE_QUOTED_ESCAPE.sub(r"\1", text[i + 1 : j - 1]), pos))
            i = j
        elif c == "'":
            parts, i = _single_quoted(text, i, offset)
            if all(isinstance(p, str) for p in parts):
                tokens.append(Token("str", "".join(p for p in parts if isinstance(p, str)), pos))
            else:
                tokens.append(Token("tmpl", tuple(parts), pos))
        else:
            for op in _OPERATORS:
                if text.startswith(op, i):
                    tokens.append(Token("op", op, pos))
                    i += len(op)
                    break
            else:
                raise ExpressionError(f"unexpected character {c!r}", position=pos, text=text)
    tokens.append(Token("end", None, offset + n))
    return tokens


_DOUBLE_QUOTED_ESCAPE: Final = re.compile(r'\\([\\"])')
"""In a double-quoted string ``\\"`` is a quote and ``\\\\`` a backslash (project rule:
AWS documents no escapes, and without one no double-quoted string could hold a ``"``); any
other backslash stays as written. Single-quoted strings have no escapes: a template's
text is taken as it stands."""


def _double_quoted_end(text: str, start: int) -> int:
    """Index just past the double-quoted string opening at *start* (its escapes skipped),
    or -1 when it does not end."""
    i, n = start + 1, len(text)
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n and text[i + 1] in '\\"':
            i += 2
            continue
        if c == '"':
            return i + 1
        i += 1
    return -1


def _single_quoted(text: str, start: int, offset: int) -> tuple[list[str | Expr], int]:
    """Split ``'...${e}...'`` into literal text and parsed template expressions."""
    parts: list[str | Expr] = []
    buf: list[str] = []
    i, n = start + 1, len(text)
    while i < n:
        c = text[i]
        if c == "'":
            if buf:
                parts.append("".join(buf))
            return parts, i + 1
        if c == "$" and i + 1 < n and text[i + 1] == "{":
            end = _template_end(text, i + 2)
            if end < 0:
                raise ExpressionError("unterminated ${ template", position=offset + i, text=text)
            inner = text[i + 2 : end]
            if not inner.strip():
                # AWS documents a template only as ${<expression>}: what an empty one
                # would give is unknown, so it is refused, saying how to write it
                raise ExpressionError(
                    "empty ${} template (put an expression between the braces,"
                    " e.g. ${$input.<Input>.<path>}, or drop the template)",
                    position=offset + i,
                    text=text,
                )
            if buf:
                parts.append("".join(buf))
                buf = []
            try:
                inner_tokens = _tokenize(text[i + 2 : end], offset + i + 2)
            except ExpressionError as exc:
                # its position counts in *text*, so the message quotes *text*, not the part
                raise ExpressionError(exc.reason, position=exc.position, text=text) from None
            parts.append(_Parser(text, inner_tokens).parse_all())
            i = end + 1
            continue
        buf.append(c)
        i += 1
    raise ExpressionError("unterminated string", position=offset + start, text=text)


def _template_end(text: str, i: int) -> int:
    """Index of the ``}`` closing a template body that starts at *i*, skipping quoted text."""
    depth = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c in '"`':
            j = _double_quoted_end(text, i) if c == '"' else text.find(c, i + 1) + 1
            if j <= 0:
                return -1
            i = j
            continue
        if c == "'":
            i = _string_end(text, i)
            if i < 0:
                return -1
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            if depth == 0:
                return i
            depth -= 1
        i += 1
    return -1


def _string_end(text: str, start: int) -> int:
    """Index just past the single-quoted string opening at *start*, or -1.

    The string may hold templates whose expressions hold single-quoted strings in turn
    (AWS: "A substitution template can also contain ... substitution templates"), so its
    end is the first quote outside every ``${...}`` in it, not simply the next quote.
    """
    i, n = start + 1, len(text)
    while i < n:
        c = text[i]
        if c == "'":
            return i + 1
        if c == "$" and i + 1 < n and text[i + 1] == "{":
            end = _template_end(text, i + 2)
            if end < 0:
                return -1
            i = end + 1
            continue
        i += 1
    return -1


# ---------------------------------------------------------------- parser

_BINARY_PRECEDENCE: Final[dict[str, int]] = {
    "||": 1,
    "&&": 2,
    "|": 3,
    "^": 4,
    "&": 5,
    "==": 6,
    "!=": 6,
    "<": 7,
    "<=": 7,
    ">": 7,
    ">=": 7,
    "+": 8,
    "-": 8,
    "*": 9,
    "/": 9,
}
_UNARY_PRECEDENCE: Final = 10


class _Parser:
    def __init__(self, text: str, tokens: list[Token]) -> None:
        self.text = text
        self.tokens = tokens
        self.i = 0
        self.depth = 0

    def error(self, reason: str, token: Token | None = None) -> ExpressionError:
        tok = token or self.peek()
        return ExpressionError(reason, position=tok.pos, text=self.text)

    def peek(self) -> Token:
        return self.tokens[self.i]

    def next(self) -> Token:
        tok = self.tokens[self.i]
        if tok.kind != "end":
            self.i += 1
        return tok

    def expect_op(self, op: str) -> Token:
        tok = self.next()
        if tok.kind != "op" or tok.value != op:
            raise self.error(f"expected {op!r}, found {_describe(tok)}", tok)
        return tok

    def parse_all(self) -> Expr:
        if self.peek().kind == "end":
            raise self.error("empty expression")
        expr = self.expression(0)
        tok = self.peek()
        if tok.kind != "end":
            raise self.error(f"unexpected {_describe(tok)}", tok)
        return expr

    def expression(self, min_prec: int) -> Expr:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error("expression nested too deeply")
        left = self.prefix()
        while True:
            tok = self.peek()
            prec = _BINARY_PRECEDENCE.get(tok.value) if tok.kind == "op" else None
            if prec is None or prec <= min_prec:
                break
            self.next()
            right = self.expression(prec)
            left = Binary(tok.value, left, right)
            if _depth(left) > MAX_DEPTH:
                raise self.error("expression nested too deeply", tok)
        self.depth -= 1
        return left

    def prefix(self) -> Expr:
        tok = self.next()
        if tok.kind == "op" and tok.value in ("!", "~", "-"):
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise self.error("expression nested too deeply", tok)
            operand = self.expression(_UNARY_PRECEDENCE - 1)
            self.depth -= 1
            if tok.value == "-" and isinstance(operand, Literal):
                value = operand.value
                if isinstance(value, int | float) and not isinstance(value, bool):
                    return Literal(-value)
            return Unary(tok.value, operand)
        if tok.kind == "op" and tok.value == "(":
            inner = self.expression(0)
            self.expect_op(")")
            return inner
        if tok.kind in ("int", "dec", "str"):
            return Literal(tok.value)
        if tok.kind == "tmpl":
            return Template(tok.value)
        if tok.kind == "ref":
            return self.reference(tok)
        if tok.kind == "ident":
            if tok.value == "true":
                return Literal(True)
            if tok.value == "false":
                return Literal(False)
            nxt = self.peek()
            if nxt.kind == "op" and nxt.value == "(":
                return self.call(tok)
            raise self.error(f"unexpected identifier {tok.value!r}", tok)
        raise self.error(f"unexpected {_describe(tok)}", tok)

    def call(self, name_tok: Token) -> Expr:
        name = name_tok.value
        if name not in FUNCTIONS:
            raise self.error(
                f"unknown function {name!r} (expected one of: {', '.join(FUNCTIONS)})", name_tok
            )
        self.expect_op("(")
        args: list[Expr] = []
        if not (self.peek().kind == "op" and self.peek().value == ")"):
            while True:
                tok = self.peek()
                if (
                    name == "convert"
                    and not args
                    and tok.kind == "ident"
                    and tok.value in CONVERT_TYPES
                ):
                    self.next()
                    args.append(TypeName(tok.value))
                elif (
                    name == "convert"
                    and not args
                    and tok.kind == "ident"
                    and tok.value not in ("true", "false")
                    and not (
                        self.tokens[self.i + 1].kind == "op"
                        and self.tokens[self.i + 1].value == "("
                    )
                ):
                    raise self.error(
                        f"convert() converts to {', '.join(CONVERT_TYPES)}, not {tok.value!r}", tok
                    )
                else:
                    args.append(self.expression(0))
                if self.peek().kind == "op" and self.peek().value == ",":
                    self.next()
                    continue
                break
        self.expect_op(")")
        if len(args) != FUNCTIONS[name]:
            raise self.error(
                f"{name}() takes {FUNCTIONS[name]} argument(s), got {len(args)}", name_tok
            )
        return Call(name, tuple(args))

    def reference(self, tok: Token) -> Expr:
        self.expect_op(".")
        name_tok = self.next()
        if name_tok.kind not in ("ident", "quoted"):
            raise self.error(
                f"expected a name after {tok.value}., found {_describe(name_tok)}", name_tok
            )
        if tok.value == "$variable":
            return VariableRef(name_tok.value)
        path: list[str | int] = []
        while True:
            nxt = self.peek()
            if nxt.kind == "op" and nxt.value == ".":
                self.next()
                seg = self.next()
                if seg.kind not in ("ident", "quoted"):
                    raise self.error(f"expected a field name, found {_describe(seg)}", seg)
                path.append(seg.value)
            elif nxt.kind == "op" and nxt.value == "[":
                self.next()
                idx = self.next()
                if idx.kind != "int":
                    raise self.error(f"expected an array index, found {_describe(idx)}", idx)
                self.expect_op("]")
                path.append(int(idx.value))
            else:
                break
        if not path:
            raise self.error(f"$input.{name_tok.value} needs an attribute path", name_tok)
        if isinstance(path[0], int):
            raise self.error("an input path must start with a field name", name_tok)
        return InputRef(name_tok.value, tuple(path))


def _depth(expr: Expr) -> int:
    if isinstance(expr, Binary):
        return 1 + max(_depth(expr.left), _depth(expr.right))
    if isinstance(expr, Unary):
        return 1 + _depth(expr.operand)
    return 1


def _describe(tok: Token) -> str:
    if tok.kind == "end":
        return "end of expression"
    if tok.kind in ("str", "tmpl"):
        return "string"
    return repr(tok.value)


def parse(text: str) -> Expr:
    """Parse one expression; raise :class:`ExpressionError` with position and reason."""
    if not isinstance(text, str):
        raise ExpressionError("expected an expression string", position=0, text=str(text))
    try:
        tree = _Parser(text, _tokenize(text)).parse_all()
    except RecursionError:
        tree = None
    if tree is None or tree_depth(tree) > MAX_DEPTH:
        raise ExpressionError("expression nested too deeply", position=0, text=text)
    return tree


def tree_depth(expr: Expr) -> int:
    """Depth of the AST, templates and calls included; iterative, so any tree is safe."""
    deepest = 0
    stack: list[tuple[Expr | str, int]] = [(expr, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        children: tuple[Expr | str, ...] = ()
        if isinstance(node, Unary):
            children = (node.operand,)
        elif isinstance(node, Binary):
            children = (node.left, node.right)
        elif isinstance(node, Call):
            children = node.args
        elif isinstance(node, Template):
            children = node.parts
        stack.extend((child, depth + 1) for child in children if not isinstance(child, str))
    return deepest


# ---------------------------------------------------------------- printing

_PLAIN_NAME: Final = re.compile(r"[a-zA-Z][a-zA-Z0-9_]*")


def unparse(expr: Expr) -> str:
    """Expression text that :func:`parse` reads back as *expr*.

    Names outside ``[a-zA-Z][a-zA-Z0-9_]*`` go in backticks, strings in single quotes
    unless they hold one (or ``${``), else in double quotes with ``\\`` and ``\"``
    escaped, and parentheses appear only where C-style precedence needs them. Raises
    ``ValueError`` for a tree no text can spell (a template's text holding a single quote,
    a name holding a backtick).
    """
    if isinstance(expr, Literal):
        return _literal_text(expr.value)
    if isinstance(expr, InputRef):
        out = ["$input.", _name_text(expr.input_name)]
        for seg in expr.path:
            out.append(f"[{seg}]" if isinstance(seg, int) else "." + _name_text(seg))
        return "".join(out)
    if isinstance(expr, VariableRef):
        return "$variable." + _name_text(expr.name)
    if isinstance(expr, TypeName):
        return expr.name
    if isinstance(expr, Unary):
        inner = unparse(expr.operand)
        if isinstance(expr.operand, Binary):
            inner = f"({inner})"
        return expr.op + inner
    if isinstance(expr, Binary):
        prec = _BINARY_PRECEDENCE[expr.op]
        left, right = unparse(expr.left), unparse(expr.right)
        if isinstance(expr.left, Binary) and _BINARY_PRECEDENCE[expr.left.op] < prec:
            left = f"({left})"
        if isinstance(expr.right, Binary) and _BINARY_PRECEDENCE[expr.right.op] <= prec:
            right = f"({right})"
        return f"{left} {expr.op} {right}"
    if isinstance(expr, Call):
        return f"{expr.name}({', '.join(unparse(a) for a in expr.args)})"
    if isinstance(expr, Template):
        body: list[str] = []
        for part in expr.parts:
            if isinstance(part, str):
                if "'" in part:
                    raise ValueError(f"a template's text cannot hold a single quote: {part!r}")
                body.append(part)
            else:
                body.append("${" + unparse(part) + "}")
        return "'" + "".join(body) + "'"
    raise TypeError(f"not an expression node: {expr!r}")


def _literal_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        if "'" not in value and "${" not in value:
            return f"'{value}'"
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    raise ValueError(f"not a literal value: {value!r}")


def _name_text(name: str) -> str:
    if _PLAIN_NAME.fullmatch(name):
        return name
    if "`" in name or not name:
        raise ValueError(f"no expression text spells the name {name!r}")
    return f"`{name}`"


# ---------------------------------------------------------------- static checks


def references(expr: Expr) -> list[Expr]:
    """Every input/variable reference and call in *expr*, depth first."""
    out: list[Expr] = []
    stack: list[Expr | str] = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            continue
        if isinstance(node, InputRef | VariableRef | Call):
            out.append(node)
        if isinstance(node, Unary):
            stack.append(node.operand)
        elif isinstance(node, Binary):
            stack.extend((node.right, node.left))
        elif isinstance(node, Call):
            stack.extend(reversed(node.args))
        elif isinstance(node, Template):
            stack.extend(reversed(node.parts))
    return out


def static_type(expr: Expr) -> str:
    """``boolean``, ``integer``, ``decimal``, ``string`` or ``unknown`` (data-dependent)."""
    if isinstance(expr, Literal):
        return _type_name(expr.value)
    if isinstance(expr, Template):
        return "string"
    if isinstance(expr, Unary):
        if expr.op == "!":
            return "boolean"
        if expr.op == "~":
            return "integer"
        return static_type(expr.operand)
    if isinstance(expr, Binary):
        if expr.op in ("&&", "||", "==", "!=", "<", "<=", ">", ">="):
            return "boolean"
        if expr.op in ("&", "|", "^"):
            return "integer"
        left, right = static_type(expr.left), static_type(expr.right)
        if expr.op == "+" and left == right == "string":
            return "string"
        if "unknown" in (left, right):
            return "unknown"
        if left == right == "integer":
            return "integer"
        if {left, right} <= {"integer", "decimal"}:
            return "decimal"
        return "unknown"
    if isinstance(expr, Call):
        if expr.name in ("timeout", "triggerType", "currentInput", "isUndefined", "isNull"):
            return "boolean"
        if expr.name in ("startsWith", "endsWith", "contains"):
            return "boolean"
        if expr.name.startswith("bit"):
            return "integer"
        if expr.name == "convert" and isinstance(expr.args[0], TypeName):
            return {"String": "string", "Boolean": "boolean", "Decimal": "decimal"}[
                expr.args[0].name
            ]
    return "unknown"


def _type_name(value: Any) -> str:
    if value is UNDEFINED:
        return "undefined"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "decimal"
    if isinstance(value, str):
        return "string"
    return "unknown"


# ---------------------------------------------------------------- evaluation


class EvalContext(Protocol):
    """What an expression can see: the instance's inputs, variables, timers and trigger."""

    def input_value(self, input_name: str, path: tuple[str | int, ...]) -> Any: ...

    def variable(self, name: str) -> Any: ...

    def timeout(self, timer_name: str) -> bool: ...

    def trigger_type(self) -> str:
        """``Message`` or ``Timer``."""
        ...

    def current_input(self) -> str | None: ...


def lookup_path(document: Any, path: tuple[str | int, ...]) -> Any:
    """Follow *path* into a JSON document; anything missing is UNDEFINED.

    Objects and arrays come back as they are: only paths into them, equality and
    templates (which print them as JSON) make use of them. A number the language cannot
    hold (``1e400`` reads as infinity, an integer past :data:`MAX_INTEGER`) is undefined,
    as the same number computed by an expression is: left as it is, it would make mixed
    arithmetic raise and lose the whole message's evaluation.
    """
    node = document
    for seg in path:
        if isinstance(seg, int):
            if isinstance(node, list) and 0 <= seg < len(node):
                node = node[seg]
            else:
                return UNDEFINED
        elif isinstance(node, dict) and seg in node:
            node = node[seg]
        else:
            return UNDEFINED
    if _is_num(node):
        return _num(node)
    return node


def format_value(value: Any) -> str:
    """Text of a value in templates and ``convert(String, ...)``; decimals print as ``15.0``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return format_decimal(value)
    if value is None:
        return "null"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    return json.dumps(value, separators=(",", ":"))


def format_decimal(value: float) -> str:
    """Shortest round-trip digits, positional, with a fractional digit (``15.0``, ``0.00001``)."""
    text = repr(float(value))
    if "e" not in text or not math.isfinite(value):
        return text
    plain = format(decimal.Decimal(text), "f")
    return plain if "." in plain else plain + ".0"


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _as_bool(v: Any) -> bool:
    return v is True


def evaluate(expr: Expr, ctx: EvalContext) -> Any:
    """Evaluate *expr*; a failed ``convert`` makes the whole expression UNDEFINED."""
    try:
        return _eval(expr, ctx)
    except InvalidExpression:
        return UNDEFINED


def evaluate_reporting(expr: Expr, ctx: EvalContext) -> tuple[Any, str | None]:
    """Like :func:`evaluate`, and say why the whole expression became invalid, if it did.

    A trace (``plantwatch detectors run``) reports the failed ``convert`` with its
    arguments instead of a bare "undefined".
    """
    try:
        return _eval(expr, ctx), None
    except InvalidExpression as exc:
        return UNDEFINED, f"{exc} failed"


def type_name(value: Any) -> str:
    """The language's name for a value's type: ``integer``, ``string``, ``undefined`` ..."""
    return _type_name(value)


def is_true(expr: Expr | None, ctx: EvalContext) -> bool:
    """A condition holds only when it evaluates to Boolean ``true``; no condition is true."""
    if expr is None:
        return True
    return evaluate(expr, ctx) is True


def _eval(expr: Expr, ctx: EvalContext) -> Any:
    if isinstance(expr, Literal):
        return expr.value
    if isinstance(expr, InputRef):
        return ctx.input_value(expr.input_name, expr.path)
    if isinstance(expr, VariableRef):
        return ctx.variable(expr.name)
    if isinstance(expr, TypeName):
        return expr.name
    if isinstance(expr, Template):
        out: list[str] = []
        for part in expr.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            value = _eval(part, ctx)
            if value is UNDEFINED:
                return UNDEFINED
            out.append(format_value(value))
        return "".join(out)
    if isinstance(expr, Unary):
        v = _eval(expr.operand, ctx)
        if expr.op == "!":
            return (not v) if isinstance(v, bool) else UNDEFINED
        if expr.op == "~":
            return _num(~v) if isinstance(v, int) and not isinstance(v, bool) else UNDEFINED
        return -v if _is_num(v) else UNDEFINED
    if isinstance(expr, Binary):
        return _binary(expr, ctx)
    if isinstance(expr, Call):
        return _call(expr, ctx)
    raise TypeError(f"not an expression node: {expr!r}")


def _binary(expr: Binary, ctx: EvalContext) -> Any:
    op = expr.op
    if op == "&&":
        return _as_bool(_eval(expr.left, ctx)) and _as_bool(_eval(expr.right, ctx))
    if op == "||":
        return _as_bool(_eval(expr.left, ctx)) or _as_bool(_eval(expr.right, ctx))
    a = _eval(expr.left, ctx)
    b = _eval(expr.right, ctx)
    if op in ("==", "!="):
        equal = _equals(a, b)
        return equal if op == "==" else not equal
    if a is UNDEFINED or b is UNDEFINED:
        return False if op in ("<", "<=", ">", ">=") else UNDEFINED
    if op in ("<", "<=", ">", ">="):
        if not ((_is_num(a) and _is_num(b)) or (isinstance(a, str) and isinstance(b, str))):
            return False
        return _COMPARE[op](a, b)
    if op in ("&", "|", "^"):
        if not (_is_int(a) and _is_int(b)):
            return UNDEFINED
        return _num(a & b if op == "&" else (a | b if op == "|" else a ^ b))
    if op == "+" and isinstance(a, str) and isinstance(b, str):
        return a + b
    if not (_is_num(a) and _is_num(b)):
        return UNDEFINED
    if op == "+":
        return _num(a + b)
    if op == "-":
        return _num(a - b)
    if op == "*":
        return _num(a * b)
    if b == 0:
        return UNDEFINED
    if isinstance(a, int) and isinstance(b, int):
        q = abs(a) // abs(b)
        return q if (a >= 0) == (b >= 0) else -q
    return _num(a / b)


def _num(v: int | float) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return UNDEFINED
    if isinstance(v, int) and not -MAX_INTEGER <= v <= MAX_INTEGER:
        return UNDEFINED
    return v


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


_COMPARE: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _equals(a: Any, b: Any) -> bool:
    if a is UNDEFINED or b is UNDEFINED:
        return False
    if _is_num(a) and _is_num(b):
        return a == b
    if type(a) is not type(b):
        return False
    return bool(a == b)


def _call(expr: Call, ctx: EvalContext) -> Any:
    name = expr.name
    args = expr.args
    if name == "timeout":
        t = _eval(args[0], ctx)
        return ctx.timeout(t) if isinstance(t, str) else False
    if name == "triggerType":
        t = _eval(args[0], ctx)
        return isinstance(t, str) and t.lower() == ctx.trigger_type().lower()
    if name == "currentInput":
        t = _eval(args[0], ctx)
        return isinstance(t, str) and ctx.current_input() == t
    if name == "isUndefined":
        return _eval(args[0], ctx) is UNDEFINED
    if name == "isNull":
        return _eval(args[0], ctx) is None
    if name == "convert":
        return _convert(_eval(args[0], ctx), _eval(args[1], ctx))
    values = [_eval(a, ctx) for a in args]
    if name in ("startsWith", "endsWith", "contains"):
        s1, s2 = values
        if not (isinstance(s1, str) and isinstance(s2, str)):
            return UNDEFINED
        if name == "startsWith":
            return s1.startswith(s2)
        if name == "endsWith":
            return s1.endswith(s2)
        return s2 in s1
    if not all(_is_int(v) for v in values):
        return UNDEFINED
    if name == "bitnot":
        return _num(~values[0])
    a, b = values
    return _num(a & b if name == "bitand" else (a | b if name == "bitor" else a ^ b))


_DECIMAL_TEXT: Final = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def decimal_text(text: str) -> float | None:
    """The number a string spells, or None: ASCII digits with an optional sign, point and
    exponent, surrounding blanks allowed; never ``nan``/``inf``, ``1_000`` or non-ASCII
    digits, which Python's ``float()`` would take and IoT Events would not."""
    body = text.strip()
    if not _DECIMAL_TEXT.fullmatch(body):
        return None
    number = float(body)
    return number if math.isfinite(number) else None


def _convert(type_name: Any, value: Any) -> Any:
    if type_name == "String":
        if isinstance(value, bool) or _is_num(value):
            return format_value(value)
    elif type_name == "Boolean":
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
    elif type_name == "Decimal" and isinstance(value, str):
        number = decimal_text(value)
        if number is not None:
            return number
    raise InvalidExpression(f"convert({type_name!r}, {value!r})")
