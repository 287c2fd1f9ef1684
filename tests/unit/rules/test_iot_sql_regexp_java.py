"""``regexp_*`` patterns are read as the rules engine's Java ``java.util.regex`` reads them,
or refused when the rules load: never a different answer on the same string.

Source: https://docs.aws.amazon.com/iot/latest/developerguide/iot-sql-functions.html
(``regexp_matches``, ``regexp_replace``, ``regexp_substr``: the pattern "Must be a valid
regex expression"; the replacement references groups with ``$``, Java's syntax). Java's
``Pattern`` without flags: ``\\d \\w \\s \\b`` are ASCII only and ``(?i)`` folds ASCII
letters only (UNICODE_CHARACTER_CLASS and UNICODE_CASE are off); ``[a-z&&[^b]]`` is an
intersection and ``[a[b]]`` a union of classes; ``\\0mnn`` is an octal escape of up to
three digits. Python reads the last three otherwise, so they are refused at load.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.rules.evaluate import Message, evaluate
from cloud.rules.sql import parse
from edge.errors import RuleSqlError


def run(expr: str, subject: str) -> object:
    out = evaluate(parse(f"SELECT {expr} AS x FROM '#'"), Message("t", json.dumps({"s": subject})))
    assert out is not None
    return json.loads(out.to_bytes()).get("x", "<undefined>")


@pytest.mark.parametrize(
    ("pattern", "subject", "matches"),
    [
        ("\\d", "\u0663", False),  # ARABIC-INDIC DIGIT THREE: not in Java's [0-9]
        ("^\\d+$", "\uff11\uff12", False),  # fullwidth digits
        ("^\\d+$", "12", True),
        ("\\w", "\u00e9", False),  # é: not in Java's [a-zA-Z_0-9]
        ("^\\w+$", "caf\u00e9", False),
        ("^\\w+$", "cafe_9", True),
        ("\\s", "\u00a0", False),  # NO-BREAK SPACE: not in Java's [ \t\n\x0B\f\r]
        ("\\s", "\u2003", False),
        ("\\s", "\t", True),
        ("(?i)\u00e9", "\u00c9", False),  # ASCII-only case folding without UNICODE_CASE
        ("(?i)ab", "AB", True),
        ("[^\\W]", "\u00e9", False),
    ],
)
def test_character_classes_are_javas_ascii_ones(pattern: str, subject: str, matches: bool) -> None:
    assert run(f"regexp_matches(s, '{pattern}')", subject) is matches


def test_substr_and_replace_read_ascii_classes_too() -> None:
    assert run("regexp_substr(s, '\\w+')", "caf\u00e9 ok") == "caf"
    assert run("regexp_replace(s, '\\d', '#')", "1\u06632") == "#\u0663#"


@settings(max_examples=100, deadline=None)
@given(st.text(st.sampled_from("0189a \u0663\u0966\uff11\U0001d7ce"), max_size=12))
def test_digit_class_is_ascii_digits_on_any_string(subject: str) -> None:
    assert run("regexp_matches(s, '^\\d*$')", subject) is all(c in "0123456789" for c in subject)


@pytest.mark.parametrize(
    "pattern",
    [
        "[a-z&&[^b]]",  # Java: a to z except b; Python: a set, then a literal ']'
        "[a-z&&b]",
        "[[:alpha:]]",  # Java: the union of ':', 'a', 'l', 'p', 'h'; regex: a POSIX class
        "[a[bc]]",  # Java: a union
        "[[]",  # Java: an unclosed class
        "\\0141",  # Java: octal 141, 'a'; Python: octal 14 then '1'
        "\\0",  # Java: an error (no digit); Python: NUL
        "[\\012]",
        "\\101",  # Python: octal 101, 'A'; Java: a back reference
        "(?u)a",  # Java: Unicode case folding, which the ASCII reading cannot do
    ],
)
def test_patterns_python_reads_otherwise_are_refused_at_load(pattern: str) -> None:
    with pytest.raises(RuleSqlError, match="regexp_matches"):
        parse(f"SELECT regexp_matches(s, '{pattern}') AS x FROM '#'")


@pytest.mark.parametrize(
    ("pattern", "subject", "matches"),
    [
        ("[\\[]", "[", True),  # an escaped bracket in a class is a bracket in both
        ("[a\\]]", "]", True),
        ("\\x61", "a", True),
        ("(a)\\1", "aa", True),  # a back reference reads alike
    ],
)
def test_bracket_and_escape_forms_both_read_alike_still_load(
    pattern: str, subject: str, matches: bool
) -> None:
    assert run(f"regexp_matches(s, '{pattern}')", subject) is matches


@pytest.mark.parametrize(
    "pattern",
    [
        "a{,3}",  # Python: 0 to 3 of a; Java: an illegal repetition
        "{}",  # Python: the characters; Java: an illegal repetition
        'k":{',
        "a{b}",
        "x{1,2",
        "\\v",  # Python: \x0B; Java: any vertical white space
        "a\\Z",  # Python: the very end; Java: the end or before a final line terminator
    ],
)
def test_braces_and_escapes_java_reads_otherwise_are_refused_at_load(pattern: str) -> None:
    with pytest.raises(RuleSqlError, match="regexp_substr"):
        parse(f"SELECT regexp_substr(s, '{pattern}') AS x FROM '#'")


@pytest.mark.parametrize(
    ("pattern", "subject", "found"),
    [
        ("a{2}", "caab", "aa"),
        ("a{1,}", "caab", "aa"),
        ("a{1,3}", "aaaa", "aaa"),
        ("\\{x\\}", "{x}", "{x}"),
        ("[{]", "{", "{"),
        ("}", "}", "}"),
        ("\\x0B", "\x0b", "\x0b"),
    ],
)
def test_repetitions_and_escaped_braces_read_alike_still_load(
    pattern: str, subject: str, found: str
) -> None:
    assert run(f"regexp_substr(s, '{pattern}')", subject) == found


def test_named_groups_are_written_as_java_writes_them() -> None:
    assert run("regexp_replace(s, '(?<y>[0-9]+)-([0-9]+)', '${y}/$2')", "2024-05") == "2024/05"
    assert run("regexp_substr(s, '(?<d>[0-9])(?<=1)')", "a1") == "1"  # a look-behind still
    assert run("regexp_matches(s, '(?<!a)b')", "cb") is True


@pytest.mark.parametrize("pattern", ["(?P<y>[0-9]+)", "(?P<y>a)(?P=y)"])
def test_pythons_named_group_syntax_is_refused_at_load(pattern: str) -> None:
    """Java's Pattern has no (?P<name>...) or (?P=name): AWS's rule gets Undefined."""
    with pytest.raises(RuleSqlError, match=r"\(\?<name>"):
        parse(f"SELECT regexp_substr(s, '{pattern}') AS x FROM '#'")


@pytest.mark.parametrize(
    ("expr", "subject", "want"),
    [
        # Java's line terminators are \n, \r, \u0085, \u2028 and \u2029, and '\r\n' is one
        ("regexp_substr(s, '.*')", "abc\r\ndef", "abc"),
        ("regexp_substr(s, '.+')", "ab\u2028cd", "ab"),
        ("regexp_substr(s, '.+')", "ab\u0085cd", "ab"),
        ("regexp_substr(s, '.+')", "ab\ncd", "ab"),
        ("regexp_matches(s, 'OK$')", "OK\r\n", True),  # the end but for a final terminator
        ("regexp_matches(s, 'OK$')", "OK\r", True),
        ("regexp_matches(s, 'OK$')", "OK\u2029", True),
        ("regexp_matches(s, 'OK$')", "OK\n", True),
        ("regexp_matches(s, 'OK$')", "OK", True),
        ("regexp_matches(s, 'OK$')", "OK\r\n\r\n", False),
        ("regexp_matches(s, 'OK$')", "OK\n\n", False),
        ("regexp_matches(s, 'OK\\r$')", "OK\r\n", False),  # not between '\r' and '\n'
        ("regexp_replace(s, '$', '!')", "a\r\n", "a!\r\n!"),
        ("regexp_substr(s, '(?s).+')", "ab\r\ncd", "ab\r\ncd"),  # DOTALL: every character
        ("regexp_substr(s, '[.]+')", "..\r", ".."),  # a '.' in a class is the character
        ("regexp_substr(s, '\\.+')", "..\r", ".."),
    ],
)
def test_dot_and_dollar_know_javas_line_terminators(expr: str, subject: str, want: object) -> None:
    assert run(expr, subject) == want


@pytest.mark.parametrize(
    "pattern",
    [
        "(?m:^a)",
        "a(?s:.)",  # a scoped DOTALL: refused
        "(?-s).",
        "(?a)\\w",  # Python's ASCII flag: Java has none
        "(?L)a",
    ],
)
def test_flags_read_otherwise_are_refused_at_load(pattern: str) -> None:
    with pytest.raises(RuleSqlError, match="regexp_matches"):
        parse(f"SELECT regexp_matches(s, '{pattern}') AS x FROM '#'")


def test_multiline_flag_without_anchors_and_scoped_flags_without_dots_still_load() -> None:
    assert run("regexp_matches(s, '(?m)ab')", "xab") is True
    assert run("regexp_matches(s, '(?i:a)b')", "Ab") is True


def test_a_replacement_java_refuses_is_read_only_when_something_matches() -> None:
    """Java's Matcher.replaceAll reads the replacement at the first match: with none, the
    string comes back as it is, whatever the replacement."""
    assert run("regexp_replace(s, 'x', '$1')", "abc") == "abc"
    assert run("regexp_replace(s, 'x', '${n}')", "abc") == "abc"
    assert run("regexp_replace(s, 'x', 'a\\')", "abc") == "abc"
    assert run("regexp_replace(s, 'b', '$1')", "abc") == "<undefined>"


@pytest.mark.parametrize(
    ("pattern", "replacement", "subject", "want"),
    [
        # Java's Matcher.find starts one character on after an empty match, so no match
        # starts where an empty one did; Python (3.7 on) tries a longer one there
        (".*?", "<$0>", "ab", "<>a<>b<>"),
        ("^.*?", "-", "\u00e9", "-\u00e9"),
        ("|a", "<$0>", "ab", "<>a<>b<>"),
        ("a??", "<$0>", "aa", "<>a<>a<>"),
        # what both read alike
        ("a|", "<$0>", "ab", "<a><>b<>"),
        ("a*", "<$0>", "aab", "<aa><>b<>"),
        ("x*", "-", "xa", "--a-"),
        ("x*", "-", "abc", "-a-b-c-"),
        ("", "-", "ab", "-a-b-"),
        ("b", "[$0]", "abcb", "a[b]c[b]"),
    ],
)
def test_replace_finds_matches_as_java_does_after_an_empty_one(
    pattern: str, replacement: str, subject: str, want: str
) -> None:
    assert run(f"regexp_replace(s, '{pattern}', '{replacement}')", subject) == want


@pytest.mark.parametrize(
    ("pattern", "subject", "matches"),
    [
        # Java (8 to 18) reads \b with Character.isLetterOrDigit or '_', and a combining
        # mark after a letter or digit as part of the word, whatever \w is
        ("\\b", "\u00c9", True),
        ("a\\b", "a\u00e9", False),
        ("a\\B", "a\u00e9", True),
        ("\\bx", "\u00e9x", False),
        ("\\Bx", "\u00e9x", True),
        ("\\A\\b", "\u0663x", True),
        ("x\\b", "x\u0301", False),
        ("\\u0301\\b", "x\u0301 ", True),
        ("\\u0301\\b", "_\u0301 ", False),
        ("\\b.", "\u0301a", True),
        ("x\\B", "x_", True),
        ("\\b\\B", "a", False),
        ("\\bab\\b", "x ab.", True),
    ],
)
def test_word_boundaries_are_javas(pattern: str, subject: str, matches: bool) -> None:
    assert run(f"regexp_matches(s, '{pattern}')", subject) is matches


def test_word_boundaries_in_a_replacement_are_javas() -> None:
    assert run("regexp_replace(s, '\\b', '|')", "\u00c9 \u00e9a-b") == "|\u00c9| |\u00e9a|-|b|"


@pytest.mark.parametrize("pattern", ["[\\b]", "[a\\B]"])
def test_a_boundary_in_a_class_is_refused_at_load(pattern: str) -> None:
    """Java refuses it; Python reads [\\b] as a backspace."""
    with pytest.raises(RuleSqlError, match="regexp_matches"):
        parse(f"SELECT regexp_matches(s, '{pattern}') AS x FROM '#'")


def test_word_boundaries_are_javas_under_case_insensitive_matching() -> None:
    assert run("regexp_matches(s, '(?i)a\\b')", "a\u00c9") is False
    assert run("regexp_replace(s, '(?i)\\b', '!')", "-_\u00c9x") == "-!_\u00c9x!"
    assert run("regexp_matches(s, '(?i)\u00e9\\B')", "\u00e9\u00c9") is True


@pytest.mark.parametrize(
    ("pattern", "subject", "replaced"),
    [
        # Java's multi-line '^': after any line terminator (\r\n being one), never at the
        # end of the input, even after a final terminator
        ("(?m)^", "a\nb\n", "<>a\n<>b\n"),
        ("(?m)^", "a\rb", "<>a\r<>b"),
        ("(?m)^", "a\r\nb", "<>a\r\n<>b"),
        ("(?m)^", "a\u2028b\x85c", "<>a\u2028<>b\x85<>c"),
        ("(?m)^$", "\n\n", "<>\n<>\n"),
        # Java's multi-line '$': before any line terminator (not between \r and \n) or at
        # the end of the input
        ("(?m)$", "a\rb", "a<>\rb<>"),
        ("(?m)$", "a\r\nb", "a<>\r\nb<>"),
        ("(?m)$", "a\n", "a<>\n<>"),
        ("(?m)^.*$", "ab\r\ncd\rx", "<ab>\r\n<cd>\r<x>"),
        ("(?m)^\\w+", "x\u2029yz", "<x>\u2029<yz>"),
    ],
)
def test_multiline_anchors_are_javas(pattern: str, subject: str, replaced: str) -> None:
    """Measured with OpenJDK 17.0.15: ``Pattern.compile(p).matcher(s).replaceAll("<$0>")``."""
    assert run(f"regexp_replace(s, '{pattern}', '<$0>')", subject) == replaced


def test_multiline_caret_does_not_match_an_empty_string() -> None:
    """Java's multi-line '^' never matches at the end of the input, so not in '' either
    (``Pattern.compile("(?m)^").matcher("").find()`` is false)."""
    assert run("regexp_matches(s, '(?m)^')", "") is False
    assert run("regexp_substr(s, '(?m)^.*$')", "") == "<undefined>"


@pytest.mark.parametrize("pattern", ["(?i)(?s)A.B", "(?s)(?i)A.B", "(?is)A.B"])
def test_a_dotall_flag_in_any_opening_flag_group_holds(pattern: str) -> None:
    """Python takes global flags only at the start, in one group or several; Java reads
    each from where it stands, so there too it holds for the whole pattern: '.' is any
    character (``Pattern.compile("(?i)(?s)A.B").matcher("a\\nb").find()`` is true)."""
    assert run(f"regexp_substr(s, '{pattern}')", "a\nb") == "a\nb"
