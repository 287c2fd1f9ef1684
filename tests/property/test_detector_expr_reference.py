"""The expression language against an independent reference (specs/iotevents-contracts.md §3).

Random expression trees over integers, decimals, strings, Booleans, null and undefined are
printed twice, once with every parenthesis and once with only those C-style precedence
needs, and both texts must evaluate to what a small reference interpreter, written from the
spec's table of types, operators and undefined rules, computes from the tree itself. So the
parser's precedence and associativity and the evaluator's type rules are pinned together.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud.detectors import expr as ex

U = object()
"""The reference's own undefined."""

VARIABLES: dict[str, Any] = {"i": 7, "d": 2.5, "s": "ab", "b": True, "x y": "TRUE", "ty": "String"}
INPUT = {"n": None, "k": -3, "t": "b", "motor temp": 1e-05}

PRECEDENCE = {
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


class Ctx:
    def input_value(self, input_name: str, path: tuple[str | int, ...]) -> Any:
        if input_name != "I" or len(path) != 1 or path[0] not in INPUT:
            return ex.UNDEFINED
        return INPUT[path[0]]

    def variable(self, name: str) -> Any:
        return VARIABLES.get(name, ex.UNDEFINED)

    def timeout(self, timer_name: str) -> bool:
        return timer_name == "hb"

    def trigger_type(self) -> str:
        return "Message"

    def current_input(self) -> str | None:
        return "I"


# ---------------------------------------------------------------- trees

# A tree is ("lit", value, text) | ("ref", value, text) | ("un", op, child)
# | ("bin", op, left, right) | ("call", name, args) | ("tmpl", parts): a template's parts are
# text (without quotes or "${") and trees.

ints = st.integers(min_value=-1000, max_value=1000)
decimals = st.floats(min_value=-1e4, max_value=1e4, allow_nan=False)
texts = st.sampled_from(
    ["", "a", "b", "ab", "b a", "true", "FALSE", "3", "-2.5", " 4 ", "1e3", "x1"]
)


def _number_text(value: int | float) -> str:
    return repr(value)  # repr: 1e-05 and 2.5; the tokenizer reads both


leaves = st.one_of(
    ints.map(lambda v: ("lit", v, _number_text(v))),
    decimals.map(lambda v: ("lit", v, _number_text(v))),
    texts.map(lambda v: ("lit", v, f"'{v}'")),
    texts.map(lambda v: ("lit", v, f'"{v}"')),
    st.booleans().map(lambda v: ("lit", v, "true" if v else "false")),
    st.sampled_from(
        [
            ("ref", 7, "$variable.i"),
            ("ref", 2.5, "$variable.d"),
            ("ref", "ab", "$variable.s"),
            ("ref", True, "$variable.b"),
            ("ref", U, "$variable.unset"),
            ("ref", None, "$input.I.n"),
            ("ref", -3, "$input.I.k"),
            ("ref", "b", "$input.I.t"),
            ("ref", U, "$input.I.missing"),
            ("ref", "TRUE", "$variable.`x y`"),
            ("ref", "String", "$variable.`ty`"),
            ("ref", 1e-05, "$input.I.`motor temp`"),
        ]
    ),
)

FUNCTION_ARITY = dict(ex.FUNCTIONS)
TYPE_ARGS = st.sampled_from(
    [
        ("type", "String", "String"),
        ("type", "Boolean", "Boolean"),
        ("type", "Decimal", "Decimal"),
        ("lit", "String", "'String'"),
        ("lit", "Decimal", '"Decimal"'),
        ("lit", "Integer", "'Integer'"),
        ("ref", "String", "$variable.ty"),
        ("bin", "+", ("lit", "Bool", "'Bool'"), ("lit", "ean", '"ean"')),
    ]
)
"""What names convert()'s target type: a bare name, a string, or an expression giving one."""


def _call(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    plain = sorted(name for name in FUNCTION_ARITY if name != "convert")

    def build(name: str, args: list[Any]) -> Any:
        return ("call", name, tuple(args[: FUNCTION_ARITY[name]]))

    names_and_args = st.tuples(st.sampled_from(plain), st.lists(children, min_size=2, max_size=2))
    names = st.sampled_from(["'hb'", '"hb"', "'other'", "'MESSAGE'", '"timer"', "'I'", '"J"'])
    name_args = names.map(lambda t: ("lit", t[1:-1], t))
    return st.one_of(
        names_and_args.map(lambda na: build(*na)),
        st.tuples(
            st.sampled_from(["timeout", "triggerType", "currentInput"]),
            st.lists(name_args, min_size=1, max_size=1),
        ).map(lambda na: build(*na)),
        st.tuples(TYPE_ARGS, children).map(lambda ta: ("call", "convert", ta)),
    )


def _template(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    part = st.one_of(st.sampled_from(["", "t=", " in F", "{x}"]), children)
    return (
        st.lists(part, min_size=1, max_size=3)
        .map(lambda parts: ("tmpl", tuple(p for p in parts if p != "") or ("",)))
        .filter(lambda t: any(not isinstance(p, str) for p in t[1]))
    )


def _extend(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.tuples(st.just("un"), st.sampled_from(["!", "-", "~"]), children),
        st.tuples(st.just("bin"), st.sampled_from(sorted(PRECEDENCE)), children, children),
        _call(children),
        _template(children),
    )


mixed_trees = st.recursive(leaves, _extend, max_leaves=10)

small_ints = st.integers(min_value=-20, max_value=20)
int_leaves = st.one_of(
    small_ints.map(lambda v: ("lit", v, _number_text(v))),
    st.just(("ref", -3, "$input.I.k")),
    st.just(("ref", 7, "$variable.i")),
)
int_trees = st.recursive(
    int_leaves,
    lambda children: st.one_of(
        st.tuples(st.just("un"), st.sampled_from(["-", "~"]), children),
        st.tuples(
            st.just("bin"), st.sampled_from(["+", "-", "*", "/", "&", "|", "^"]), children, children
        ),
    ),
    max_leaves=8,
)
"""Integers only: every operator applies, so precedence among them and division show."""

bool_trees = st.recursive(
    st.one_of(
        st.booleans().map(lambda v: ("lit", v, "true" if v else "false")),
        st.tuples(
            st.just("bin"),
            st.sampled_from(["<", "<=", ">", ">=", "==", "!="]),
            int_trees,
            int_trees,
        ),
        st.just(("ref", U, "$variable.unset")),
    ),
    lambda children: st.one_of(
        st.tuples(st.just("un"), st.just("!"), children),
        st.tuples(
            st.just("bin"), st.sampled_from(["&&", "||", "==", "!=", "&", "|"]), children, children
        ),
    ),
    max_leaves=8,
)
"""Logic over comparisons: ``&&``/``||`` against equality and the bitwise operators."""

trees = st.one_of(mixed_trees, int_trees, bool_trees)


def _call_text(tree: Any, text: Any) -> str:
    return f"{tree[1]}({', '.join(text(a) if a[0] != 'type' else a[2] for a in tree[2])})"


def _template_text(tree: Any, text: Any) -> str:
    return "'" + "".join(p if isinstance(p, str) else "${" + text(p) + "}" for p in tree[1]) + "'"


def full_text(tree: Any) -> str:
    kind = tree[0]
    if kind in ("lit", "ref"):
        return f"({tree[2]})"
    if kind == "call":
        return _call_text(tree, full_text)
    if kind == "tmpl":
        return _template_text(tree, full_text)
    if kind == "un":
        return f"({tree[1]}{full_text(tree[2])})"
    return f"({full_text(tree[2])} {tree[1]} {full_text(tree[3])})"


def min_text(tree: Any) -> str:
    """Parentheses only where left-associative C-style precedence needs them."""
    kind = tree[0]
    if kind in ("lit", "ref"):
        return tree[2]
    if kind == "call":
        return _call_text(tree, min_text)
    if kind == "tmpl":
        return _template_text(tree, min_text)
    if kind == "un":
        child = tree[2]
        inner = min_text(child)
        if child[0] == "bin":
            inner = f"({inner})"
        elif child[0] == "lit" and inner.startswith("-"):
            inner = f"({inner})"  # keep "- -3" from reading as one token
        return f"{tree[1]}{inner}"
    op, left, right = tree[1], tree[2], tree[3]
    prec = PRECEDENCE[op]
    ltext, rtext = min_text(left), min_text(right)
    if left[0] == "bin" and PRECEDENCE[left[1]] < prec:
        ltext = f"({ltext})"
    if right[0] == "bin" and PRECEDENCE[right[1]] <= prec:
        rtext = f"({rtext})"
    return f"{ltext} {op} {rtext}"


# ---------------------------------------------------------------- the reference


def _number(v: Any) -> bool:
    return type(v) in (int, float)


def _finite(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return U
    return v


class _Invalid(Exception):
    """A failed convert(): the whole expression is invalid."""


def _text_of(v: Any) -> str:
    """How a value prints: decimals positional with a fractional digit (15.0, 0.00001)."""
    if type(v) is bool:
        return "true" if v else "false"
    if v is None:
        return "null"
    if type(v) is float:
        text = repr(v)
        if "e" in text:
            mantissa, exponent = text.split("e")
            sign = "-" if mantissa.startswith("-") else ""
            digits = mantissa.lstrip("-").replace(".", "")
            point = len(mantissa.lstrip("-").split(".")[0]) + int(exponent)
            if point <= 0:
                text = f"{sign}0.{'0' * -point}{digits}"
            else:
                digits = digits.ljust(point, "0")
                text = f"{sign}{digits[:point]}.{digits[point:] or '0'}"
        return text
    return str(v)


def _convert(kind: Any, v: Any) -> Any:
    if kind == "String" and (type(v) is bool or _number(v)):
        return _text_of(v)
    if kind == "Boolean" and type(v) is str and v.lower() in ("true", "false"):
        return v.lower() == "true"
    if kind == "Decimal" and type(v) is str:
        try:
            number = float(v.strip()) if v.strip() and "_" not in v else None
        except ValueError:
            number = None
        if number is not None and math.isfinite(number):
            return number
    raise _Invalid


def _function(name: str, args: tuple[Any, ...]) -> Any:
    if name == "convert":
        kind = args[0][1] if args[0][0] == "type" else _ref(args[0])
        return _convert(kind, _ref(args[1]))
    values = [_ref(a) for a in args]
    if name == "timeout":
        return values[0] == "hb"
    if name == "triggerType":
        return type(values[0]) is str and values[0].lower() == "message"
    if name == "currentInput":
        return values[0] == "I"
    if name == "isUndefined":
        return values[0] is U
    if name == "isNull":
        return values[0] is None
    if name in ("startsWith", "endsWith", "contains"):
        a, b = values
        if type(a) is not str or type(b) is not str:
            return U
        return {"startsWith": a[: len(b)] == b, "endsWith": b == "" or a[-len(b) :] == b}.get(
            name, b in a
        )
    if not all(type(v) is int for v in values):
        return U
    if name == "bitnot":
        return -values[0] - 1
    a, b = values
    return {"bitand": a & b, "bitor": a | b, "bitxor": a ^ b}[name]


def reference(tree: Any) -> Any:
    try:
        return _ref(tree)
    except _Invalid:
        return U


def _ref(tree: Any) -> Any:
    kind = tree[0]
    if kind in ("lit", "ref"):
        return tree[1]
    if kind == "call":
        return _function(tree[1], tree[2])
    if kind == "tmpl":
        out = []
        for part in tree[1]:
            v = part if isinstance(part, str) else _ref(part)
            if v is U:
                return U
            out.append(_text_of(v))
        return "".join(out)
    if kind == "un":
        v = _ref(tree[2])
        if tree[1] == "!":
            return (not v) if type(v) is bool else U
        if tree[1] == "-":
            return -v if _number(v) else U
        return ~v if type(v) is int else U
    op = tree[1]
    if op == "&&":
        return _ref(tree[2]) is True and _ref(tree[3]) is True
    if op == "||":
        return _ref(tree[2]) is True or _ref(tree[3]) is True
    a, b = _ref(tree[2]), _ref(tree[3])
    if op in ("==", "!="):
        if a is U or b is U:
            same = False
        elif _number(a) and _number(b):
            same = a == b
        else:
            same = type(a) is type(b) and a == b
        return same if op == "==" else not same
    if op in ("<", "<=", ">", ">="):
        if not ((_number(a) and _number(b)) or (type(a) is str and type(b) is str)):
            return False
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
    if op in ("&", "|", "^"):
        if type(a) is not int or type(b) is not int:
            return U
        return {"&": a & b, "|": a | b, "^": a ^ b}[op]
    if op == "+" and type(a) is str and type(b) is str:
        return a + b
    if not (_number(a) and _number(b)):
        return U
    if op == "+":
        return _finite(a + b)
    if op == "-":
        return _finite(a - b)
    if op == "*":
        return _finite(a * b)
    if b == 0:
        return U
    if type(a) is int and type(b) is int:
        return int(Fraction(a, b))  # int() of a Fraction truncates toward zero
    return _finite(a / b)


def _same(got: Any, want: Any) -> bool:
    if want is U:
        return got is ex.UNDEFINED
    return type(got) is type(want) and got == want


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trees)
def test_expressions_evaluate_as_the_reference_with_and_without_parentheses(tree: Any) -> None:
    want = reference(tree)
    for text in (full_text(tree), min_text(tree)):
        got = ex.evaluate(ex.parse(text), Ctx())
        assert _same(got, want), f"{text!r}: got {got!r}, expected {want!r}"
        assert ex.is_true(ex.parse(text), Ctx()) is (want is True)


@settings(max_examples=200, deadline=None)
@given(trees)
def test_a_condition_is_true_only_for_boolean_true(tree: Any) -> None:
    want = reference(tree)
    parsed = ex.parse(f"!({min_text(tree)})")
    assert _same(ex.evaluate(parsed, Ctx()), (not want) if type(want) is bool else U)


OPERANDS = [("lit", v, _number_text(v)) for v in (-3, 0, 1, 2, 6)] + [
    ("lit", True, "true"),
    ("lit", False, "false"),
]


def test_every_pair_of_operators_groups_as_c_precedence_says() -> None:
    """``a op1 b op2 c`` for every operator pair and operands: precedence, then left to right."""
    wrong: list[str] = []
    for op1 in PRECEDENCE:
        for op2 in PRECEDENCE:
            left_first = PRECEDENCE[op1] >= PRECEDENCE[op2]
            for a in OPERANDS:
                for b in OPERANDS:
                    for c in OPERANDS:
                        if left_first:
                            tree = ("bin", op2, ("bin", op1, a, b), c)
                        else:
                            tree = ("bin", op1, a, ("bin", op2, b, c))
                        text = f"{a[2]} {op1} {b[2]} {op2} {c[2]}"
                        got = ex.evaluate(ex.parse(text), Ctx())
                        if not _same(got, reference(tree)):
                            wrong.append(f"{text} = {got!r}")
    assert not wrong, wrong[:5]


def test_unary_operators_bind_tighter_than_every_binary_one() -> None:
    wrong: list[str] = []
    for unary in ("!", "-", "~"):
        for op in PRECEDENCE:
            for a in OPERANDS:
                for b in OPERANDS:
                    text = f"{unary}{a[2]} {op} {b[2]}"
                    tree = ("bin", op, ("un", unary, a), b)
                    got = ex.evaluate(ex.parse(text), Ctx())
                    if not _same(got, reference(tree)):
                        wrong.append(f"{text} = {got!r}")
    assert not wrong, wrong[:5]
