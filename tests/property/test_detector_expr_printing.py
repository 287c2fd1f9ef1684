"""Printing and total evaluation of the IoT Events expression language (specs §3).

Any tree the parser can produce prints (``expr.unparse``) as text that parses back to the
same tree, literal types included; and evaluating any tree against any data gives a value
of the language or undefined, never a Python exception.
"""

from __future__ import annotations

import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud.detectors import expr as ex

# ---------------------------------------------------------------- trees the parser produces

plain_names = st.from_regex(r"[a-zA-Z][a-zA-Z0-9_]{0,6}", fullmatch=True)
quoted_names = st.text(min_size=1, max_size=6).filter(lambda s: "`" not in s)
names = st.one_of(plain_names, quoted_names)


def _spellable(s: str) -> bool:
    return ("'" not in s and "${" not in s) or '"' not in s


strings = st.text(max_size=8)
ints = st.integers(min_value=-ex.MAX_INTEGER, max_value=ex.MAX_INTEGER)
small_ints = st.integers(min_value=-(2**70), max_value=2**70)
floats = st.floats(allow_nan=False, allow_infinity=False)

literals = st.one_of(
    st.booleans(), small_ints, ints, floats, strings, st.sampled_from(["", "'", '"', "${x}", "\\"])
)

input_refs = st.builds(
    lambda name, first, rest: ex.InputRef(name, (first, *rest)),
    names,
    names,
    st.lists(st.one_of(names, st.integers(min_value=0, max_value=10**6)), max_size=3),
)
leaves = st.one_of(
    literals.map(ex.Literal),
    input_refs,
    names.map(ex.VariableRef),
)

template_texts = st.text(min_size=1, max_size=6).filter(lambda s: "'" not in s and "${" not in s)


def _template(parts: list[Any]) -> ex.Expr:
    """Join adjacent text and drop a ``$`` that would open a template with the next part."""
    out: list[Any] = []
    for part in parts:
        if isinstance(part, str) and out and isinstance(out[-1], str):
            out[-1] = out[-1] + part
        else:
            out.append(part)
    if all(isinstance(p, str) for p in out):
        return ex.Literal("".join(out))
    return ex.Template(tuple(out))


def _templates_ok(t: ex.Expr) -> bool:
    if not isinstance(t, ex.Template):
        return True
    text = "".join(p if isinstance(p, str) else "\0" for p in t.parts)
    return "${" not in text and _spellable(text.replace("\0", ""))


def _calls(children: st.SearchStrategy[ex.Expr]) -> st.SearchStrategy[ex.Expr]:
    fixed = st.sampled_from([n for n in ex.FUNCTIONS if n != "convert"]).flatmap(
        lambda name: st.lists(
            children, min_size=ex.FUNCTIONS[name], max_size=ex.FUNCTIONS[name]
        ).map(lambda args: ex.Call(name, tuple(args)))
    )
    convert = st.builds(
        lambda first, value: ex.Call("convert", (first, value)),
        st.one_of(st.sampled_from(ex.CONVERT_TYPES).map(ex.TypeName), children),
        children,
    )
    return st.one_of(fixed, convert)


def _unary(op: str, operand: ex.Expr) -> ex.Expr:
    if op == "-" and isinstance(operand, ex.Literal):
        value = operand.value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return ex.Literal(-value)  # the parser folds a minus into a number
    return ex.Unary(op, operand)


def _extend(children: st.SearchStrategy[ex.Expr]) -> st.SearchStrategy[ex.Expr]:
    return st.one_of(
        st.builds(_unary, st.sampled_from(["!", "~", "-"]), children),
        st.builds(ex.Binary, st.sampled_from(sorted(ex._BINARY_PRECEDENCE)), children, children),
        _calls(children),
        st.lists(st.one_of(template_texts, children), min_size=1, max_size=4)
        .map(_template)
        .filter(_templates_ok),
    )


trees = st.recursive(leaves, _extend, max_leaves=12)


def strict(tree: Any) -> Any:
    """The tree with each literal's type beside its value (``Literal(1) == Literal(True)``)."""
    if isinstance(tree, ex.Literal):
        value = tree.value
        if isinstance(value, float):
            return ("lit", "float", math.copysign(1, value), value)
        return ("lit", type(value).__name__, value)
    if isinstance(tree, ex.Unary):
        return ("un", tree.op, strict(tree.operand))
    if isinstance(tree, ex.Binary):
        return ("bin", tree.op, strict(tree.left), strict(tree.right))
    if isinstance(tree, ex.Call):
        return ("call", tree.name, tuple(strict(a) for a in tree.args))
    if isinstance(tree, ex.Template):
        return ("tmpl", tuple(p if isinstance(p, str) else strict(p) for p in tree.parts))
    if isinstance(tree, ex.InputRef):
        return ("in", tree.input_name, tuple((type(s).__name__, s) for s in tree.path))
    return tree


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trees)
def test_a_printed_tree_parses_back_to_the_same_tree(tree: ex.Expr) -> None:
    text = ex.unparse(tree)
    assert strict(ex.parse(text)) == strict(tree), text


EXPR_ALPHABET = st.sampled_from(
    [*"0123456789.+-*/()!~&|^<>=,'\"`$ {}[]eEx_", "$input.I.", "$variable.", "${", "true"]
    + [f"{name}(" for name in ex.FUNCTIONS]
    + ["String", "Decimal", "Boolean"]
)


@settings(max_examples=1500, deadline=None)
@given(st.lists(EXPR_ALPHABET, max_size=30).map("".join))
def test_whatever_parses_prints_as_text_that_parses_to_the_same_tree(text: str) -> None:
    try:
        tree = ex.parse(text)
    except ex.ExpressionError:
        return
    printed = ex.unparse(tree)
    assert strict(ex.parse(printed)) == strict(tree), (text, printed)


def test_printing_examples() -> None:
    cases = {
        "(1 + 2) * 3": "(1 + 2) * 3",
        "1 - (2 - 3)": "1 - (2 - 3)",
        "(1 - 2) - 3": "1 - 2 - 3",
        "-(1 + 2)": "-(1 + 2)",
        "5 - -3": "5 - -3",
        "!($input.I.a > 1)": "!($input.I.a > 1)",
        "$input.I.`_value`[2].x": "$input.I.`_value`[2].x",
        "'${$input.G.t * 9 / 5 + 32} in F'": "'${$input.G.t * 9 / 5 + 32} in F'",
        '"it\'s"': '"it\'s"',
        'convert(Decimal, "2.5")': "convert(Decimal, '2.5')",
    }
    for text, printed in cases.items():
        assert ex.unparse(ex.parse(text)) == printed


# ---------------------------------------------------------------- total evaluation

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**1100), max_value=2**1100),
    st.floats(),
    st.text(max_size=5),
)
json_values = st.recursive(
    json_scalars,
    lambda c: st.one_of(
        st.lists(c, max_size=3), st.dictionaries(st.sampled_from(["a", "b", "_v"]), c, max_size=3)
    ),
    max_leaves=6,
)


class Ctx:
    def __init__(self, doc: Any, variables: dict[str, Any], trigger: str) -> None:
        self.doc = doc
        # a variable holds what an expression gave, which reads as a top-level input value does
        self.variables = {k: ex.lookup_path(v, ()) for k, v in variables.items()}
        self.trigger = trigger

    def input_value(self, input_name: str, path: tuple[str | int, ...]) -> Any:
        return ex.lookup_path(self.doc, path)

    def variable(self, name: str) -> Any:
        return self.variables.get(name, ex.UNDEFINED)

    def timeout(self, timer_name: str) -> bool:
        return timer_name == "t"

    def trigger_type(self) -> str:
        return self.trigger

    def current_input(self) -> str | None:
        return "I" if self.trigger == "Message" else None


def _is_language_value(v: Any) -> bool:
    if v is ex.UNDEFINED or v is None or isinstance(v, bool | str | dict | list):
        return True
    if isinstance(v, float):
        return math.isfinite(v)
    return isinstance(v, int) and abs(v) <= ex.MAX_INTEGER


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    trees,
    st.dictionaries(st.sampled_from(["a", "b", "x", "_v"]), json_values, max_size=4),
    st.dictionaries(st.sampled_from(["a", "b", "x"]), json_values, max_size=3),
    st.sampled_from(["Message", "Timer"]),
)
def test_evaluation_never_raises(tree: ex.Expr, doc: Any, variables: Any, trigger: str) -> None:
    ctx = Ctx(doc, variables, trigger)
    value, why = ex.evaluate_reporting(tree, ctx)
    assert _is_language_value(value), value
    assert why is None or "\n" not in why
    assert ex.is_true(tree, ctx) is (value is True)
    if isinstance(value, bool | int | float | str) or value is None:
        ex.format_value(value)
