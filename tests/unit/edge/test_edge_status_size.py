"""The agent's status document must stay within what the status topic takes (8 KB, at most
1000 assets): the cloud's device-status monitor refuses a larger one, and the agent then
never shows as online. A long error text is shortened to fit; a gateway whose asset names
alone would not fit is refused when its config loads."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from edge.config import load_config
from edge.errors import ConfigError
from edge.wire import MAX_STATUS_BYTES, DeviceStatus, decode_status, encode_status

GATEWAY = tuple(f"{i:02d}" + "a" * 118 for i in range(25))
"""25 assets of 120 characters: about 3 KB of the status document."""


@given(error=st.text(max_size=2000))
@example(error="\U0001f600" * 500)
@example(error="\x00" * 500)
@example(error="é" * 2000)
def test_any_last_error_leaves_the_status_document_within_the_limit(error: str) -> None:
    """GIVEN a gateway whose names take a good part of the document, and any error text
    (JSON writes a character outside ASCII as up to 12 bytes, a control one as 6)
    THEN the document fits and decodes, with the start of the error kept."""
    status = DeviceStatus(
        site="s" * 100,
        sender="g" * 100,
        state="online",
        interval_s=5.0,
        assets=GATEWAY,
        agent_version="0.1.0",
        protocol="3.1.1",
        queue_depth=2**63 - 1,
        queue_bytes=2**63 - 1,
        sent=2**63 - 1,
        dropped=2**63 - 1,
        refused=2**63 - 1,
        connects=2**63 - 1,
        oldest_age_s=1e18,
        last_error=error,
        ts_ms=7_258_118_399_999,
    )
    payload = encode_status(status)
    assert len(payload) <= MAX_STATUS_BYTES
    decoded = decode_status(payload, status.topic)
    assert decoded.assets == GATEWAY
    kept = decoded.last_error or ""
    assert error.startswith(kept) and (len(kept) >= min(len(error), 100))


def agent_toml(tmp_path: Path, assets: list[str]) -> Path:
    names = ", ".join(f'"{a}"' for a in assets)
    path = tmp_path / "agent.toml"
    path.write_text(
        f'[agent]\nsite = "s1"\nsender = "gw"\nbroker = "mqtt://127.0.0.1:1883"\n'
        f'assets = [{names}]\nqueue = "q.db"\n'
    )
    return path


@pytest.mark.parametrize(
    "assets",
    [
        [f"{i:03d}" + "p" * 125 for i in range(64)],  # 64 x 128 characters
        [f"a{i}" for i in range(1001)],  # more than the 1000 a status document may list
    ],
    ids=["long-names", "many-names"],
)
def test_a_gateway_whose_status_document_cannot_fit_is_refused_at_load(
    tmp_path: Path, assets: list[str]
) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(agent_toml(tmp_path, assets))
    message = str(info.value)
    assert "[agent].assets: " in message and "status" in message


def test_a_large_gateway_whose_status_document_fits_loads(tmp_path: Path) -> None:
    assets = [f"{i:03d}" + "p" * 125 for i in range(40)]
    config, _sources, _shutdown = load_config(agent_toml(tmp_path, assets))
    assert len(config.assets) == 40
