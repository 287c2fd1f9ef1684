"""Hostile files where a command reads a document: exit 2 and one line naming the file.

Each command that reads a rules, model, input, alarm, messages, scenario or agent-config
file gets what a careless or hostile user could hand it: bytes that are not UTF-8, an
integer of thousands of digits (Python's int-from-text limit raises a bare ValueError),
nesting deeper than the interpreter's stack, a named pipe nobody writes to (``open``
used to wait forever) and ``/dev/zero`` (``read_text`` used to read until memory ran
out). The answer is always exit 2 with one ``plantwatch: error:`` line naming the file,
never a traceback or an "internal error".
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud.cli.main import main
from cloud.detectors.alarms.model import load_alarm_model
from cloud.detectors.model import load_detector_model, load_input
from cloud.rules.definitions import load_rules
from edge import cli as edge_cli
from edge.config import load_config
from edge.errors import UserError
from edge.user_files import DocumentTooLargeError, read_document_bytes
from simulator.scenario import load_scenario

DATA = Path(__file__).parent / "detectors" / "data"
MODEL = DATA / "motor_heartbeat.json"
INPUT = DATA / "pressure_input.json"
ALARM = DATA / "alarms" / "boiler_high.json"
ALARM_INPUT = DATA / "alarms" / "boiler_input.json"
MESSAGE = b'{"inputName": "PressureInput", "payload": {"motorid": "m1"}}\n'

Argv = Callable[[str, Path], list[str]]

COMMANDS: dict[str, tuple[str, Argv]] = {
    "rules check": ("json", lambda f, tmp: ["rules", "check", f]),
    "detectors validate": (
        "json",
        lambda f, tmp: ["detectors", "validate", f, "--input", str(INPUT)],
    ),
    "detectors validate --input": (
        "json",
        lambda f, tmp: ["detectors", "validate", str(MODEL), "--input", f],
    ),
    "detectors analyze": (
        "json",
        lambda f, tmp: ["detectors", "analyze", f, "--input", str(INPUT)],
    ),
    "detectors run --messages": (
        "json",
        lambda f, tmp: ["detectors", "run", str(MODEL), "--input", str(INPUT), "--messages", f],
    ),
    "alarms validate": (
        "json",
        lambda f, tmp: ["alarms", "validate", f, "--input", str(ALARM_INPUT)],
    ),
    "alarms validate --input": (
        "json",
        lambda f, tmp: ["alarms", "validate", str(ALARM), "--input", f],
    ),
    "import iotevents": (
        "json",
        lambda f, tmp: ["import", "iotevents", str(Path(f).parent), "--data", str(tmp / "data")],
    ),
    "sim history --scenario": (
        "toml",
        lambda f, tmp: [
            "sim",
            "history",
            "--scenario",
            f,
            "--out",
            str(tmp / "out"),
            "--days",
            "0.01",
        ],
    ),
    "edge status --config": ("toml", lambda f, tmp: ["edge", "status", "--config", f]),
}

BAD: dict[str, dict[str, bytes]] = {
    "json": {
        "not_utf8": b'\xff\xfe{"a\xc3\x28": 1}\n',
        "many_digits": b"1" * 5000,
        "deep_array": b"[" * 100_000,
        "deep_object": b'{"a":' * 100_000,
    },
    "toml": {
        "not_utf8": b'\xff\xfe[run]\nsite = "s1"\n',
        "many_digits": b"[run]\nseed = " + b"9" * 5000 + b"\n",
        "deep_array": b"x = " + b"[" * 100_000,
    },
}

CASES = [
    (command, name, content)
    for command, (kind, _) in COMMANDS.items()
    for name, content in BAD[kind].items()
]


def _file_for(command: str, tmp: Path) -> Path:
    """Where the hostile document goes: `import iotevents` reads a folder of describe files."""
    if command == "import iotevents":
        folder = tmp / "folder"
        folder.mkdir()
        return folder / "describe-detector-model-x.json"
    return tmp / ("input.toml" if COMMANDS[command][0] == "toml" else "input.json")


def _run(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


def _assert_one_line_naming(err: str, name: str) -> None:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("plantwatch: error: "), lines[0]
    assert name in lines[0], lines[0]
    assert "internal error" not in lines[0] and "Traceback" not in err


@pytest.mark.parametrize(
    ("command", "name", "content"), CASES, ids=[f"{c} {n}" for c, n, _ in CASES]
)
def test_a_hostile_document_exits_2_naming_the_file(
    command: str, name: str, content: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _file_for(command, tmp_path)
    path.write_bytes(content)
    code = _run(COMMANDS[command][1](str(path), tmp_path))
    captured = capsys.readouterr()
    assert code == 2, captured.err
    _assert_one_line_naming(captured.err, path.name)


@contextlib.contextmanager
def _late_writer(fifo: Path, after_s: float = 8.0) -> Iterator[None]:
    """If the command blocks opening *fifo*, a writer arrives late: the test fails, not hangs."""
    done = threading.Event()

    def write_late() -> None:
        if done.wait(after_s):
            return
        with contextlib.suppress(OSError):  # ENXIO: nobody has it open for reading
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            os.close(fd)

    thread = threading.Thread(target=write_late, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_named_pipe_with_no_writer_does_not_block(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _file_for(command, tmp_path)
    os.mkfifo(path)
    started = time.monotonic()
    with _late_writer(path):
        code = _run(COMMANDS[command][1](str(path), tmp_path))
    assert time.monotonic() - started < 8.0, "waited for a writer"
    captured = capsys.readouterr()
    assert "internal error" not in captured.err and "Traceback" not in captured.err
    # no writer reads as an empty document: a parse error naming the file, or (messages,
    # scenario) an empty but valid one
    assert code in (0, 2), captured.err


@pytest.mark.parametrize("command", [c for c in COMMANDS if c != "import iotevents"])
def test_dev_zero_is_refused_after_a_bounded_read(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _run(COMMANDS[command][1]("/dev/zero", tmp_path))
    captured = capsys.readouterr()
    assert code == 2, captured.err
    _assert_one_line_naming(captured.err, "/dev/zero")
    assert re.search(r"larger than \d+ MiB|not UTF-8", captured.err), captured.err


def test_the_reader_refuses_a_regular_file_over_the_limit_without_reading_it(
    tmp_path: Path,
) -> None:
    big = tmp_path / "big.json"
    with big.open("wb") as fh:
        fh.truncate(1 << 30)  # sparse: no disk, and read_text would take a gigabyte of memory
    with pytest.raises(DocumentTooLargeError) as caught:
        read_document_bytes(big)
    assert caught.value.errno == errno.EFBIG and caught.value.filename == str(big)


def test_the_reader_waits_for_a_pipe_that_has_a_writer() -> None:
    """``<(command)`` is a pipe with its writer attached: its data is read, not refused."""
    read_fd, write_fd = os.pipe()

    def write() -> None:
        time.sleep(0.2)
        os.write(write_fd, b'{"rules": []}')
        os.close(write_fd)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        assert read_document_bytes(f"/dev/fd/{read_fd}") == b'{"rules": []}'
    finally:
        writer.join()
        os.close(read_fd)


def test_the_edge_cli_prints_one_line_for_an_unexpected_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``plantwatch-edge`` maps errors as ``plantwatch`` does: no traceback without --debug."""

    def broken(_args: object) -> int:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(edge_cli, "run", broken)
    code = edge_cli.main(["status", "--config", str(tmp_path / "agent.toml")])
    err = capsys.readouterr().err
    assert code == 1
    assert err.splitlines() == [
        "plantwatch-edge: error: internal error: RecursionError: maximum recursion depth "
        "exceeded (run again with --debug for the traceback)"
    ]


LOADERS: dict[str, Callable[[Path], object]] = {
    "rules": load_rules,
    "detector model": load_detector_model,
    "detector input": load_input,
    "alarm model": load_alarm_model,
    "scenario": load_scenario,
    "agent config": load_config,
}

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=12,
)
DOCUMENTS = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200).map(str.encode),
    JSON_VALUES.map(lambda v: __import__("json").dumps(v).encode()),
)


@pytest.mark.parametrize("loader", list(LOADERS), ids=list(LOADERS))
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(content=DOCUMENTS)
def test_any_bytes_load_or_raise_a_user_error(loader: str, content: bytes, tmp_path: Path) -> None:
    path = tmp_path / "document"
    path.write_bytes(content)
    with contextlib.suppress(UserError):
        LOADERS[loader](path)


BOMS = {
    "utf-8 BOM (Notepad)": lambda text: b"\xef\xbb\xbf" + text.encode(),
    "utf-16-le BOM (PowerShell >)": lambda text: text.encode("utf-16"),
    "utf-16-be BOM": lambda text: b"\xfe\xff" + text.encode("utf-16-be"),
    "utf-32 BOM": lambda text: text.encode("utf-32"),
}


@settings(max_examples=60, deadline=None)
@given(
    text=st.text(st.characters(exclude_characters="\0")),  # no document holds a NUL
    bom=st.sampled_from(sorted(BOMS)),
)
def test_a_document_with_a_byte_order_mark_reads_as_its_text(text: str, bom: str) -> None:
    """RFC 8259 §8.1 lets a reader ignore a byte order mark; Windows tools write one
    (Notepad's UTF-8, PowerShell's `>` UTF-16): the text is read as the user wrote it."""
    import tempfile

    from edge.user_files import read_document_text

    try:
        body = BOMS[bom](text)
    except UnicodeEncodeError:  # a lone surrogate has no UTF-16 or UTF-32 form
        return
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "doc.json"
        path.write_bytes(body)
        assert read_document_text(path) == text


@pytest.mark.parametrize("bom", sorted(BOMS))
def test_models_saved_with_a_byte_order_mark_validate_and_import(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bom: str
) -> None:
    model, model_input = tmp_path / "describe-model.json", tmp_path / "describe-input.json"
    model.write_bytes(BOMS[bom](MODEL.read_text()))
    model_input.write_bytes(BOMS[bom](INPUT.read_text()))
    assert _run(["detectors", "validate", str(model), "--input", str(model_input)]) == 0
    assert _run(["import", "iotevents", str(tmp_path), "--data", str(tmp_path / "d")]) == 0
    capsys.readouterr()


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
@pytest.mark.parametrize(
    "command",
    ["detectors validate", "rules check", "edge status --config", "sim history --scenario"],
)
def test_utf_16_without_a_byte_order_mark_is_refused_saying_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, encoding: str
) -> None:
    """Nothing says which encoding it is; read as UTF-8 its text is full of NUL bytes,
    which used to reach the parser ("Expecting property name ... column 2")."""
    path = _file_for(command, tmp_path)
    path.write_bytes(MODEL.read_text().encode(encoding))
    assert _run(COMMANDS[command][1](str(path), tmp_path)) == 2
    err = capsys.readouterr().err
    _assert_one_line_naming(err, str(path))
    assert "byte" in err and "Expecting" not in err
