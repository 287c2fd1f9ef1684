"""The pure shadow engine against the contract in AWS's shadow documentation."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.shadow.document import (
    MAX_PAYLOAD_BYTES,
    MAX_STATE_BYTES,
    Shadow,
    ShadowError,
    apply_update,
    compute_delta,
    get_document,
    lenient_token,
    parse_payload,
    state_size,
    validate_names,
)

NOW = 1_747_330_109


def update(stored: Shadow | None, state: Any, **extra: Any):
    return apply_update(stored, {"state": state, **extra}, NOW)


def rejected(stored: Shadow | None, request: Any) -> ShadowError:
    with pytest.raises(ShadowError) as caught:
        apply_update(stored, request, NOW)
    return caught.value


def test_first_update_creates_version_1_and_echoes_the_request():
    result = update(None, {"reported": {"color": "red"}}, clientToken="t-2")
    assert result.shadow.version == 1
    assert result.accepted == {
        "state": {"reported": {"color": "red"}},
        "metadata": {"reported": {"color": {"timestamp": NOW}}},
        "version": 1,
        "timestamp": NOW,
        "clientToken": "t-2",
    }
    assert result.delta is None
    assert result.documents["previous"] is None
    assert result.documents["current"]["version"] == 1


def test_deep_merge_keeps_unmentioned_keys():
    stored = update(None, {"desired": {"color": {"r": 255, "g": 255}, "mode": "eco"}}).shadow
    merged = update(stored, {"desired": {"color": {"r": 10}}}).shadow
    assert merged.state == {"desired": {"color": {"r": 10, "g": 255}, "mode": "eco"}}
    assert merged.version == 2


def test_null_deletes_leaf_with_metadata_and_emptied_objects_vanish():
    stored = update(None, {"desired": {"engine": {"on": True}, "mode": "eco"}}).shadow
    result = apply_update(stored, {"state": {"desired": {"engine": {"on": None}}}}, NOW + 5)
    assert result.shadow.state == {"desired": {"mode": "eco"}}
    assert result.shadow.metadata == {"desired": {"mode": {"timestamp": NOW}}}
    assert result.accepted["metadata"] == {"desired": {"engine": {"on": {"timestamp": NOW + 5}}}}


def test_clearing_all_state_keeps_the_shadow_and_counts_on():
    stored = update(None, {"desired": {"a": 1}, "reported": {"b": 2}}).shadow
    cleared = update(stored, None)
    assert cleared.shadow.state == {} and cleared.shadow.version == 2
    assert cleared.accepted["state"] is None
    assert get_document(cleared.shadow, NOW) == {
        "state": {},
        "metadata": {},
        "version": 2,
        "timestamp": NOW,
    }


def test_state_null_is_timed_like_a_null_leaf_where_it_was_sent():
    """AWS answers ``{"state": null}`` with ``"metadata": {"timestamp": T}`` (getmoto/moto
    #9237 quotes IoT Core's response); a section sent as null is timed in its place."""
    stored = update(None, {"desired": {"a": 1}, "reported": {"b": 2}}).shadow
    assert update(stored, None).accepted["metadata"] == {"timestamp": NOW}
    assert update(stored, {"desired": None}).accepted["metadata"] == {"desired": {"timestamp": NOW}}


def test_section_null_deletes_the_section():
    stored = update(None, {"desired": {"a": 1}, "reported": {"a": 0}}).shadow
    assert update(stored, {"desired": None}).shadow.state == {"reported": {"a": 0}}


def test_arrays_replace_whole_and_get_per_element_metadata():
    stored = update(None, {"desired": {"rgb": [1, 2, 3]}}).shadow
    result = update(stored, {"desired": {"rgb": [9]}})
    assert result.shadow.state["desired"]["rgb"] == [9]
    assert result.shadow.metadata["desired"]["rgb"] == [{"timestamp": NOW}]


def test_array_holding_null_is_invalid_json():
    error = rejected(None, {"state": {"desired": {"rgb": [1, None]}}, "clientToken": "c"})
    assert (error.code, error.message, error.client_token) == (400, "Invalid JSON", "c")


def test_delta_nested_keeps_path_and_arrays_compare_whole():
    desired = {"lights": {"color": {"r": 255, "g": 255}}, "list": [1, 2], "same": [1, 2]}
    reported = {"lights": {"color": {"r": 255, "g": 0}}, "list": [1], "same": [1, 2], "x": 1}
    assert compute_delta(desired, reported) == {"lights": {"color": {"g": 255}}, "list": [1, 2]}


def test_delta_numbers_by_value_but_booleans_are_not_numbers():
    assert compute_delta({"a": 1, "b": True}, {"a": 1.0, "b": 1}) == {"b": True}


def test_reported_only_update_publishes_the_full_remaining_delta():
    stored = update(None, {"desired": {"Status": "Great", "fan": 2}}).shadow
    result = apply_update(stored, {"state": {"reported": {"Status": "Awful"}}}, NOW + 60)
    assert result.delta is not None
    assert result.delta["state"] == {"Status": "Great", "fan": 2}
    assert result.delta["metadata"] == {
        "Status": {"timestamp": NOW},
        "fan": {"timestamp": NOW},
    }
    assert result.delta["version"] == 2


def test_version_lock():
    stored = update(None, {"desired": {"a": 1}}).shadow
    assert update(stored, {"desired": {"a": 2}}, version=1).shadow.version == 2
    error = rejected(stored, {"state": {"desired": {"a": 3}}, "version": 0, "clientToken": "k"})
    assert error.document(NOW) == {"code": 409, "message": "Version conflict", "clientToken": "k"}


def test_version_on_missing_shadow_continues_from_tombstone():
    result = apply_update(
        None, {"state": {"desired": {"a": 1}}, "version": 9}, NOW, missing_version=9
    )
    assert result.shadow.version == 10
    assert rejected(None, {"state": {"desired": {"a": 1}}, "version": 3}).code == 409


@pytest.mark.parametrize(
    ("request_doc", "message", "echo"),
    [
        ({"clientToken": "t"}, "Missing required node: state", True),
        ({"state": 3, "clientToken": "t"}, "State node must be an object", True),
        ({"state": {"desired": []}}, "Desired node must be an object", False),
        ({"state": {"reported": "x"}}, "Reported node must be an object", False),
        (
            {"state": {"delta": {}}, "clientToken": "t"},
            "State contains an invalid node: 'delta'",
            True,
        ),
        ({"state": {}, "version": -1}, "Invalid version", False),
        ({"state": {}, "version": True}, "Invalid version", False),
        ({"state": {}, "clientToken": 5}, "Invalid clientToken", False),
        ({"state": {}, "clientToken": "x" * 65}, "Invalid clientToken", False),
        ({"state": {}, "clientToken": None}, "Invalid clientToken", False),
        ({"state": {}, "version": None, "clientToken": "t"}, "Invalid version", True),
        ({"state": None, "version": None}, "Invalid version", False),
    ],
)
def test_bad_requests_are_400_with_aws_messages(request_doc, message, echo):
    error = rejected(None, request_doc)
    doc = error.document(NOW)
    assert doc["code"] == 400 and doc["message"] == message and doc["timestamp"] == NOW
    assert ("clientToken" in doc) is echo


def nest(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for i in range(levels):
        value = {f"k{i}": value}
    return value


def test_depth_limit_is_six_levels_under_the_section():
    assert update(None, {"desired": nest(5)}).shadow.version == 1
    error = rejected(None, {"state": {"desired": nest(6)}})
    assert (error.code, error.message) == (
        400,
        "JSON contains too many levels of nesting; maximum is 6",
    )


def test_depth_is_checked_before_version_match():
    stored = update(None, {"desired": {"a": 1}}).shadow
    error = rejected(stored, {"state": {"desired": nest(6)}, "version": 99})
    assert error.code == 400


def test_state_over_8_kb_is_413_and_counts_the_merged_state():
    stored = update(None, {"reported": {"blob": "x" * 4000}}).shadow
    assert update(stored, {"desired": {"blob": "y" * 4000}}).shadow.version == 2
    error = rejected(stored, {"state": {"desired": {"blob": "y" * 4200}}, "clientToken": "s"})
    assert error.document(NOW) == {
        "code": 413,
        "message": "The payload exceeds the maximum size allowed",
        "timestamp": NOW,
        "clientToken": "s",
    }


def test_parse_payload_rejects_non_utf8_and_non_objects():
    with pytest.raises(ShadowError) as bad_encoding:
        parse_payload(b'{"state":"\xff"}')
    assert bad_encoding.value.code == 415
    for body in (b"[1]", b"not json", b'{"state": NaN}'):
        with pytest.raises(ShadowError) as bad_json:
            parse_payload(body)
        assert (bad_json.value.code, bad_json.value.message) == (400, "Invalid JSON")


def test_404_omits_timestamp():
    doc = ShadowError(404, "No shadow exists with name: 'p'", "t").document(NOW)
    assert doc == {"code": 404, "message": "No shadow exists with name: 'p'", "clientToken": "t"}


json_leaf = st.one_of(
    st.integers(-1000, 1000),
    st.booleans(),
    st.text(max_size=5),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
)
json_tree = st.recursive(
    json_leaf,
    lambda inner: (
        st.dictionaries(st.sampled_from("abcd"), inner, max_size=3)
        | st.lists(json_leaf, max_size=3)
    ),
    max_leaves=10,
)
section = st.dictionaries(st.sampled_from("abcdef"), json_tree, max_size=4)


@settings(max_examples=200, deadline=None)
@given(desired=section, reported=section)
def test_reporting_the_desired_state_empties_the_delta(desired, reported):
    stored = update(None, {"desired": desired, "reported": reported}).shadow
    synced = update(stored, {"reported": desired}).shadow
    assert compute_delta(synced.state.get("desired", {}), synced.state.get("reported", {})) == {}


@settings(max_examples=200, deadline=None)
@given(first=section, second=section)
def test_metadata_mirrors_state_shape_and_size_is_compact_json(first, second):
    shadow = update(update(None, {"desired": first}).shadow, {"desired": second}).shadow

    def shape(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: shape(v) for k, v in value.items()}
        if isinstance(value, list):
            return [shape(v) for v in value]
        return "leaf"

    def meta_shape(value: Any) -> Any:
        if (
            isinstance(value, dict)
            and set(value) == {"timestamp"}
            and isinstance(value["timestamp"], int)
        ):
            return "leaf"
        if isinstance(value, dict):
            return {k: meta_shape(v) for k, v in value.items()}
        return [meta_shape(v) for v in value]

    desired = shadow.state.get("desired", {})
    assert meta_shape(shadow.metadata.get("desired", {})) == shape(desired)
    assert state_size(shadow.state) <= MAX_STATE_BYTES
    assert state_size(shadow.state) == (
        len(json.dumps(desired, separators=(",", ":"), ensure_ascii=False).encode())
        if desired
        else 0
    )


@pytest.mark.parametrize(
    "body",
    [
        b'{"state":{"desired":{"a":1e400}}}',
        b'{"state":{"reported":{"a":[-1e400]}}}',
        b'{"state":{"desired":{"a":1' + b"0" * 400 + b"}}}",
        b'{"state":{"desired":{"a":"\\ud800"}}}',
        b'{"state":{"desired":{"\\udc00":1}}}',
        b'{"clientToken":"\\ud800","state":{}}',
    ],
    ids=[
        "float-overflow",
        "negative-overflow-in-array",
        "int-beyond-double",
        "lone-surrogate",
        "surrogate-key",
        "surrogate-token",
    ],
)
def test_numbers_beyond_doubles_and_lone_surrogates_are_invalid_json(body):
    """Section 5 order, JSON step: such a value has no JSON (Infinity) or UTF-8 form, so
    storing it would answer with a non-JSON document or fail later as a 500."""
    with pytest.raises(ShadowError) as caught:
        parse_payload(body)
    assert (caught.value.code, caught.value.message) == (400, "Invalid JSON")


def test_large_numbers_within_a_double_are_kept_exactly():
    doc = parse_payload(b'{"state":{"desired":{"big":123456789012345678901234567890,"f":1e308}}}')
    result = apply_update(None, doc, NOW)
    assert result.shadow.state["desired"] == {"big": 123456789012345678901234567890, "f": 1e308}


@pytest.mark.parametrize("body", [b'{"clientToken":null}', b'{"clientToken":5}'])
def test_a_get_token_that_is_not_a_string_is_invalid_client_token(body):
    """Section 3.6: a clientToken that is present but not a string (JSON null included)
    is 400 Invalid clientToken on get and delete too, never read as absent."""
    with pytest.raises(ShadowError) as caught:
        lenient_token(body)
    assert (caught.value.code, caught.value.message) == (400, "Invalid clientToken")


def test_a_null_version_is_refused_on_a_live_shadow():
    """A null version is not an optimistic lock left out: it is refused on a live
    shadow as on a missing one."""
    stored = update(None, {"reported": {"a": 1}}).shadow
    error = rejected(stored, {"state": {"reported": {"a": 2}}, "version": None})
    assert (error.code, error.message) == (400, "Invalid version")


def test_a_get_token_without_utf8_form_is_invalid_client_token():
    with pytest.raises(ShadowError) as caught:
        lenient_token(b'{"clientToken":"\\udfff"}')
    assert (caught.value.code, caught.value.message) == (400, "Invalid clientToken")


hostile_fragment = st.sampled_from(
    [
        "1e400",
        "-1e999",
        "1" + "0" * 320,
        "1e308",
        "-0",
        "0.0",
        "123456789012345678901234567890",
        '"\\ud800"',
        '"\\ud83d\\ude00"',
        '"\\u0000"',
        '"é"',
        "null",
        "true",
        "[]",
        "{}",
        "[null]",
        "[[1]]",
        '{"x":null}',
        "NaN",
        "Infinity",
        '"a"',
    ]
)


@st.composite
def hostile_update(draw: st.DrawFn) -> bytes:
    depth = draw(st.integers(0, 9))
    leaf = draw(hostile_fragment)
    value = '{"k":' * depth + leaf + "}" * depth
    section = draw(st.sampled_from(["desired", "reported", "delta"]))
    token = draw(st.sampled_from(["", ',"clientToken":"t"', ',"clientToken":' + leaf]))
    version = draw(st.sampled_from(["", ',"version":0', ',"version":' + leaf]))
    return ('{"state":{"' + section + '":{"a":' + value + "}}" + token + version + "}").encode()


SPEC_CODES = {400, 409, 413, 415}


@settings(max_examples=300, deadline=None)
@given(body=hostile_update())
def test_any_update_body_is_an_aws_error_or_answers_in_strict_utf8_json(body):
    """Every answer must be strict JSON (no NaN/Infinity) with a UTF-8 form; anything else
    is a ShadowError with a code from the spec's table, never another exception."""
    try:
        result = apply_update(None, parse_payload(body), NOW)
    except ShadowError as error:
        assert error.code in SPEC_CODES
        json.dumps(error.document(NOW), allow_nan=False, ensure_ascii=False).encode()
        return
    for doc in (result.accepted, result.delta, result.documents, get_document(result.shadow, NOW)):
        json.dumps(doc, allow_nan=False, ensure_ascii=False).encode()


BIG = "x" * 9000
DEEP = nest(6)


@pytest.mark.parametrize(
    ("request_doc", "stored_version", "expected"),
    [
        # Each request breaks two adjacent steps of section 5's order; the earlier one answers.
        ({"clientToken": 7}, None, (400, "Invalid clientToken")),
        ({"version": "x", "clientToken": "t"}, None, (400, "Missing required node: state")),
        ({"state": {"desired": 1}, "version": -1}, None, (400, "Desired node must be an object")),
        ({"state": {"desired": DEEP}, "version": 1.5}, None, (400, "Invalid version")),
        (
            {"state": {"desired": DEEP}, "version": 3},
            1,
            (400, "JSON contains too many levels of nesting; maximum is 6"),
        ),
        ({"state": {"desired": {"a": [None]}}, "version": 3}, 1, (400, "Invalid JSON")),
        ({"state": {"desired": {"a": BIG}}, "version": 3}, 1, (409, "Version conflict")),
        (
            {"state": {"desired": {"a": BIG}}, "version": 1},
            1,
            (413, "The payload exceeds the maximum size allowed"),
        ),
    ],
)
def test_validation_order_first_failure_wins(request_doc, stored_version, expected):
    stored = None if stored_version is None else Shadow({}, {}, stored_version)
    error = rejected(stored, request_doc)
    assert (error.code, error.message) == expected


@pytest.mark.parametrize(
    ("thing", "shadow", "message"),
    [
        ("t" * 128, None, None),
        ("t" * 129, None, "Invalid thing name"),
        ("", None, "Invalid thing name"),
        ("a:b_c-D9", "$x:y_z-9", None),
        ("$thing", None, "Invalid thing name"),
        ("pump", "s" * 64, None),
        ("pump", "s" * 65, "Invalid shadow name"),
        ("pump", "", "Invalid shadow name"),
        ("pümp", None, "Invalid thing name"),
        ("pump", "cfg\n", "Invalid shadow name"),
        ("pump", "a/b", "Invalid shadow name"),
    ],
)
def test_name_limits_at_and_over_the_bounds(thing, shadow, message):
    if message is None:
        validate_names(thing, shadow)
        return
    with pytest.raises(ShadowError) as caught:
        validate_names(thing, shadow)
    assert (caught.value.code, caught.value.message) == (400, message)


def test_client_token_limit_counts_utf8_bytes_not_characters():
    assert (
        apply_update(None, {"state": {}, "clientToken": "é" * 32}, NOW).accepted["clientToken"]
        == "é" * 32
    )
    assert rejected(None, {"state": {}, "clientToken": "é" * 33}).message == "Invalid clientToken"
    assert apply_update(None, {"state": {}, "clientToken": "x" * 64}, NOW).shadow.version == 1


@settings(max_examples=200, deadline=None)
@given(
    layout=st.permutations(["deep", "null", "plain"]),
    section=st.sampled_from(["desired", "reported"]),
    where=st.sampled_from(["top", "nested", "in_deep"]),
)
def test_an_array_holding_null_is_invalid_json_before_depth_whatever_the_key_order(
    layout, section, where
):
    """Section 5 order puts JSON before depth, and 4.3's Choice makes an array holding null
    400 ``Invalid JSON``: a request breaking both answers Invalid JSON, never depending on
    which key comes first (the token is echoed, as it is from the node checks on)."""
    deep = nest(7)
    if where == "in_deep":
        deep = {"a": {"b": {"c": {"d": {"e": {"f": {"g": [1, None]}}}}}}}
    values = {
        "deep": deep,
        "null": {"x": [[1, None]]} if where == "nested" else [None, "RED"],
        "plain": 1,
    }
    body = {key: values[key] for key in layout}
    error = rejected(None, {"state": {section: body}, "clientToken": "t"})
    assert (error.code, error.message, error.client_token) == (400, "Invalid JSON", "t")


@pytest.mark.parametrize(
    ("request_doc", "token"),
    [
        ({"state": {"desired": {"a": [None]}}, "clientToken": 7}, None),
        ({"state": {"desired": {"a": [None]}}, "clientToken": "x" * 65}, None),
        ({"state": {"desired": {"a": [None]}, "reported": 3}, "clientToken": "t"}, "t"),
        ({"state": {"reported": {"a": [None]}, "delta": {}}, "clientToken": "t"}, "t"),
        ({"state": {"desired": [None]}, "clientToken": "t"}, "t"),
        ({"state": [None], "clientToken": "t"}, "t"),
        ({"state": {"desired": {"a": [None]}}, "version": -1}, None),
        ({"state": {"reported": {"a": [{"b": None}]}}, "version": "7"}, None),
    ],
    ids=[
        "token-type",
        "token-length",
        "section-shape",
        "invalid-node",
        "section-is-the-array",
        "state-is-the-array",
        "version-negative",
        "version-string",
    ],
)
def test_an_array_holding_null_answers_at_the_json_step_before_every_later_check(
    request_doc, token
):
    """Section 5 order is UTF-8, JSON, clientToken, node shapes, version type...; 4.3's
    Choice makes a null in an array of the state 400 ``Invalid JSON``, so it wins over each
    later fault. A valid token is still echoed (the V2 client matches answers by token)."""
    error = rejected(Shadow({}, {}, 1), request_doc)
    assert (error.code, error.message, error.client_token) == (400, "Invalid JSON", token)


def nested_text(levels: int, leaf: str = "1", kind: str = "[") -> str:
    if kind == "[":
        return "[" * levels + leaf + "]" * levels
    return '{"k":' * levels + leaf + "}" * levels


DEEP_MESSAGE = "JSON contains too many levels of nesting; maximum is 6"


@pytest.mark.parametrize("levels", [1_000, 5_000, 20_000])
@pytest.mark.parametrize("kind", ["[", "{"])
def test_valid_json_nested_past_the_parsers_recursion_is_too_deep_not_invalid(levels, kind):
    """Section 5: a document nested past 6 levels is 400 ``...too many levels of nesting``
    (token echoed). Well-formed JSON nested deeper than Python's parser recurses (about
    1000 levels; a 128 KB payload holds 65,000) was answered ``Invalid JSON`` without the
    token, as if it were not JSON."""
    body = '{"clientToken":"t","state":{"desired":{"a":' + nested_text(levels, kind=kind) + "}}}"
    doc = parse_payload(body.encode())
    error = rejected(None, doc)
    assert (error.code, error.message, error.client_token) == (400, DEEP_MESSAGE, "t")


def _in_a_stack(frames: int, call: Any) -> Any:
    return call() if frames == 0 else _in_a_stack(frames - 1, call)


def _verdict(body: bytes) -> Any:
    try:
        return apply_update(None, parse_payload(body), NOW).accepted
    except ShadowError as error:
        return error.code, error.message, error.client_token


def _token_verdict(body: bytes) -> Any:
    try:
        return lenient_token(body)
    except ShadowError as error:
        return error.code, error.message


@pytest.mark.parametrize("levels", [960, 975, 985, 999])
def test_the_verdict_near_the_parsers_recursion_does_not_depend_on_the_callers_stack(levels):
    """Python's parser refuses about 1000 levels less the frames its caller uses: a
    request of 960 to 999 levels must get one answer from a shallow caller (a new thread)
    and from a deep one, too deep in the state, accepted in a key nobody reads."""
    from concurrent.futures import ThreadPoolExecutor

    bodies = [
        ('{"clientToken":"t","state":{"desired":{"a":' + nested_text(levels) + "}}}").encode(),
        (
            '{"clientToken":"\\u0074","other":'
            + nested_text(levels, "1.5", "{")
            + ',"state":{"reported":{"a":1}}}'
        ).encode(),
    ]
    expected = [
        (400, DEEP_MESSAGE, "t"),
        _verdict(b'{"clientToken":"t","state":{"reported":{"a":1}}}'),
    ]
    with ThreadPoolExecutor(1) as pool:
        for body, want in zip(bodies, expected, strict=True):
            assert pool.submit(_verdict, body).result() == want
            assert _in_a_stack(600, lambda b=body: _verdict(b)) == want
            assert pool.submit(_token_verdict, body).result() == "t"
            assert _in_a_stack(600, lambda b=body: _token_verdict(b)) == "t"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            '{"state":{"desired":{"a":' + nested_text(3_000) + '}},"version":"x"}',
            (400, "Invalid version", None),
        ),
        (
            '{"clientToken":"t","state":{"desired":{"a":' + nested_text(3_000, "null") + "}}}",
            (400, "Invalid JSON", "t"),
        ),
        (
            '{"clientToken":"t","state":{"desired":{"a":'
            + nested_text(3_000, '{"n":null}', "[")
            + "}}}",
            (400, "Invalid JSON", "t"),
        ),
        (
            '{"clientToken":"t","state":{"desired":{"a":' + nested_text(3_000, "null", "{") + "}}}",
            (400, DEEP_MESSAGE, "t"),
        ),
        (
            '{"clientToken":"t","other":' + nested_text(3_000) + ',"state":{"reported":{"a":1}}}',
            None,
        ),
    ],
    ids=[
        "version-type-before-depth",
        "null-in-deep-array",
        "null-in-object-in-deep-array",
        "null-in-deep-object-deletes",
        "deep-ignored-key",
    ],
)
def test_checks_before_depth_still_answer_first_in_a_deeply_nested_request(body, expected):
    doc = parse_payload(body.encode())
    if expected is None:
        assert apply_update(None, doc, NOW).shadow.state == {"reported": {"a": 1}}
        return
    error = rejected(None, doc)
    assert (error.code, error.message, error.client_token) == expected


@pytest.mark.parametrize(
    "body",
    [
        '{"state":{"desired":{"a":' + "[" * 3_000 + "1" + "]" * 2_999 + "}}}",
        '{"state":{"desired":{"a":' + "[" * 3_000 + "1," + "]" * 3_000 + "}}}",
        '{"state":{"desired":{"a":' + nested_text(3_000, "1e400") + "}}}",
        '{"state":{"desired":{"a":' + nested_text(3_000, '"\\ud800"') + "}}}",
        '{"state":{"desired":{"a":' + nested_text(3_000, "NaN") + "}}}",
        '{"state":{"desired":{"a":' + nested_text(3_000, '"\\x"') + "}}}",
        '{"state":{"desired":{"a":' + nested_text(3_000, '"a\tb"') + "}}}",
        '{"state":{"desired":{"a":' + nested_text(3_000, "01") + "}}}",
        '{"state":{"desired":{"a":' + nested_text(3_000, '{"k" 1}') + "}}}",
        '{"state":{"desired":{"a":' + nested_text(3_000) + "}}} x",
        "[" * 100_000,
    ],
    ids=[
        "unclosed",
        "trailing-comma",
        "number-beyond-double",
        "lone-surrogate",
        "nan",
        "bad-escape",
        "raw-tab",
        "leading-zero",
        "missing-colon",
        "trailing-garbage",
        "open-brackets",
    ],
)
def test_deeply_nested_text_that_is_not_json_stays_invalid_json(body):
    with pytest.raises(ShadowError) as caught:
        parse_payload(body.encode())
    assert (caught.value.code, caught.value.message, caught.value.client_token) == (
        400,
        "Invalid JSON",
        None,
    )


def test_a_get_body_nested_past_the_parsers_recursion_keeps_its_token():
    """2.2: only clientToken is read from a get/delete body and it must be echoed."""
    assert lenient_token(b'{"clientToken":"g","x":' + nested_text(5_000).encode() + b"}") == "g"
    assert lenient_token(b'{"clientToken":"g","x":' + b"[" * 5_000 + b"}") is None


json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=8,
)
json_text = st.builds(json.dumps, json_value, indent=st.sampled_from([None, 1]))


@st.composite
def json_like(draw: st.DrawFn) -> str:
    """Valid JSON, or valid JSON with one character inserted, deleted or replaced."""
    text = draw(json_text)
    edit = draw(st.sampled_from(["none", "insert", "delete", "replace"]))
    if edit == "none" or not text:
        return text
    at = draw(st.integers(0, len(text) - 1))
    char = draw(st.sampled_from(list('[]{},:"\\ 0-1.eEnultrfa\t\x01')))
    if edit == "insert":
        return text[:at] + char + text[at:]
    if edit == "delete":
        return text[:at] + text[at + 1 :]
    return text[:at] + char + text[at + 1 :]


@settings(max_examples=500, deadline=None)
@given(text=json_like())
def test_the_deep_reader_accepts_exactly_what_the_parser_accepts(text):
    """The recursion-free reader behind deep documents (cloud.shadow.document._cut_deep)
    must judge text as the JSON step does: on text shallow enough for both, it accepts
    exactly what ``parse_payload``'s parser accepts and changes nothing."""
    from cloud.shadow.document import _cut_deep, _loads_strict

    try:
        expected: Any = _loads_strict(text)
        if "\\u" in text:
            json.dumps(expected, ensure_ascii=False).encode()
    except ValueError:
        expected = ValueError
    try:
        cut = _cut_deep(text)
    except ValueError:
        assert expected is ValueError, text
        return
    assert expected is not ValueError, text
    assert cut == text


def test_an_update_whose_answer_would_pass_128_kb_is_413_and_stores_nothing():
    """Section 5: an MQTT payload is at most 128 KB, answers included. update/accepted
    echoes the request and times every leaf it sent, deletions too: 10,000 nulls in a
    127 KB request made a 460 KB answer, which the broker refuses by cutting the
    service's connection."""
    nulls = {f"k{i}": None for i in range(10_000)}
    body = json.dumps({"state": {"desired": nulls}, "clientToken": "n"}, separators=(",", ":"))
    assert len(body) <= MAX_PAYLOAD_BYTES
    stored = update(None, {"reported": {"a": 1}}).shadow
    error = rejected(stored, parse_payload(body.encode()))
    assert (error.code, error.message, error.client_token) == (
        413,
        "The payload exceeds the maximum size allowed",
        "n",
    )
    few = {f"k{i}": None for i in range(1_000)}
    assert update(stored, {"desired": few}).shadow.version == 2


def test_an_empty_object_is_stored_as_a_value_and_merges_into_an_object_as_a_no_op():
    """AWS stores "values, objects, and arrays" as sent, ``{}`` included (as Greengrass's
    ShadowManager does); only an object emptied by deletions goes (4.2 Choice)."""
    created = apply_update(None, {"state": {"desired": {"a": {}, "b": 1}}}, NOW)
    assert created.shadow.state == {"desired": {"a": {}, "b": 1}}
    assert created.shadow.metadata == {"desired": {"a": {}, "b": {"timestamp": NOW}}}
    assert created.accepted["metadata"] == {"desired": {"a": {}, "b": {"timestamp": NOW}}}
    assert created.delta is not None and created.delta["state"] == {"a": {}, "b": 1}
    # Any object reported at "a" meets an empty desired object there.
    met = apply_update(created.shadow, {"state": {"reported": {"a": {"x": 1}, "b": 1}}}, NOW + 1)
    assert met.delta is None
    # Sent again, it leaves the stored object as it was, and still counts a version.
    again = apply_update(met.shadow, {"state": {"reported": {"a": {}}}}, NOW + 2)
    assert again.shadow.state == met.shadow.state
    assert again.shadow.metadata == met.shadow.metadata
    assert again.shadow.version == met.shadow.version + 1


# Validation order (contract 5): JSON (an array holding null counts as invalid JSON),
# clientToken, node shapes, version type, depth, version match, size; the first failure
# answers, and from the node-shape check on a valid token is echoed.
DEEP = {"a": {"b": {"c": {"d": {"e": {"f": {"g": 1}}}}}}}
FAULTS: dict[str, tuple[str, Any]] = {
    "null_in_array": ("desired", {"x": [1, None]}),
    "token_type": ("clientToken", 7),
    "token_long": ("clientToken", "t" * 65),
    "no_state": ("state", None),
    "state_type": ("state", [1]),
    "section_type": ("reported", "on"),
    "extra_node": ("delta", {"x": 1}),
    "version_type": ("version", "3"),
    "version_negative": ("version", -1),
    "too_deep": ("desired", DEEP),
    "conflict": ("version", 5),
    "too_big": ("desired", {"big": "x" * (MAX_STATE_BYTES + 1)}),
}
ORDER = [
    ("null_in_array", "Invalid JSON", 400),
    ("token_type", "Invalid clientToken", 400),
    ("token_long", "Invalid clientToken", 400),
    ("no_state", "Missing required node: state", 400),
    ("state_type", "State node must be an object", 400),
    ("extra_node", "State contains an invalid node: 'delta'", 400),
    ("section_type", "Reported node must be an object", 400),
    ("version_type", "Invalid version", 400),
    ("version_negative", "Invalid version", 400),
    ("too_deep", "JSON contains too many levels of nesting; maximum is 6", 400),
    ("conflict", "Version conflict", 409),
    ("too_big", "The payload exceeds the maximum size allowed", 413),
]
_EXCLUSIVE = [
    {"token_type", "token_long"},
    {"no_state", "state_type"},
    {"version_type", "version_negative", "conflict"},
]


@settings(max_examples=300, deadline=None)
@given(faults=st.sets(st.sampled_from(sorted(FAULTS)), min_size=1, max_size=4))
def test_a_request_breaking_several_rules_gets_the_first_rule_s_error(faults):
    for group in _EXCLUSIVE:
        if len(faults & group) > 1:
            faults -= set(sorted(faults & group)[1:])
    if faults & {"no_state", "state_type"}:
        # Without a state object there is nothing to break inside it.
        faults -= {"null_in_array", "section_type", "extra_node", "too_deep", "too_big"}
    state: dict[str, Any] = {"desired": {"ok": 1}}
    request: dict[str, Any] = {"state": state, "clientToken": "tok"}
    for fault in faults:
        key, value = FAULTS[fault]
        if fault == "no_state":
            del request["state"]
        elif key in ("clientToken", "version", "state"):
            request[key] = value
        else:
            state[key] = {**state.get(key, {}), **value} if isinstance(value, dict) else value
    stored = apply_update(None, {"state": {"reported": {"r": 1}}}, NOW).shadow
    first = next(rule for rule in ORDER if rule[0] in faults)
    _fault, message, code = first
    with pytest.raises(ShadowError) as caught:
        apply_update(stored, request, NOW + 1)
    token_ok = not faults & {"token_type", "token_long"}
    assert (caught.value.code, caught.value.message) == (code, message), faults
    assert caught.value.client_token == ("tok" if token_ok else None), faults


def test_sections_are_answered_desired_then_reported_whichever_came_first():
    """Contract 3.1 and 3.4 show ``desired``, ``reported`` (then ``delta``) in that order;
    a shadow whose reported section was written first answers in the same order."""
    first = apply_update(None, {"state": {"reported": {"a": 1}}}, NOW)
    second = apply_update(first.shadow, {"state": {"desired": {"a": 2}}}, NOW + 1)
    current = second.documents["current"]
    assert list(current["state"]) == ["desired", "reported"]
    assert list(current["metadata"]) == ["desired", "reported"]
    got = get_document(second.shadow, NOW + 2)
    assert list(got["state"]) == ["desired", "reported", "delta"]
    assert list(got["metadata"]) == ["desired", "reported"]
    # A document stored in the other order (by an earlier release) is answered the same way.
    stored = Shadow(
        {"reported": {"a": 1}, "desired": {"a": 2}},
        {"reported": {"a": {"timestamp": NOW}}, "desired": {"a": {"timestamp": NOW}}},
        2,
    )
    got = get_document(stored, NOW + 2)
    assert list(got["state"]) == ["desired", "reported", "delta"]
    assert list(got["metadata"]) == ["desired", "reported"]
