"""The ``regexp_*`` functions run on the ``regex`` package (for its time limit) while a
pattern loads only if ``re`` reads it: on any string, each answer must be the one ``re``
gives with the same ASCII reading of the classes (Java's), so the engine behind them
changed nothing a rule can see. The strings hold no '\\r' (nor Java's other line
terminators but '\\n'), where '.' and '$' read as Java's differ from ``re``'s."""

from __future__ import annotations

import json
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.rules.evaluate import Message, evaluate
from cloud.rules.sql import parse

PATTERNS = [
    # (pattern, Java replacement, the same as a Python template)
    ("a{2,}", "x", "x"),
    ("b(.*)d", "$1", r"\1"),
    ("(hi)*", "[$1]", r"[\1]"),
    ("^\\s+|\\s+$", "", ""),
    ("[0-9]+(\\.[0-9]+)?", "<$0>", r"<\g<0>>"),
    ("(?<w>\\w+)@(\\w+)", "${w} at $2", r"\g<w> at \2"),
    ("(x)?-", "[$1]", r"[\1]"),
    ("\\b", "|", "|"),
    ("(?i)AB|c$", "\\$", "$"),
    ("", "-", "-"),
]
TEXT = st.text(alphabet="ab cdhi1.9-_@\t\nAB\u00e9\U0001f600", max_size=40)


def run(expr: str, subject: str) -> object:
    out = evaluate(parse(f"SELECT {expr} AS x FROM '#'"), Message("t", json.dumps({"s": subject})))
    assert out is not None
    return json.loads(out.to_bytes()).get("x", "<undefined>")


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(PATTERNS), TEXT)
def test_regexp_functions_answer_as_re_does(case: tuple[str, str, str], subject: str) -> None:
    pattern, java, python = case
    quoted = pattern.replace("'", "''")
    python_pattern = pattern.replace("(?<w>", "(?P<w>")  # Java's named group, as re writes it
    # Java's \b knows letters and digits of any script (as re's Unicode \b does on these
    # strings), where its \w is ASCII
    flags = re.UNICODE if pattern == "\\b" else re.ASCII
    found = re.search(python_pattern, subject, flags)
    assert run(f"regexp_matches(s, '{quoted}')", subject) is (found is not None)
    assert run(f"regexp_substr(s, '{quoted}')", subject) == (
        "<undefined>" if found is None else found.group(0)
    )
    assert run(f"regexp_replace(s, '{quoted}', '{java}')", subject) == re.sub(
        python_pattern, python, subject, flags=flags
    )
