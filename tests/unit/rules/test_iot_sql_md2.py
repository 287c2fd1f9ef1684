"""``md2(String)`` (AWS functions page, "Hashing functions"): RFC 1319 MD2, computed by
``cloud/rules/md2.py`` since hashlib has none. The digests are RFC 1319's own test suite
(appendix A.5) and AWS's example, read back through a rule as a device would see them."""

from __future__ import annotations

import hashlib
import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.cli.main import main
from cloud.rules.evaluate import Message, evaluate
from cloud.rules.md2 import md2_hex
from cloud.rules.sql import parse
from tests.unit.rules.test_rule_failures import message, runner

RFC_1319_A5 = [
    ("", "8350e5a3e24c153df2275c9f80692773"),
    ("a", "32ec01ec4a6dac72c0ab96fb34c0b5d1"),
    ("abc", "da853b0d3f88d99b30283a69e6ded6bb"),
    ("message digest", "ab4f496bfb2a530b219ff33031fe06b0"),
    ("abcdefghijklmnopqrstuvwxyz", "4e8ddff3650292ab5a4108c3aa47940b"),
    (
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
        "da33def2a42df13975352846c30338cd",
    ),
    ("1234567890" * 8, "d5976f79d83d3a0dc9806c3c66f3efd8"),
]


def md2_of(payload: dict[str, object]) -> object:
    out = evaluate(parse("SELECT md2(s) AS h FROM 'dt/#'"), Message("dt/a", json.dumps(payload)))
    assert out is not None
    return json.loads(out.to_bytes()).get("h", "<undefined>")


@pytest.mark.parametrize(("text", "digest"), RFC_1319_A5)
def test_rfc_1319_test_suite(text: str, digest: str) -> None:
    assert md2_of({"s": text}) == digest


def test_the_aws_example() -> None:
    assert md2_of({"s": "hello"}) == "a9046c73e00331af68917d3804f70655"


def test_non_strings_take_the_standard_string_conversion() -> None:
    """ "Standard string conversions apply to non-string arguments" (AWS hashing functions),
    as md5 does; Null and a missing key are Undefined."""
    for value, text in [(12, "12"), (True, "true"), ([1, 2], "[1,2]")]:
        assert md2_of({"s": value}) == md2_hex(text.encode())
    assert md2_of({"s": None}) == "<undefined>"
    assert md2_of({}) == "<undefined>"


def test_the_digest_covers_utf8_bytes_and_block_boundaries() -> None:
    # 15, 16 and 17 bytes: the padding is 1, 16 and 15 bytes of its own length (RFC 1319 3.1)
    digests = {md2_hex(b"x" * n) for n in (15, 16, 17, 31, 32, 33)}
    assert len(digests) == 6
    assert md2_of({"s": "€"}) == md2_hex("€".encode())


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=80))
def test_md2_is_a_32_hex_digest_that_separates_inputs(data: bytes) -> None:
    digest = md2_hex(data)
    assert len(digest) == 32 and int(digest, 16) >= 0
    assert md2_hex(data + b"\x00") != digest
    assert digest != hashlib.md5(data).hexdigest()


ELEMENTS = json.dumps({"e": list(range(20_000))}, separators=(",", ":"))
"""A 128 KiB payload of short numbers: each md2 call hashes two blocks at least (its
padding, then its checksum), about 90 microseconds in Python, so a nested SELECT hashing
each one (as a string, the standard conversion) cost more than a second per message."""
EACH = "SELECT (SELECT VALUE md2(*) FROM e) AS h FROM '#'"


def test_md2_over_a_payloads_elements_stops_within_the_budget() -> None:
    """Stopped by md2's own bound, at a third of a second here: well within the second one
    rule may take on a message, so the bound is what stops it on any machine."""
    payload = ELEMENTS.encode()
    assert len(payload) <= 131_072
    started = time.thread_time()
    with pytest.raises(RuntimeError, match=r"^md2\(\): .* over the 8194 blocks"):
        evaluate(parse(EACH), Message("a/b", payload))
    assert time.thread_time() - started < 0.75


def test_one_digest_of_a_whole_payload_is_within_the_bound_and_a_second_is_not() -> None:
    """The bound (8,194 blocks of 16 bytes per message) is what one digest of a 128 KiB
    string hashes: the most a device's payload can hold, hashed once."""
    text = "a" * (131_072 - 16)
    doc = json.dumps({"s": text}).encode()
    out = evaluate(parse("SELECT md2(s) AS a FROM '#'"), Message("a/b", doc))
    assert out is not None
    assert json.loads(out.to_bytes()) == {"a": md2_hex(text.encode())}
    twice = parse("SELECT md2(s) AS a, md2(concat(s, '')) AS b FROM '#'")
    with pytest.raises(RuntimeError, match=r"^md2\(\): a 131056-byte string takes"):
        evaluate(twice, Message("a/b", doc))


def test_the_runner_quarantines_the_message_and_runs_the_next() -> None:
    sql = EACH.replace("'#'", "'dt/plantwatch/+/+/telemetry'")
    rules_runner, store = runner(sql)
    hostile = message(5)
    hostile.payload = ELEMENTS.encode()
    batch = [(1, message(1)), (1, hostile), (1, message(3))]
    assert rules_runner.process(batch) == batch
    assert rules_runner.counts["rule_failed"] == 1
    (key,) = list(store.list("quarantine/rule_failed/"))
    error = json.loads(store.get(key))["error"]
    assert error.startswith("the rules raised Md2LimitError: md2(): ")


def test_rules_eval_fails_the_message_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    payload = ELEMENTS
    assert main(["rules", "eval", "--sql", EACH, "--topic", "t", "--payload", payload]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("plantwatch: error: md2(): ")
    assert captured.err.count("\n") == 1
