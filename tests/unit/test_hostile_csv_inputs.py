"""Dataset CSVs too big for their reader: a first line far longer than any header, and
`import l4e` input objects read whole.

Before, `model train --dataset` and `import l4e --input` handed a CSV with a gigabyte first
line to the CSV parser, which reads a line whole: gigabytes of memory and minutes (or a
MemoryError) before the file was refused. And `import l4e` fetched every input object
into memory with ``get`` (all of them at once, eight threads ahead of the parser), so one
large object, or many, ended in "not enough memory".
"""

from __future__ import annotations

import io
import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.adapters.local import FsObjectStore
from cloud.cli.main import main
from cloud.migrate import l4e
from edge import user_files
from edge.errors import NotFoundError, UserError
from edge.user_files import MAX_HEADER_BYTES, read_header_line

CSV = "Timestamp,flow,temp\n2026-01-01T00:00:00,1,2\n2026-01-01T00:05:00,3,4\n"


def _long_header(path: Path, size: int = 3 * MAX_HEADER_BYTES) -> None:
    """A header of ``size`` bytes of valid sensor names (what a parser reads whole)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    names = ",".join(f"s{i:07d}" for i in range(size // 9))
    path.write_text(f"Timestamp,{names}\n2026-01-01T00:00:00,{','.join('1' * (size // 9))}\n")


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(err) == 1, err
    assert err[0].startswith("plantwatch: error: ") and "internal error" not in err[0]
    return err[0]


# ---- the shared header reader ---------------------------------------------------------


class _CountingReader(io.BytesIO):
    """Counts the bytes handed out, to show the reader stops at its limit."""

    def __init__(self, body: bytes) -> None:
        super().__init__(body)
        self.handed = 0

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self.handed += len(chunk)
        return chunk


def test_the_header_reader_reads_a_bounded_prefix_and_leaves_the_file_where_it_was() -> None:
    body = b"Timestamp," + b"a" * 5000 + b"\n1,2\n"
    handle = _CountingReader(body)
    with pytest.raises(UserError, match=r"^obj\.csv: line 1: longer than 1000 bytes; not a CSV"):
        read_header_line(handle, "obj.csv", limit=1000)
    assert handle.handed == 1001 and handle.tell() == 0
    assert read_header_line(b"Timestamp,a\r\n1,2\r\n", "x", limit=1000) == b"Timestamp,a"
    assert read_header_line(b"Timestamp,a\r1,2\r", "x", limit=1000) == b"Timestamp,a"  # CR only
    assert read_header_line(b"a" * 1000, "x", limit=1000) == b"a" * 1000  # no line break: ok


def test_the_header_reader_reads_one_step_of_a_large_file_with_a_short_header() -> None:
    body = b"Timestamp,a,b\n" + b"2026-01-01T00:00:00,1,2\n" * 200_000
    handle = _CountingReader(body)
    assert read_header_line(handle, "big.csv") == b"Timestamp,a,b"
    assert handle.handed <= user_files.HEADER_STEP_BYTES and handle.tell() == 0


@settings(max_examples=300, deadline=None)
@given(
    body=st.binary(max_size=400)
    | st.lists(st.sampled_from([b"a", b",", b"\n", b"\r", b"\xe9"]), max_size=400).map(b"".join),
    limit=st.integers(min_value=0, max_value=300),
    step=st.integers(min_value=1, max_value=50),
)
def test_the_header_reader_gives_the_same_line_from_bytes_a_stream_and_a_file(
    body: bytes, limit: int, step: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Whatever the step, the line is the prefix's first line, or the same one error."""
    prefix = body[: limit + 1]
    cut = [i for i in (prefix.find(b"\n"), prefix.find(b"\r")) if i >= 0]
    expected = prefix[: min(cut)] if cut else (None if len(prefix) > limit else prefix)
    path = tmp_path_factory.mktemp("h") / "x.csv"
    path.write_bytes(body)
    sources: list[object] = [body, io.BytesIO(body), path]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(user_files, "HEADER_STEP_BYTES", step)
        for source in sources:
            if expected is None:
                with pytest.raises(UserError, match="longer than"):
                    read_header_line(source, "x.csv", limit=limit)  # type: ignore[arg-type]
            else:
                assert read_header_line(source, "x.csv", limit=limit) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["fifo", "dev_zero", "directory"])
def test_the_header_reader_refuses_a_path_that_is_no_regular_file(
    kind: str, tmp_path: Path
) -> None:
    path = tmp_path / "x.csv"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev_zero":
        os.symlink("/dev/zero", path)
    else:
        path.mkdir()
    with pytest.raises(UserError, match=r"x\.csv: (not a regular file|cannot read)"):
        read_header_line(path, str(path))


# ---- model train --dataset ------------------------------------------------------------


def test_model_train_refuses_a_csv_whose_first_line_is_no_header(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = tmp_path / "ds" / "pump" / "pump.csv"
    _long_header(csv)
    argv = ["model", "train", "--name", "m", "--dataset", str(tmp_path / "ds")]
    assert main([*argv, "--data", str(tmp_path / "d")]) == 2
    assert _one_error_line(capsys) == (
        f"plantwatch: error: {csv}: line 1: longer than 1 MiB; not a CSV header"
    )


def test_model_train_reads_only_the_bound_of_each_first_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the bound lowered, a header just over it is refused and one at it is not
    (it goes on to the dataset reader, which names what else is wrong)."""
    monkeypatch.setattr(user_files, "MAX_HEADER_BYTES", 64)
    ds = tmp_path / "ds"
    (ds / "pump").mkdir(parents=True)
    (ds / "pump" / "a.csv").write_text("Timestamp," + "s" * 54 + "\n")  # 64 bytes: a header
    (ds / "pump" / "b.csv").write_text("Timestamp," + "s" * 55 + "\n")  # 65 bytes
    assert (
        main(["model", "train", "--name", "m", "--dataset", str(ds), "--data", str(tmp_path)]) == 2
    )
    assert _one_error_line(capsys).endswith("b.csv: line 1: longer than 64 bytes; not a CSV header")


def _good_csv(path: Path, rows: int = 600) -> None:
    """Minute readings of two sensors that vary enough to train on."""
    lines = ["Timestamp,flow,temp"]
    for i in range(rows):
        lines.append(f"2026-01-01T{i // 60:02d}:{i % 60:02d}:00,{300 + i % 17},{40 + i % 11}.5")
    path.write_text("\n".join(lines) + "\n")


def test_model_train_names_each_file_it_discards_and_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A dataset CSV that cannot be read was left out of the model with nothing said (the
    reason was only given when every file was unreadable)."""
    folder = tmp_path / "ds" / "pump"
    folder.mkdir(parents=True)
    _good_csv(folder / "good.csv")
    (folder / "bad.csv").write_text("Timestamp,flow,flow\n2026-01-01T00:00:00,1,2\n")
    (folder / "empty.csv").write_bytes(b"")
    (folder / "notes.txt").write_text("not data")
    argv = ["model", "train", "--name", "m", "--dataset", str(tmp_path / "ds")]
    assert main([*argv, "--data", str(tmp_path / "d"), "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["ModelVersion"] == 1  # stdout stays the document
    lines = [line for line in err.splitlines() if "discarded" in line]
    assert any(str(folder / "bad.csv") in line and "repeats column 2" in line for line in lines)
    assert any(str(folder / "empty.csv") in line for line in lines), err
    assert any("1 file that is not a component CSV" in line for line in lines), err
    assert all(line.startswith("warning: ") for line in lines), err


def test_model_train_lists_at_most_a_few_discarded_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "ds" / "pump"
    folder.mkdir(parents=True)
    _good_csv(folder / "good.csv")
    for i in range(12):
        (folder / f"bad{i:02d}.csv").write_bytes(b"")
    argv = ["model", "train", "--name", "m", "--dataset", str(tmp_path / "ds")]
    assert main([*argv, "--data", str(tmp_path / "d"), "--json"]) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "discarded" in line]
    assert len(lines) == 6 and "and 7 more unreadable CSV files discarded" in lines[-1], err


@pytest.mark.parametrize("where", ["middle", "end", "across"])
def test_a_data_line_far_longer_than_any_row_is_refused_before_it_is_parsed(
    tmp_path: Path, where: str
) -> None:
    """A sparse file (a header, then gigabytes of NUL bytes and no line break) made the
    CSV parser hold the whole line: `model train` on a 2 GB one peaked at 10.6 GB of
    memory. The line count that sizes the array now also measures the longest line."""
    from cloud.inference.dataset import read_csv

    path = tmp_path / "pump.csv"
    rows = "".join(f"2026-01-01T00:{m:02d}:00,{m}.5\n" for m in range(3))
    size = 8 * user_files.MAX_HEADER_BYTES
    with open(path, "wb") as fh:
        fh.write(f"Timestamp,flow\n{rows}".encode())
        if where == "across":  # the long line starts in one read block and ends in another
            fh.write(b"x" * ((1 << 20) - fh.tell() - 10))
        fh.truncate(fh.tell() + size)  # no line break in it
        fh.seek(0, os.SEEK_END)
        if where != "end":
            fh.write(rows.encode())
    with pytest.raises(UserError) as caught:
        read_csv(path, str(path))
    message = str(caught.value)
    assert message.startswith(f"{path}: line 5: longer than 1 MiB; not a CSV row"), message


@settings(max_examples=40, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 3 * 1024), min_size=1, max_size=8),
    ends=st.sampled_from([b"\n", b"\r\n", b"\r"]),
)
def test_a_line_over_the_bound_is_found_wherever_it_falls(lengths: list[int], ends: bytes) -> None:
    """With the bound lowered to 1 KiB (so read in 1 KiB blocks), a line over it is named
    by its number wherever it starts and ends; lines at most that long pass."""
    from cloud.inference import dataset

    body = b"".join(b"1" * n + ends for n in lengths)
    over = [k for k, n in enumerate(lengths, start=1) if n > 1024]
    if not over:
        assert dataset._line_count(io.BytesIO(body), "f.csv", limit=1024) >= len(lengths)
        return
    with pytest.raises(UserError, match=f"^f.csv: line {over[0]}: longer than 1024 bytes"):
        dataset._line_count(io.BytesIO(body), "f.csv", limit=1024)


# ---- import l4e --input ---------------------------------------------------------------


def test_import_discards_an_input_whose_first_line_is_no_header(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "src"
    (src / "pump").mkdir(parents=True)
    (src / "pump" / "a.csv").write_text(CSV)
    _long_header(src / "pump" / "b.csv")
    argv = ["import", "l4e", "--input", str(src), "--data", str(tmp_path / "d"), "--json"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["DiscardedFiles"] == [
        {"Key": "pump/b.csv", "Reason": "pump/b.csv: line 1: longer than 1 MiB; not a CSV header"}
    ]
    assert [(c["ComponentName"], c["Rows"]) for c in report["Components"]] == [("pump", 2)]


def test_import_of_only_such_an_input_exits_2_saying_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "src"
    _long_header(src / "pump" / "b.csv")
    assert main(["import", "l4e", "--input", str(src), "--data", str(tmp_path / "d")]) == 2
    assert _one_error_line(capsys) == (
        f"plantwatch: error: --input {src}: no readable L4E input file: "
        "pump/b.csv: line 1: longer than 1 MiB; not a CSV header"
    )


class _FileOnlyStore(FsObjectStore):
    """A folder store that records the files it hands out and refuses to read an object
    whole: an importer that streams never calls ``get``."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, fsync=False)
        self.open_now = 0
        self.most_open = 0
        self.opened: list[str] = []
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes:
        raise AssertionError(f"{key}: read whole with get")

    @contextmanager
    def open_file(self, key: str) -> Iterator[BinaryIO]:
        with super().open_file(key) as handle:
            with self._lock:
                self.open_now += 1
                self.most_open = max(self.most_open, self.open_now)
                self.opened.append(key)
            try:
                yield handle
            finally:
                with self._lock:
                    self.open_now -= 1


def _importer(tmp_path: Path) -> l4e.L4EImporter:
    from cloud.adapters.local import SqliteStateStore
    from cloud.inference.registry import ModelRegistry

    return l4e.L4EImporter(
        FsObjectStore(tmp_path / "bucket", fsync=False),
        SqliteStateStore(tmp_path / "state.db"),
        ModelRegistry(FsObjectStore(tmp_path / "models", fsync=False)),
        now=0.0,
    )


def test_import_reads_input_objects_as_files_a_few_at_a_time(tmp_path: Path) -> None:
    src = tmp_path / "src"
    for n in range(3 * l4e.OPEN_AHEAD):
        (src / "pump").mkdir(parents=True, exist_ok=True)
        (src / "pump" / f"{n:03d}.csv").write_text(
            f"Timestamp,flow\n2026-01-01T00:{n:02d}:00,{n}\n"
        )
    store = _FileOnlyStore(src)
    report = _importer(tmp_path).run(l4e.L4EOptions(name="imp"), l4e.Source(store, "", str(src)))
    assert report["DiscardedFiles"] == []
    assert report["Components"][0]["Rows"] == 3 * l4e.OPEN_AHEAD
    assert len(store.opened) == 3 * l4e.OPEN_AHEAD and store.open_now == 0
    assert store.most_open <= l4e.OPEN_AHEAD + 1  # the one being read and those fetched ahead


def test_import_discards_an_object_over_the_l4e_size_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(l4e, "MAX_INPUT_BYTES", len(CSV) - 1)  # l4e-contracts §1.4: 5 GB
    src = tmp_path / "src" / "pump"
    src.mkdir(parents=True)
    (src / "a.csv").write_text(CSV)
    (src / "b.csv").write_text(CSV[: CSV.index("\n") + 1] + "2026-01-01T00:00:00,1,2\n")
    report = _importer(tmp_path).run(
        l4e.L4EOptions(name="imp"), l4e.Source(FsObjectStore(src.parent, fsync=False), "", "src")
    )
    assert report["DiscardedFiles"] == [
        {
            "Key": "pump/a.csv",
            "Reason": f"pump/a.csv: {len(CSV)} bytes; an L4E input CSV is at most 5 GB "
            "(l4e-contracts §1.4)",
        }
    ]


def test_import_with_training_copies_streamed_inputs_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Objects over the whole-read size are parsed from their file, and the copy the
    training reads is the whole object, not what the parser left of the file."""
    from cloud.migrate import l4e as module

    monkeypatch.setattr(module, "WHOLE_READ_BYTES", 10)
    src = tmp_path / "src" / "pump"
    src.mkdir(parents=True)
    rows = "".join(
        f"2026-01-{1 + d:02d}T{h:02d}:00:00,{h % 5},{d}\n" for d in range(3) for h in range(24)
    )
    (src / "a.csv").write_text("Timestamp,flow,temp\n" + rows)
    store = _FileOnlyStore(src.parent)
    report = _importer(tmp_path).run(
        l4e.L4EOptions(name="imp", train=l4e.TrainRequest("m")), l4e.Source(store, "", "src")
    )
    assert report["Components"][0]["Rows"] == 72
    assert report["Model"]["TrainingRows"] == 72


@pytest.mark.parametrize(
    ("kind", "reason"),
    [("fifo", "not a regular file"), ("dev_zero", "not a regular file"), ("loop", "symlink loop")],
)
def test_the_local_store_opens_only_objects_as_files(
    kind: str, reason: str, tmp_path: Path
) -> None:
    path = tmp_path / "x.csv"
    if kind == "fifo":
        os.mkfifo(path)
        # a late writer, so an open that waits for one fails this test instead of hanging
        watchdog = threading.Timer(5.0, lambda: os.close(os.open(path, os.O_WRONLY)))
        watchdog.daemon = True
        watchdog.start()
    elif kind == "dev_zero":
        os.symlink("/dev/zero", path)
    else:
        os.symlink(path, path)
    with pytest.raises(NotFoundError, match=reason), FsObjectStore(tmp_path).open_file("x.csv"):
        pass
    if kind == "fifo":
        watchdog.cancel()
