"""A password in a broker URL stays out of what the commands print.

``plantwatch sim fleet --broker mqtt://USER:PASSWORD@HOST:PORT`` printed the URL as given
on its start and end lines (stderr, often a log), password included; ``rules run`` did
the same on its subscribed line. They print it with the password as ``***`` now.
"""

from __future__ import annotations

import pytest

from cloud.cli.main import main

SECRET = "s3cret-pw"


def test_sim_fleet_does_not_print_the_password(broker, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"mqtt://dev:{SECRET}@{broker.host}:{broker.port}"
    argv = ["sim", "fleet", "--direct", "--assets", "1", "--duration", "20s", "--speed", "600"]
    assert main([*argv, "--broker", url]) == 0
    out, err = capsys.readouterr()
    assert f"dev:***@{broker.host}:{broker.port}" in err
    assert SECRET not in out + err
