"""mTLS as on IoT Core: CA, client certificate and key from config, against mosquitto.

mosquitto runs with a TLS listener that requires a client certificate signed by a test CA
(and a plain listener for the receiver). Needs the mosquitto and openssl binaries.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from edge_helpers import Receiver
from waiting import wait_until

from cloud.runtime.broker import free_port, mosquitto_path
from edge.agent import Agent, AgentConfig
from edge.clock import SystemClock
from edge.transport import TlsConfig
from edge.wire import Sample

pytestmark = [pytest.mark.mosquitto, pytest.mark.requires_tool("openssl")]


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_pki(d: Path) -> None:
    """A CA, a server certificate for 127.0.0.1, and two client certificates (one rogue)."""
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
            "-keyout", "ca.key", "-out", "ca.pem", cwd=d)  # fmt: skip
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name, ca in (("server", "ca"), ("device", "ca"), ("rogue", "rogue-ca")):
        if ca == "rogue-ca" and not (d / "rogue-ca.pem").exists():
            openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                    "/CN=rogue-ca", "-keyout", "rogue-ca.key", "-out", "rogue-ca.pem", cwd=d)  # fmt: skip
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
                "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=d)  # fmt: skip
        extra = ["-extfile", "san.ext"] if name == "server" else []
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
                "-CAcreateserial", "-days", "2", "-out", f"{name}.pem", *extra, cwd=d)  # fmt: skip


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, int, int]]:
    d = tmp_path_factory.mktemp("pki")
    make_pki(d)
    tls_port, plain_port = free_port(), free_port()
    # "user root": run as root, mosquitto would otherwise drop to a user that cannot read
    # the 0600 keys in pytest's 0700 temporary directory
    (d / "mosquitto.conf").write_text(
        f"user root\nper_listener_settings false\nallow_anonymous true\nlog_type error\n"
        f"listener {plain_port} 127.0.0.1\n"
        f"listener {tls_port} 127.0.0.1\ncafile {d / 'ca.pem'}\n"
        f"certfile {d / 'server.pem'}\nkeyfile {d / 'server.key'}\nrequire_certificate true\n"
    )
    proc = subprocess.Popen([str(mosquitto_path()), "-c", str(d / "mosquitto.conf")])
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", plain_port), timeout=0.2).close()
            break
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, "mosquitto did not start"
            time.sleep(0.05)
    try:
        yield d, tls_port, plain_port
    finally:
        proc.terminate()
        proc.wait(10)


def agent_for(d: Path, port: int, tmp_path: Path, cert: str, protocol: str) -> Agent:
    return Agent(
        AgentConfig(
            site="s",
            sender=f"dev-{cert}-{protocol.replace('.', '')}",
            broker_url=f"mqtts://127.0.0.1:{port}",
            queue_path=str(tmp_path / f"{cert}-{protocol}.db"),
            assets=("t1",),
            protocol=protocol,
            shadow=False,
            max_batch_delay_s=0.05,
            backoff_min_s=0.1,
            backoff_max_s=0.3,
            tls=TlsConfig(
                ca=str(d / "ca.pem"), cert=str(d / f"{cert}.pem"), key=str(d / f"{cert}.key")
            ),
        ),
        SystemClock(),
    )


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_mutual_tls_publishes_and_a_foreign_certificate_is_refused(
    tls_broker: tuple[Path, int, int], tmp_path: Path, protocol: str
) -> None:
    d, tls_port, plain_port = tls_broker
    receiver = Receiver("127.0.0.1", plain_port, client_id=f"rx-tls-{protocol}")
    good = agent_for(d, tls_port, tmp_path, "device", protocol)
    rogue = agent_for(d, tls_port, tmp_path, "rogue", protocol)
    good.start()
    rogue.start()
    try:
        samples = [Sample(1_700_000_000_000 + i, {"x": float(i)}) for i in range(30)]
        good.submit("t1", samples)
        rogue.submit("t1", [Sample(1_800_000_000_000, {"x": 1.0})])
        assert receiver.wait_for(30, 15)
        # the rogue's refusal is its own attempt, which a loaded machine can delay past the
        # good agent's 30 readings: wait for the error it records, not a fixed 0.5 s
        assert wait_until(lambda: rogue.status()["last_error"], 15), rogue.status()
        assert good.status()["protocol"] == protocol
        assert rogue.status()["connected"] is False and rogue.status()["queue_depth"] == 1
        assert ("t1", 1_800_000_000_000) not in receiver.readings
    finally:
        good.stop(timeout=2)
        rogue.stop(flush=False)
        receiver.close()
