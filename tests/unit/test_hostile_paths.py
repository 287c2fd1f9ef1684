"""Hostile paths at the CLI: a line break in a file name, a folder where a file is
expected, an output file that can only be written at the end.

Before, an error naming a path with a line break in it (or an argument holding one) was
two stderr lines, breaking the one-line error convention for every command; a folder given
as a document (rules, config, detector messages) was named by its file descriptor
(``[Errno 21] Is a directory: 3``, or only ``3: Is a directory``); and `sim fleet
--labels-out FOLDER` ran the whole simulation before failing on the write.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path

import pytest

from cloud.cli import imports, model, output
from cloud.cli.main import main
from edge.cli import main as edge_main
from edge.user_files import read_document_bytes

MODELS = Path(__file__).resolve().parents[2] / "cloud" / "detectors" / "models"


@pytest.fixture(autouse=True)
def _no_progress_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    """The refusals here are one line on stderr; on a loaded machine ``model train`` and
    ``import l4e`` can pass the 2 s after which piped progress starts before they refuse
    (``model train``: reading the dataset is its first stage)."""
    quiet = functools.partial(output.progress, after_s=3600)
    for module in (output, model, imports):
        monkeypatch.setattr(module, "progress", quiet)


def _err_lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


@pytest.mark.parametrize(
    "argv",
    [
        ["rules", "check", "{path}"],
        ["detectors", "validate", "{path}"],
        ["alarms", "validate", "{path}"],
        ["model", "train", "--name", "m", "--dataset", "{path}", "--data", "{tmp}/d"],
        ["import", "l4e", "--input", "{path}", "--data", "{tmp}/d"],
        ["query", "select 1", "--data", "{path}"],
        ["sim", "replay", "--dataset", "{path}", "--broker", "mqtt://127.0.0.1:1"],
    ],
    ids=lambda argv: " ".join(argv[:2]),
)
@pytest.mark.parametrize("exists", [True, False], ids=["garbage", "missing"])
def test_a_path_with_a_line_break_gives_one_error_line(
    argv: list[str], exists: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad\nname.json"
    if exists:
        path.write_text("garbage{")
    assert main([a.format(path=path, tmp=tmp_path) for a in argv]) == 2
    err = _err_lines(capsys)
    assert len(err) == 1, err
    assert err[0].startswith("plantwatch: error: ") and "bad\\nname.json" in err[0]


def test_an_argument_with_a_line_break_gives_one_usage_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["sim", "history", "--days", "1\n2"]) == 2
    err = _err_lines(capsys)
    assert len(err) == 1 and "1\\n2" in err[0], err


def test_the_edge_agent_cli_keeps_its_errors_on_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "agent\n.toml"
    path.write_text("[agent\n")
    assert edge_main(["status", "--config", str(path)]) == 2
    err = _err_lines(capsys)
    assert len(err) == 1 and err[0].startswith("plantwatch-edge: error: "), err


def test_a_folder_read_as_a_document_is_named_by_its_path(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError) as caught:
        read_document_bytes(tmp_path)
    assert caught.value.filename == str(tmp_path)


def test_detector_messages_that_are_a_folder_name_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["detectors", "run", str(MODELS / "equipment_anomaly.json")]
    argv += ["--input", str(MODELS / "anomaly_results_input.json"), "--messages", str(tmp_path)]
    assert main(argv) == 2
    err = _err_lines(capsys)
    assert len(err) == 1 and str(tmp_path) in err[0] and "Is a directory" in err[0], err


@pytest.mark.parametrize("kind", ["folder", "under_a_file"])
def test_sim_fleet_refuses_a_labels_file_it_cannot_write_before_running(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import simulator.runner

    def refuse(*_args: object, **_kwargs: object) -> int:
        raise AssertionError("the fleet ran")

    monkeypatch.setattr(simulator.runner, "run", refuse)
    if kind == "folder":
        out = tmp_path
    else:
        (tmp_path / "file").write_text("x")
        out = tmp_path / "file" / "labels.csv"
    argv = ["sim", "fleet", "--duration", "1s", "--broker", "mqtt://127.0.0.1:1"]
    assert main([*argv, "--labels-out", str(out)]) == 2
    err = _err_lines(capsys)
    assert len(err) == 1 and err[0].startswith(f"plantwatch: error: --labels-out {out}"), err
    assert os.listdir(tmp_path) in ([], ["file"])


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"channel": "email"}\n\xff\xfe{}\n', r"alerts\.jsonl:2: not UTF-8 text \(byte 0\)"),
        (b"[" * 100_000 + b"\n", r"alerts\.jsonl:1: not an outbox record \(nested too deeply\)"),
        (b"1" * 5000 + b"\n", r"alerts\.jsonl:1: not an outbox record \(a number with too many"),
    ],
    ids=["not_utf8", "deep", "many_digits"],
)
def test_alarms_sent_with_a_damaged_outbox_names_the_line(
    body: bytes, reason: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A damaged DIR/alerts.jsonl was an internal error (UnicodeDecodeError, ValueError,
    RecursionError), exit 1."""
    (tmp_path / "alerts.jsonl").write_bytes(body)
    assert main(["alarms", "sent", "--data", str(tmp_path)]) == 2
    err = _err_lines(capsys)
    assert len(err) == 1 and "internal error" not in err[0], err
    assert re.search(reason, err[0]), err


SYSFS = Path("/sys/plantwatch-data-test")  # sysfs refuses new files and folders, even to root


@pytest.mark.skipif(not Path("/sys/kernel").is_dir() or SYSFS.exists(), reason="needs sysfs")
@pytest.mark.parametrize("command", ["model train", "import l4e"])
def test_a_data_folder_nobody_may_write_is_refused_before_the_work(
    command: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Its name passed the check, so the dataset was read and the model trained before the
    first write failed."""
    import cloud.inference.train_job
    import cloud.migrate.l4e

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the work started")

    monkeypatch.setattr(cloud.inference.train_job, "run_train_job", refuse)
    monkeypatch.setattr(cloud.migrate.l4e.L4EImporter, "run", refuse)
    (tmp_path / "pump").mkdir()
    (tmp_path / "pump" / "a.csv").write_text("Timestamp,a\n2026-01-01T00:00:00,1\n")
    if command == "model train":
        argv = ["model", "train", "--name", "m", "--dataset", str(tmp_path)]
    else:
        argv = ["import", "l4e", "--input", str(tmp_path)]
    assert main([*argv, "--data", str(SYSFS)]) == 2
    err = _err_lines(capsys)
    assert len(err) == 1 and err[0].startswith(
        f"plantwatch: error: --data {SYSFS}: cannot write in /sys ("
    ), err


@pytest.mark.skipif(not Path("/sys/kernel").is_dir() or SYSFS.exists(), reason="needs sysfs")
def test_sim_writers_refuse_a_place_nobody_may_write_before_the_work(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`sim history --out /sys/x` said the disk had 0.0 GB free; `sim fleet --labels-out
    /sys/x/l.csv` failed only after the run."""
    import simulator.runner

    def refuse(*_args: object, **_kwargs: object) -> int:
        raise AssertionError("the fleet ran")

    monkeypatch.setattr(simulator.runner, "run", refuse)
    assert main(["sim", "history", "--days", "1", "--out", str(SYSFS)]) == 2
    err = _err_lines(capsys)
    assert len(err) == 1 and err[0].startswith(
        f"plantwatch: error: --out {SYSFS}: cannot write in /sys ("
    ), err
    labels = SYSFS / "labels.csv"
    argv = ["sim", "fleet", "--duration", "1s", "--broker", "mqtt://127.0.0.1:1"]
    assert main([*argv, "--labels-out", str(labels)]) == 2
    err = _err_lines(capsys)
    assert len(err) == 1 and err[0].startswith(
        f"plantwatch: error: --labels-out {labels}: cannot write in /sys ("
    ), err
