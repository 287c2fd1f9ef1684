"""Credentials in ``sim fleet --broker`` when the edge agent publishes.

The agent takes credentials from its ``[auth]`` settings only, so the simulator, which builds
agents from the URL, dropped ``USER:PASSWORD@`` without a word and connected anonymously. It
refuses such a URL on the agent route now, as the agent's own configuration does, and never
echoes the password; ``--direct`` (paho) still uses them.
"""

from __future__ import annotations

import pytest

from cloud.cli import status
from cloud.cli.main import main

SECRET = "s3cret-pw"


def test_agent_route_refuses_credentials_in_the_url(
    broker, tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"mqtt://dev:{SECRET}@{broker.host}:{broker.port}"
    argv = ["sim", "fleet", "--assets", "1", "--duration", "20s", "--speed", "600"]
    code = main([*argv, "--queue-dir", str(tmp_path / "q"), "--broker", url])
    out, err = capsys.readouterr()
    assert code == status.BAD_INPUT
    assert "--broker" in err
    assert "credentials in the URL are not used" in err
    assert f"***@{broker.host}:{broker.port}" in err
    assert "--direct" in err
    assert SECRET not in out + err
    assert not (tmp_path / "q").exists()  # refused before any agent started


def test_agent_route_without_credentials_still_runs(broker, tmp_path) -> None:
    argv = ["sim", "fleet", "--assets", "1", "--duration", "20s", "--speed", "600"]
    url = f"mqtt://{broker.host}:{broker.port}"
    assert main([*argv, "--queue-dir", str(tmp_path / "q"), "--broker", url]) == 0
