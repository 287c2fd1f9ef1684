"""Bad files given to commands that start things: refused before anything starts.

Before, `plantwatch up --detector-model BAD` created the data folder and started the
broker, shadow service and ingest, and only then loaded the model (seconds later, exit 2),
and `provision-device --ca FILE` checked only that the file existed, so a wrong file was
found when the device first failed to connect, after the thing and its certificate had
been created in AWS.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cloud.cli.main import main
from cloud.runtime import stack


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("plantwatch: error: ") and "internal error" not in err[0]
    return err[0]


@pytest.fixture
def nothing_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the stack was started")

    monkeypatch.setattr(stack.LocalStack, "start", refuse)


@pytest.mark.parametrize(
    ("option", "body", "expected"),
    [
        ("--detector-model", '{"bad": 1}', r"unknown field"),
        # not after a byte order mark (\xff\xfe is UTF-16's, and is read as UTF-16)
        ("--detector-model", b"{\xff\xfe}", r"not UTF-8"),
        ("--alarm-model", "[]", r"bad\.json"),
        ("--detector-input", "{", r"bad\.json"),
    ],
)
def test_up_refuses_a_bad_model_file_before_anything_starts(
    option: str,
    body: str | bytes,
    expected: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    nothing_starts: None,
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_bytes(body if isinstance(body, bytes) else body.encode())
    data = tmp_path / "data"
    argv = ["up", "--port", "0", "--no-dashboard", "--data", str(data), option, str(bad)]
    if option != "--detector-model":
        argv += ["--model", "m"]  # a model brings the shipped detector; the bad file is extra
    assert main(argv) == 2
    line = _one_error_line(capsys)
    assert re.search(expected, line), line
    assert not data.exists()  # nothing was created either


def test_up_refuses_a_model_that_is_not_trained_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], nothing_starts: None
) -> None:
    data = tmp_path / "data"
    assert main(["up", "--port", "0", "--no-dashboard", "--data", str(data), "--model", "m"]) == 2
    assert "model 'm': not found" in _one_error_line(capsys)
    assert not data.exists()


# ---- provision-device --ca ---------------------------------------------------------------


@pytest.fixture
def no_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("AWS was called")

    monkeypatch.setattr(boto3, "client", refuse)


def _ca(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / "ca.pem"
    if kind == "json":
        path.write_text(json.dumps({"not": "a certificate"}))
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "binary":
        path.write_bytes(bytes(range(256)))
    elif kind == "private_key":
        path.write_text(
            "-----BEGIN PRIVATE KEY-----\nMIIBVQIBADANBg==\n-----END PRIVATE KEY-----\n"
        )
    elif kind == "corrupt":
        path.write_text(
            "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n"
        )
    elif kind == "directory":
        path.mkdir()
    elif kind == "dev_zero":
        path.symlink_to("/dev/zero")
    return path


@pytest.mark.parametrize(
    "kind", ["json", "empty", "binary", "private_key", "corrupt", "directory", "dev_zero"]
)
def test_provision_refuses_a_ca_that_is_no_pem_certificate_before_calling_aws(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], no_aws: None
) -> None:
    ca = _ca(tmp_path, kind)
    argv = ["provision-device", "t1", "--site", "s1", "--out", str(tmp_path / "out")]
    assert main([*argv, "--ca", str(ca), "--region", "eu-west-1"]) == 2
    assert _one_error_line(capsys).startswith(f"plantwatch: error: --ca {ca}: ")
    assert not (tmp_path / "out").exists()


def test_a_real_pem_certificate_passes_the_ca_check(tmp_path: Path) -> None:
    x509 = pytest.importorskip("cryptography.x509")
    from datetime import UTC, datetime, timedelta

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    from cloud.cli.provision import check_ca_file

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test root")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path = tmp_path / "AmazonRootCA1.pem"
    path.write_bytes(
        b"# a comment line, as bundles have\n" + cert.public_bytes(serialization.Encoding.PEM)
    )
    check_ca_file(path)  # no error


UNWRITABLE = Path("/sys/plantwatch-provision-test")  # sysfs refuses a new folder, even to root


@pytest.mark.skipif(
    not Path("/sys/kernel").is_dir() or UNWRITABLE.exists(), reason="needs Linux sysfs"
)
def test_provision_refuses_an_out_folder_it_cannot_write_before_calling_aws(
    capsys: pytest.CaptureFixture[str], no_aws: None
) -> None:
    """The folder's name passed the check, so AWS made the thing and a certificate whose
    private key then could not be written anywhere."""
    argv = ["provision-device", "t1", "--site", "s1", "--out", str(UNWRITABLE)]
    assert main([*argv, "--region", "eu-west-1"]) == 2
    assert _one_error_line(capsys).startswith(
        f"plantwatch: error: --out {UNWRITABLE}: cannot write in /sys ("
    )


def test_a_failed_provision_leaves_no_empty_out_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import boto3
    from botocore.exceptions import NoRegionError

    def no_region(*_args: object, **_kwargs: object) -> None:
        raise NoRegionError

    monkeypatch.setattr(boto3, "client", no_region)
    out = tmp_path / "new" / "device"
    assert main(["provision-device", "t1", "--site", "s1", "--out", str(out)]) == 2
    assert "--region" in _one_error_line(capsys)
    assert list(tmp_path.iterdir()) == []


def test_up_refuses_two_alarm_model_files_of_one_name_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], nothing_starts: None
) -> None:
    # the second engine would have deleted the first's instances as an UpdateAlarmModel
    # and taken its place: one of the two models silently not run
    shipped = Path("cloud/detectors/models/anomaly_score_alarm.json")
    body = json.loads(shipped.read_text())
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text(json.dumps(body))
    body["severity"] = 9
    second.write_text(json.dumps(body))
    data = tmp_path / "data"
    argv = ["up", "--port", "0", "--no-dashboard", "--data", str(data), "--model", "m"]
    argv += ["--alarm-model", str(first), "--alarm-model", str(second)]
    assert main(argv) == 2
    line = _one_error_line(capsys)
    assert "b.json" in line and "a.json" in line and body["alarmModelName"] in line, line
    assert not data.exists()
