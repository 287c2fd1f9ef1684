"""Compiled rules (the rules runner's fast path) give the evaluator's output, item for item."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.rules.compiled import compile_statement
from cloud.rules.evaluate import Message, evaluate
from cloud.rules.sql import parse
from cloud.rules.topic_filter import topic_matches

COMPILABLE = [
    "encode(*, 'base64')",
    "topic()",
    "topic(1)",
    "topic(4)",
    "topic(9)",
    "topic(0)",
    "clientid()",
    "timestamp()",
    "'text'",
    "42",
    "1.5",
    "10.0",
    "0.1",
    "-0.0",
    "1E+40",
    "12345678901234567890.5",
    "123456789012345678901234567890123456789",
    "true",
    "null",
]
GENERAL = [
    "encode(*, 'hex')",
    "encode(site, 'base64')",
    "topic(2.0)",
    "topic('3')",
    "site",
    "get(samples, 0)",
    "seq + 1",
    "upper(asset)",
    "newuuid()",
]
PAYLOADS = st.one_of(
    st.sampled_from(
        [
            b'{"v":1,"site":"s1","asset":"p1","sender":"gw","seq":3,"samples":[]}',
            b"not json",
            b"",
            b"[1,2]",
            b'{"site":null}',
        ]
    ),
    st.binary(max_size=40),
)
TOPICS = st.sampled_from(
    ["dt/plantwatch/s1/p1/telemetry", "dt/plantwatch/s1/p1/status", "a", "a/b", "x/y/z"]
)


@st.composite
def statements(draw: st.DrawFn) -> str:
    pool = COMPILABLE if draw(st.booleans()) else COMPILABLE + GENERAL
    exprs = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=5))
    items = ", ".join(f"{e} AS k{i}" for i, e in enumerate(exprs))
    if draw(st.integers(0, 5)) == 0:
        items = "*, " + items
    where = draw(st.sampled_from(["", "", "", " WHERE seq > 1", " WHERE topic(1) = 'dt'"]))
    head = draw(st.sampled_from(["SELECT ", "SELECT ", "SELECT ", "SELECT VALUE "]))
    if head == "SELECT VALUE ":
        items = exprs[0]
    return f"{head}{items} FROM '#'{where}"


@settings(max_examples=400, deadline=None)
@given(statements(), PAYLOADS, TOPICS, st.sampled_from(["n/a", "gw-1"]), st.booleans())
def test_compiled_output_is_the_evaluators(
    sql: str, payload: bytes, topic: str, client_id: str, defer: bool
) -> None:
    statement = parse(sql)
    compiled = compile_statement(statement, defer_encoding=defer)
    if compiled is None:
        return
    assert topic_matches(statement.topic_filter, topic)
    message = Message(topic=topic, payload=payload, client_id=client_id, timestamp_ms=1234)
    fast, general = compiled(message), evaluate(statement, message, defer_encoding=defer)
    assert fast == general
    assert general is not None and fast.to_bytes() == general.to_bytes()


def test_the_project_rule_compiles_and_others_do_not() -> None:
    telemetry = parse(
        "SELECT encode(*, 'base64') AS payload, topic() AS topic, clientid() AS clientid, "
        "timestamp() AS received_ms FROM 'dt/plantwatch/+/+/telemetry'"
    )
    assert compile_statement(telemetry, defer_encoding=True) is not None
    for sql in [
        "SELECT * FROM 'a/#'",
        "SELECT topic() AS t FROM 'a/#' WHERE seq > 1",
        "SELECT VALUE topic() FROM 'a/#'",
        "SELECT site AS s FROM 'a/#'",
    ]:
        assert compile_statement(parse(sql)) is None, sql
