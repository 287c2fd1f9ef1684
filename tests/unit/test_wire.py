"""The wire contract: what edge, simulator and cloud agree on."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge import wire
from edge.errors import WireFormatError

TS = 1_700_000_000_000


def _message(**overrides: object) -> dict:
    doc = {
        "v": 1,
        "site": "s1",
        "asset": "pump-01",
        "sender": "gw-1",
        "seq": 7,
        "samples": [{"ts": 1_700_000_000_000, "values": {"flow": 12.5, "pressure": None}}],
    }
    doc.update(overrides)
    return doc


def test_topic_round_trip() -> None:
    topic = wire.telemetry_topic("s1", "pump-01")
    assert topic == "dt/plantwatch/s1/pump-01/telemetry"
    assert wire.parse_telemetry_topic(topic) == ("s1", "pump-01")


def test_decode_encode_round_trip() -> None:
    message = wire.decode(json.dumps(_message()).encode())
    assert message.msg_id == "gw-1:7"
    assert wire.decode(wire.encode(message)) == message


@pytest.mark.parametrize(
    ("doc", "reason", "field"),
    [
        (_message(v=2), "unsupported_version", "v:"),
        # JSON true and 1.0 are no version, though True == 1.0 == 1 in Python
        (_message(v=True), "unsupported_version", "v:"),
        (_message(v=1.0), "unsupported_version", "v:"),
        (_message(seq=-1), "bad_schema", "seq:"),
        (_message(asset="pump/01"), "bad_schema", "asset:"),
        (_message(samples=[]), "bad_schema", "samples:"),
        (_message(samples=[{"ts": "yesterday", "values": {"a": 1}}]), "bad_timestamp", "ts"),
        (_message(samples=[{"ts": TS, "values": {"a": "high"}}]), "bad_value_type", "values.a"),
        (_message(samples=[{"ts": TS, "values": {"a": True}}]), "bad_value_type", "values.a"),
        (_message(samples=[{"ts": TS, "values": {"a b": 1}}]), "bad_sensor_name", "a b"),
        (_message(samples=[{"ts": 10**400, "values": {"a": 1}}]), "out_of_range", ".ts:"),
        (_message(samples=[{"ts": -1, "values": {"a": 1}}]), "out_of_range", ".ts:"),
        (_message(samples=[{"ts": wire.TS_MAX_MS, "values": {"a": 1}}]), "out_of_range", "ts"),
        (_message(samples=[{"ts": TS, "values": {"a": 10**400}}]), "out_of_range", "values.a"),
        (_message(samples=[{"ts": TS, "values": {"a": -1.5e15}}]), "out_of_range", "values.a"),
        (_message(seq=2**63), "out_of_range", "seq:"),
    ],
)
def test_decode_names_the_bad_field(doc: dict, reason: str, field: str) -> None:
    with pytest.raises(WireFormatError) as info:
        wire.decode(json.dumps(doc))
    assert info.value.reason == reason
    assert field in str(info.value)


@pytest.mark.parametrize("version", [10**400, "1" * 100_000, ["v"] * 10_000])
def test_an_unsupported_version_is_named_in_a_short_reason(version: object) -> None:
    # the reason is kept with each quarantined message and shown on one line: a hostile
    # version must not make it as long as the payload (decode_status already cuts it)
    with pytest.raises(WireFormatError) as info:
        wire.decode(json.dumps(_message(v=version)))
    assert info.value.reason == "unsupported_version"
    assert len(str(info.value)) < 80


@pytest.mark.parametrize("name", ["Timestamp", "timestamp", "TIMESTAMP", "TimeStamp"])
def test_a_sensor_named_like_the_time_column_is_refused_by_both_decoders(name: str) -> None:
    """An input file's first column is ``Timestamp``: a sensor of that name would give the
    file two columns of one name, which the scheduler, the archive and exports cannot read."""
    from cloud import wire_decoder

    raw = json.dumps(_message(samples=[{"ts": TS, "values": {name: 1.0, "flow": 2.0}}]))
    for decode in (wire.decode, wire_decoder.decode, wire_decoder.decode_rows):
        with pytest.raises(
            WireFormatError, match="time column; give the sensor another name"
        ) as info:
            decode(raw)
        assert info.value.reason == "bad_sensor_name"
    for fine in ("Timestamp2", "ts", "timestamp_s", "Time"):
        assert wire.SENSOR_RE.fullmatch(fine)


def test_non_finite_values_are_refused() -> None:
    raw = json.dumps(_message(samples=[{"ts": TS, "values": {"a": float("nan")}}]))
    with pytest.raises(WireFormatError) as info:
        wire.decode(raw)
    assert info.value.reason == "non_finite"


def test_not_json_and_oversize() -> None:
    with pytest.raises(WireFormatError) as info:
        wire.decode(b"{nope")
    assert info.value.reason == "bad_json"
    with pytest.raises(WireFormatError) as info:
        wire.decode(b" " * (wire.MAX_PAYLOAD_BYTES + 1))
    assert info.value.reason == "oversize"


def test_batch_samples_numbers_messages() -> None:
    samples = [wire.Sample(i, {"a": float(i)}) for i in range(5)]
    batches = wire.batch_samples("s1", "a1", "a1", 10, samples, per_message=2)
    assert [b.seq for b in batches] == [10, 11, 12]
    assert [len(b.samples) for b in batches] == [2, 2, 1]


@pytest.mark.parametrize(
    ("topic", "refused"),
    [
        ("dt/plantwatch/s1/pump/telemetry", False),
        ("$aws/things/pump/shadow/name/cfg/update/documents", False),  # 7 slashes
        ("a/b/c/d/e/f/g/h/i", True),
        ("x" * 256, False),
        ("x" * 257, True),
        ("é" * 128, False),
        ("é" * 128 + "x", True),
        ("$SYS/broker/load", True),
        ("$foo", True),
        ("$aws/rules/r/" + "x" * 256, False),  # the Basic Ingest prefix does not count
        ("$aws/rules/r/a/b/c/d/e/f/g/h", False),
        ("$aws/rules/r/a/b/c/d/e/f/g/h/i", True),
        ("$share/g/dt/plantwatch/+/+/telemetry", False),
        ("$share/g/$SYS/#", True),
    ],
)
def test_iot_core_topic_limits(topic: str, refused: bool) -> None:
    """iot-core-rules-and-limits §2: reserved topics, 256 bytes, 7 slashes."""
    assert (wire.iot_core_topic_problem(topic) is not None) is refused


@pytest.mark.parametrize(
    ("client_id", "refused"),
    [("gw-01", False), ("é" * 64, False), ("é" * 64 + "x", True), ("$gw", True), ("", False)],
)
def test_iot_core_client_id_limits(client_id: str, refused: bool) -> None:
    assert (wire.client_id_problem(client_id) is not None) is refused


_NESTED = [
    "[" * 60_000 + "]" * 60_000,
    '{"v":1,"site":"s1","asset":"a","sender":"a","seq":1,'
    '"samples":[{"ts":1700000000000,"values":{"x":1}}],"extra":'
    + "[" * 60_000
    + "]" * 60_000
    + "}",
    '{"samples":[{"ts":1700000000000,"values":' + '{"x":' * 20_000 + "1" + "}" * 20_001 + "]}",
]


@pytest.mark.parametrize("payload", _NESTED, ids=["array", "unknown_field", "values"])
def test_json_nested_too_deeply_is_bad_json_in_both_decoders(payload: str) -> None:
    """A payload under the size limit can nest deeper than a JSON parser recurses: that is
    a refused payload (``bad_json``), not a RecursionError escaping the decoder."""
    from cloud import wire_decoder

    for decode in (wire.decode, wire_decoder.decode, wire_decoder.decode_rows):
        for body in (payload, payload.encode()):
            with pytest.raises(WireFormatError) as info:
                decode(body)
            assert info.value.reason == "bad_json", decode
            assert "nested too deeply" in str(info.value)


MAX_NESTING = 64
_FIELDS = (
    '{"v":1,"site":"s1","asset":"a","sender":"a","seq":1,'
    '"samples":[{"ts":1700000000000,"values":{"x":1}}],"extra":%s}'
)


def _status(extra: str) -> str:
    """A valid status document with *extra* in a field nobody reads."""
    body = wire.encode_status(wire.DeviceStatus("s1", "gw", "online", 5.0)).decode()
    return body[:-1] + ',"extra":' + extra + "}"


def _in_a_stack(frames: int, call):  # type: ignore[no-untyped-def]
    """*call* made *frames* Python frames further down the stack."""
    return call() if frames == 0 else _in_a_stack(frames - 1, call)


def _shallow(call):  # type: ignore[no-untyped-def]
    """*call* made at the bottom of a new thread's stack (a handful of frames)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(call).result()


def _verdict(decode, payload: str):  # type: ignore[no-untyped-def]
    try:
        decode(payload)
    except WireFormatError as exc:
        return exc.reason, str(exc)
    return "ok"


def test_the_nesting_limit_is_64_levels_in_every_decoder() -> None:
    """Deeper JSON is bad_json in the contract (edge.wire) and in the cloud's fast decoder
    alike, in a field nobody reads too: a telemetry document needs 4 levels."""
    from cloud import wire_decoder

    assert wire.MAX_NESTING == MAX_NESTING
    within = "[" * (MAX_NESTING - 1) + "]" * (MAX_NESTING - 1)  # the document is level 1
    deeper = "[" + within + "]"
    for decode in (wire.decode, wire_decoder.decode, wire_decoder.decode_rows):
        decode(_FIELDS % within)
        with pytest.raises(WireFormatError, match="nested too deeply") as info:
            decode(_FIELDS % deeper)
        assert info.value.reason == "bad_json"
    wire.decode_status(_status(within))
    with pytest.raises(WireFormatError, match="nested too deeply") as info:
        wire.decode_status(_status(deeper))
    assert info.value.reason == "bad_json"


@pytest.mark.parametrize("levels", [100, 960, 985, 999])
def test_the_verdict_on_deep_json_does_not_depend_on_the_callers_stack(levels: int) -> None:
    """json.loads refuses about 1000 levels minus the frames the caller already uses: the
    same payload was accepted by a shallow caller (a new thread) and refused by a deeper
    one."""
    from cloud import wire_decoder

    payload = _FIELDS % ("[" * levels + "]" * levels)
    status = _status("{" * levels + "}" * levels)
    cases = [(d, payload) for d in (wire.decode, wire_decoder.decode, wire_decoder.decode_rows)]
    for decode, body in [*cases, (wire.decode_status, status)]:
        verdicts = {
            _shallow(lambda d=decode, b=body: _verdict(d, b)),
            _in_a_stack(400, lambda d=decode, b=body: _verdict(d, b)),
        }
        assert len(verdicts) == 1 and next(iter(verdicts))[0] == "bad_json", verdicts


_LONG = "x" * 100_000 + "\n"


@pytest.mark.parametrize(
    "doc",
    [
        _message(site=_LONG),
        _message(asset=_LONG),
        _message(sender=_LONG),
        _message(samples=[{"ts": TS, "values": {_LONG: 1}}]),
        _message(samples=[{"ts": TS, "values": {"Timestamp" + " " * 90_000: 1}}]),
    ],
    ids=["site", "asset", "sender", "sensor", "sensor_like_time_column"],
)
def test_a_hostile_long_name_gives_a_short_error(doc: dict) -> None:
    """The error goes to logs, counters and each quarantine record: a 100 KB name must
    not be repeated in it whole."""
    from cloud import wire_decoder

    payload = json.dumps(doc)
    for decode in (wire.decode, wire_decoder.decode, wire_decoder.decode_rows):
        with pytest.raises(WireFormatError) as info:
            decode(payload)
        assert info.value.reason in ("bad_schema", "bad_sensor_name")
        assert len(str(info.value)) < 300


_DIGITS = "9" * 5_000
"""An integer literal longer than Python's int() takes from text (4,300 digits): JSON
all the same, whose value the contract judges like any other."""


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        (_message(note=0), None),
        (_message(seq=0), "out_of_range"),
        (_message(samples=[{"ts": 0, "values": {"a": 1}}]), "out_of_range"),
        (_message(samples=[{"ts": TS, "values": {"a": 0}}]), "out_of_range"),
        (_message(samples=[{"ts": TS, "values": {"a": 0}}], note=[0, {"b": 0}]), "out_of_range"),
    ],
    ids=["ignored_field", "seq", "ts", "value", "value_and_ignored_field"],
)
def test_an_integer_of_thousands_of_digits_is_judged_by_its_value(
    doc: dict, reason: str | None
) -> None:
    """Not ``bad_json``, "payload is not JSON", which it is: the same verdict from every
    decoder (the fast one skips an ignored field unread), and a short error."""
    from cloud import wire_decoder

    payload = json.dumps(doc).replace(": 0", ": " + _DIGITS).replace("[0", "[-" + _DIGITS)
    assert _DIGITS in payload
    for decode in (wire.decode, wire_decoder.decode, wire_decoder.decode_rows):
        for body in (payload, payload.encode()):
            if reason is None:
                assert decode(body).seq == 7
                continue
            with pytest.raises(WireFormatError) as info:
                decode(body)
            assert info.value.reason == reason, decode
            assert len(str(info.value)) < 300


LEVEL_TEXT = st.text(alphabet=st.sampled_from("ab-_Z09/+#$ \x00ü"), max_size=12)


@given(site=LEVEL_TEXT, thing=LEVEL_TEXT, kind=LEVEL_TEXT)
def test_every_plantwatch_topic_has_four_slashes_and_no_empty_level(
    site: str, thing: str, kind: str
) -> None:
    """iot-core-rules-and-limits §5: dt/plantwatch/<site>/<thing>/telemetry, .../status and
    cmd/plantwatch/<site>/<thing>/req|res have 4 slashes each; a builder refuses any part
    that would add a level, empty one or put a wildcard in a topic."""
    builders = [
        lambda: wire.telemetry_topic(site, thing),
        lambda: wire.status_topic(site, thing),
        lambda: wire.command_topic(site, thing, kind),
    ]
    for build in builders:
        try:
            topic = build()
        except WireFormatError:
            continue
        levels = topic.split("/")
        assert len(levels) == 5 and all(levels), topic
        assert not any(c in topic for c in "+#$\x00"), topic


def test_a_command_topic_ends_in_req_or_res() -> None:
    assert wire.command_topic("s1", "pump-01") == "cmd/plantwatch/s1/pump-01/req"
    assert wire.command_topic("s1", "pump-01", "res") == "cmd/plantwatch/s1/pump-01/res"
    for kind in ("", "req/x", "#", "ack"):
        with pytest.raises(WireFormatError, match="req or res"):
            wire.command_topic("s1", "pump-01", kind)
