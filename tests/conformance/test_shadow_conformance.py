"""One set of Device Shadow cases, run against the local service and against moto's iot-data.

Expected values follow AWS's documentation (see ``docs/`` links in the shadow spec); where
moto differs, the case carries ``@moto_deviation`` and ``DEVIATIONS.md`` lists it.
"""

from __future__ import annotations

from typing import Any

from shadow_backends import Backend, moto_deviation


def desired(doc: dict[str, Any]) -> Any:
    return doc["state"].get("desired")


def test_first_update_creates_version_1_and_echoes_the_request(backend: Backend):
    thing = backend.new_thing()
    out = backend.update(thing, {"state": {"desired": {"mode": "safe", "fan": {"speed": 2}}}})
    assert out.code == 200
    assert out.doc["version"] == 1
    assert out.doc["state"] == {"desired": {"mode": "safe", "fan": {"speed": 2}}}
    ts = out.doc["timestamp"]
    assert isinstance(ts, int)
    assert out.doc["metadata"] == {
        "desired": {"mode": {"timestamp": ts}, "fan": {"speed": {"timestamp": ts}}}
    }


def test_get_shows_the_delta_of_a_shadow_with_nothing_reported(backend: Backend):
    thing = backend.new_thing()
    backend.update(thing, {"state": {"desired": {"mode": "safe"}}})
    out = backend.get(thing)
    assert out.code == 200
    assert out.doc["state"] == {"desired": {"mode": "safe"}, "delta": {"mode": "safe"}}
    assert out.doc["version"] == 1


def test_reported_equal_to_desired_clears_the_delta(backend: Backend):
    thing = backend.new_thing()
    backend.update(thing, {"state": {"desired": {"mode": "safe", "rate": 5}}})
    backend.update(thing, {"state": {"reported": {"mode": "safe", "rate": 5}}})
    out = backend.get(thing)
    assert "delta" not in out.doc["state"]
    assert out.doc["version"] == 2


def test_updates_deep_merge_and_keep_unmentioned_keys(backend: Backend):
    thing = backend.new_thing()
    backend.update(thing, {"state": {"desired": {"color": {"r": 255, "g": 255}, "mode": "eco"}}})
    backend.update(thing, {"state": {"desired": {"color": {"r": 10}}}})
    assert desired(backend.get(thing).doc) == {"color": {"r": 10, "g": 255}, "mode": "eco"}


def test_null_deletes_a_field_and_its_metadata(backend: Backend):
    thing = backend.new_thing()
    backend.update(thing, {"state": {"desired": {"engine": "on", "mode": "eco"}}})
    backend.update(thing, {"state": {"desired": {"engine": None}}})
    doc = backend.get(thing).doc
    assert desired(doc) == {"mode": "eco"}
    assert set(doc["metadata"]["desired"]) == {"mode"}


def test_nested_delta_keeps_the_path_from_the_root(backend: Backend):
    thing = backend.new_thing()
    backend.update(
        thing,
        {
            "state": {
                "desired": {"lights": {"color": {"r": 255, "g": 255}}},
                "reported": {"lights": {"color": {"r": 255, "g": 0}}},
            }
        },
    )
    assert backend.get(thing).doc["state"]["delta"] == {"lights": {"color": {"g": 255}}}


@moto_deviation(
    "an object whose desired keys all match but whose reported side has extra keys yields an "
    "empty {} entry in the delta (found here; moto#7695 and #8408 are its other delta bugs); "
    "AWS includes a key only if its "
    "nested delta is non-empty"
)
def test_matching_nested_object_with_extra_reported_keys_has_no_delta(backend: Backend):
    thing = backend.new_thing()
    backend.update(
        thing,
        {
            "state": {
                "desired": {"fan": {"speed": 2}, "mode": "eco"},
                "reported": {"fan": {"speed": 2, "rpm": 1800}, "mode": "off"},
            }
        },
    )
    assert backend.get(thing).doc["state"]["delta"] == {"mode": "eco"}


def test_arrays_are_compared_and_replaced_whole(backend: Backend):
    thing = backend.new_thing()
    backend.update(
        thing, {"state": {"desired": {"order": [1, 2, 3]}, "reported": {"order": [1, 2, 3]}}}
    )
    assert "delta" not in backend.get(thing).doc["state"]
    backend.update(thing, {"state": {"reported": {"order": [3, 2]}}})
    doc = backend.get(thing).doc
    assert doc["state"]["delta"] == {"order": [1, 2, 3]}
    assert doc["state"]["reported"] == {"order": [3, 2]}


@moto_deviation("moto compares with Python ==, so JSON true equals 1 and no delta appears")
def test_a_boolean_never_equals_a_number(backend: Backend):
    thing = backend.new_thing()
    backend.update(thing, {"state": {"desired": {"on": True}, "reported": {"on": 1}}})
    assert backend.get(thing).doc["state"]["delta"] == {"on": True}


def test_matching_version_is_applied_and_stale_version_is_409(backend: Backend):
    thing = backend.new_thing()
    backend.update(thing, {"state": {"desired": {"a": 1}}})
    ok = backend.update(thing, {"state": {"desired": {"a": 2}}, "version": 1})
    assert (ok.code, ok.doc["version"]) == (200, 2)
    stale = backend.update(thing, {"state": {"desired": {"a": 3}}, "version": 1})
    assert stale.code == 409
    assert stale.doc["message"] == "Version conflict"
    assert desired(backend.get(thing).doc) == {"a": 2}


def test_get_of_a_missing_shadow_is_404(backend: Backend):
    thing = backend.new_thing()
    assert backend.get(thing).code == 404
    assert backend.delete(thing).code == 404


@moto_deviation(
    "moto's 404 message is 'The specified resource does not exist'; AWS names the shadow"
)
def test_404_names_the_shadow(backend: Backend):
    thing = backend.new_thing()
    assert backend.get(thing).doc["message"] == f"No shadow exists with name: '{thing}'"


@moto_deviation("moto increments the version on delete; AWS returns the deleted document's version")
def test_delete_returns_the_last_version_and_get_is_404_after(backend: Backend):
    thing = backend.new_thing()
    backend.update(thing, {"state": {"desired": {"a": 1}}})
    backend.update(thing, {"state": {"desired": {"a": 2}}})
    out = backend.delete(thing)
    assert (out.code, out.doc["version"]) == (200, 2)
    assert backend.get(thing).code == 404


@moto_deviation("moto counts its delete as a version, so the re-created shadow skips one")
def test_recreated_shadow_continues_its_version(backend: Backend):
    thing = backend.new_thing()
    for i in range(3):
        backend.update(thing, {"state": {"reported": {"i": i}}})
    backend.delete(thing)
    out = backend.update(thing, {"state": {"reported": {"i": 9}}})
    assert out.doc["version"] == 4
    assert backend.get(thing).doc["state"] == {"reported": {"i": 9}}


@moto_deviation('moto skips a section sent as null instead of deleting it ("desired": null)')
def test_section_null_deletes_the_whole_section(backend: Backend):
    thing = backend.new_thing()
    backend.update(thing, {"state": {"desired": {"a": 1}, "reported": {"a": 0}}})
    backend.update(thing, {"state": {"desired": None}})
    doc = backend.get(thing).doc
    assert doc["state"] == {"reported": {"a": 0}}
    assert set(doc["metadata"]) == {"reported"}


def test_state_null_clears_everything_but_keeps_the_shadow(backend: Backend):
    thing = backend.new_thing()
    backend.update(thing, {"state": {"desired": {"a": 1}, "reported": {"b": 2}}})
    out = backend.update(thing, {"state": None})
    assert out.code == 200 and out.doc["version"] == 2
    doc = backend.get(thing)
    assert doc.code == 200
    assert doc.doc["state"] == {}


@moto_deviation("moto re-stamps every leaf on each update; AWS keeps each field's own timestamp")
def test_metadata_timestamps_are_per_field(backend: Backend):
    thing = backend.new_thing()
    first = backend.update(thing, {"state": {"reported": {"a": 1}}}).doc["timestamp"]
    backend.advance(1)
    second = backend.update(thing, {"state": {"reported": {"b": 2}}}).doc["timestamp"]
    assert second > first
    meta = backend.get(thing).doc["metadata"]["reported"]
    assert meta == {"a": {"timestamp": first}, "b": {"timestamp": second}}


def test_named_shadows_are_separate_documents(backend: Backend):
    thing = backend.new_thing()
    backend.update(thing, {"state": {"desired": {"classic": 1}}})
    out = backend.update(thing, {"state": {"desired": {"named": 1}}}, shadow="config")
    assert out.doc["version"] == 1
    assert desired(backend.get(thing, shadow="config").doc) == {"named": 1}
    assert desired(backend.get(thing).doc) == {"classic": 1}
    assert backend.get(thing, shadow="missing").code == 404


def test_bad_requests_are_400(backend: Backend):
    thing = backend.new_thing()
    for payload in (
        b"{not json",
        {"clientToken": "x"},
        {"state": "on"},
        {"state": {"delta": {"a": 1}}},
    ):
        assert backend.update(thing, payload).code == 400, payload
    assert backend.get(thing).code == 404


@moto_deviation("moto's error messages are its own (e.g. 'need node `state`')")
def test_400_messages_are_aws_texts(backend: Backend):
    thing = backend.new_thing()
    cases = {
        b"{not json": "Invalid JSON",
        b'{"desired": {}}': "Missing required node: state",
        b'{"state": 1}': "State node must be an object",
        b'{"state": {"delta": {}}}': "State contains an invalid node: 'delta'",
    }
    for payload, message in cases.items():
        assert backend.update(thing, payload).doc["message"] == message


@moto_deviation("moto enforces no shadow size limit")
def test_state_over_8_kb_is_413_and_nothing_is_stored(backend: Backend):
    thing = backend.new_thing()
    backend.update(thing, {"state": {"reported": {"blob": "x" * 6000}}})
    out = backend.update(thing, {"state": {"desired": {"blob": "y" * 3000}}})
    assert out.code == 413
    assert out.doc["message"] == "The payload exceeds the maximum size allowed"
    doc = backend.get(thing).doc
    assert doc["version"] == 1 and "desired" not in doc["state"]


@moto_deviation("moto enforces no nesting-depth limit")
def test_nesting_deeper_than_6_levels_is_400(backend: Backend):
    thing = backend.new_thing()
    ok: dict[str, Any] = {"f": 1}
    for key in "edcba":
        ok = {key: ok}
    assert backend.update(thing, {"state": {"desired": ok}}).code == 200
    too_deep = {"a": {"b": {"c": {"d": {"e": {"f": {"g": 1}}}}}}}
    out = backend.update(thing, {"state": {"desired": too_deep}})
    assert out.code == 400
    assert out.doc["message"] == "JSON contains too many levels of nesting; maximum is 6"
    assert backend.get(thing).doc["version"] == 1


@moto_deviation("moto crashes (AttributeError) when a version is sent for a missing shadow")
def test_version_0_creates_a_shadow_that_never_existed(backend: Backend):
    thing = backend.new_thing()
    assert backend.update(thing, {"state": {"reported": {"a": 1}}, "version": 3}).code == 409
    assert backend.update(thing, {"state": {"reported": {"a": 1}}, "version": 0}).code == 200


def test_null_for_a_key_never_set_stores_nothing(backend: Backend):
    thing = backend.new_thing()
    backend.update(thing, {"state": {"desired": {"a": 1}}})
    backend.update(thing, {"state": {"desired": {"ghost": None}}})
    assert desired(backend.get(thing).doc) == {"a": 1}
