"""What the agent says to do about a CONNACK refusing it: the reason's own remedy."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.connack import refusal_advice, refusal_advice_311


@pytest.mark.parametrize(
    ("code", "advice"),
    [
        (1, "[agent].protocol"),
        (2, "[agent].sender 'gw-1'"),
        (3, "keeps trying"),
        (4, "[auth] username and password"),
        (5, "iot:Connect on client/gw-1"),
    ],
)
def test_an_mqtt_3_1_1_return_code_gets_the_advice_of_its_reason(code: int, advice: str) -> None:
    assert advice in refusal_advice_311(code, "gw-1")


def test_a_redirection_names_the_server_the_broker_gave_on_one_line() -> None:
    said = refusal_advice(0x9C, "gw-1", "other.example:8883\nnext line")
    assert "(other.example:8883 next line)" in said and "[agent].broker" in said
    assert "\n" not in said


@given(
    st.integers(0, 255),
    st.from_regex(r"[A-Za-z0-9_{}-]{1,128}", fullmatch=True),
    st.one_of(st.none(), st.text(max_size=300)),
)
def test_any_code_client_id_and_server_give_one_line_of_advice(
    code: int, client_id: str, server: str | None
) -> None:
    """A reason the table does not know, or a client id or server reference with braces or
    line breaks, still gives one line of advice, never a format error."""
    said = refusal_advice(code, client_id, server)
    assert said and "\n" not in said and "\r" not in said
