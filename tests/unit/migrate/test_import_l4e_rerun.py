"""``plantwatch import l4e`` run twice, or failing half way: the data directory holds one
import's worth (never a silent duplicate), or stays exactly as it was."""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path

import pytest
from l4e_import_state import import_state

from cloud.adapters.local import SqliteStateStore
from cloud.cli import imports, output
from cloud.cli.main import main
from cloud.inference.scheduler import SCHEDULERS_NS
from cloud.migrate import l4e
from edge.errors import StorageError, UserError


@pytest.fixture(autouse=True)
def _no_progress_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    """A failed import is one line on stderr; on a loaded machine the import can pass the 2 s
    after which piped progress starts, and a progress line is not what these tests are about."""
    monkeypatch.setattr(imports, "progress", functools.partial(output.progress, after_s=3600))


def _sources(root: Path) -> list[str]:
    inputs = root / "old" / "input"
    inputs.mkdir(parents=True)
    for minute in range(3):
        (inputs / f"pump_2022051312{10 + minute * 5}00.csv").write_text(
            "Timestamp,flow,temp\n"
            + "".join(
                f"2022-05-13T12:{10 + minute * 5 + i}:00,{300 + i},{40 + i}\n" for i in range(5)
            )
        )
    out = root / "old" / "output"
    for minute in range(3):
        folder = out / f"2022-05-13T12:{10 + minute * 5}:00Z"
        folder.mkdir(parents=True)
        (folder / "results.jsonl").write_text(
            f'{{"timestamp": "2022-05-13T12:{11 + minute * 5}:00.000000", "prediction": 1}}\n'
            "not json\n"
        )
    labels = root / "old" / "labels"
    labels.mkdir()
    (labels / "l.csv").write_text("2022-05-13T12:10:00,2022-05-13T12:12:00\n")
    return ["--input", str(inputs), "--output", str(out), "--labels", str(labels)]


def test_running_the_same_import_twice_leaves_one_import(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["import", "l4e", *_sources(tmp_path), "--data", str(tmp_path / "data"), "--json"]
    assert main(argv) == 0
    first = json.loads(capsys.readouterr().out)
    once = import_state(tmp_path / "data")
    assert main(argv) == 0
    second = json.loads(capsys.readouterr().out)
    assert import_state(tmp_path / "data") == once  # nothing twice, quarantine included
    assert (second["Executions"], second["QuarantinedResultLines"]) == (
        first["Executions"],
        first["QuarantinedResultLines"],
    )


def test_a_results_object_gone_between_listing_and_reading_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sources = _sources(tmp_path)
    argv = ["import", "l4e", *sources, "--data", str(tmp_path / "data")]
    assert main(argv) == 0
    before = import_state(tmp_path / "data")
    capsys.readouterr()
    listed = l4e.L4EImporter._results

    def then_deleted(self: l4e.L4EImporter, source: l4e.Source) -> list:
        found = listed(self, source)
        (Path(sources[3]) / "2022-05-13T12:20:00Z" / "results.jsonl").unlink()
        return found

    monkeypatch.setattr(l4e.L4EImporter, "_results", then_deleted)
    assert main(argv) in (1, 2)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "2022-05-13T12:20:00Z/results.jsonl" in err, err
    assert import_state(tmp_path / "data") == before


def test_a_failed_training_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = ["import", "l4e", *_sources(tmp_path), "--data", str(tmp_path / "data")]
    assert main(argv) == 0
    before = import_state(tmp_path / "data")

    def fails(*_args: object) -> dict:
        raise UserError("training: not enough rows")

    monkeypatch.setattr(l4e.L4EImporter, "_train", fails)
    assert main([*argv, "--train", "m"]) == 2
    assert "not enough rows" in capsys.readouterr().err
    assert import_state(tmp_path / "data") == before


@pytest.mark.parametrize("earlier", [True, False], ids=["onto-an-import", "onto-nothing"])
def test_a_write_failing_half_way_registers_nothing(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    earlier: bool,
) -> None:
    """A full disk at the last write (the scheduler's), after the dataset, labels and
    executions were written: those writes used to stay, a half import beside (or in
    place of) the earlier one. The state writes are now one transaction."""
    sources = _sources(tmp_path)
    argv = ["import", "l4e", *sources, "--data", str(tmp_path / "data")]
    if earlier:
        assert main(argv) == 0
    before = import_state(tmp_path / "data") if earlier else None
    shutil.rmtree(Path(sources[3]) / "2022-05-13T12:20:00Z")  # this run differs: 2 results
    capsys.readouterr()
    put = SqliteStateStore.put

    def full_at_the_scheduler(self: SqliteStateStore, ns: str, key: str, value: dict) -> None:
        if ns == SCHEDULERS_NS:
            raise StorageError(f"{self.path}: writing {ns}/{key} failed: database or disk is full")
        put(self, ns, key, value)

    monkeypatch.setattr(SqliteStateStore, "put", full_at_the_scheduler)
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "disk is full" in err, err
    monkeypatch.undo()
    after = import_state(tmp_path / "data")
    if earlier:
        assert after == before
    else:
        assert all(docs == [] for docs in after["state"].values()), after["state"]
    assert main(argv) == 0  # and with room again it goes through whole
    capsys.readouterr()


def test_an_input_file_gone_between_listing_and_reading_is_listed_as_discarded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sources = _sources(tmp_path)
    gone = Path(sources[1]) / "pump_20220513121500.csv"
    listed = l4e.L4EImporter._list_inputs

    def then_deleted(self: l4e.L4EImporter, *args: object) -> tuple:
        found = listed(self, *args)
        gone.unlink()
        return found

    monkeypatch.setattr(l4e.L4EImporter, "_list_inputs", then_deleted)
    argv = ["import", "l4e", *sources, "--data", str(tmp_path / "data"), "--json"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert [d["Key"] for d in report["DiscardedFiles"]] == [gone.name]
    assert report["Components"][0]["Files"] == 2


def test_training_more_sensors_than_a_model_takes_says_what_to_do_from_the_import(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 301 sensors: an L4E dataset may hold them (<= 3,000), a model takes at most 300;
    # `import l4e` has no --sensors, so the message must not send the user to one
    inputs = tmp_path / "input"
    inputs.mkdir()
    names = [f"s{i}" for i in range(301)]
    rows = "".join(
        f"2022-05-13T12:{10 + i}:00," + ",".join(str(i + j) for j in range(301)) + "\n"
        for i in range(5)
    )
    (inputs / "pump_20220513121000.csv").write_text("Timestamp," + ",".join(names) + "\n" + rows)
    argv = ["import", "l4e", "--input", str(inputs), "--data", str(tmp_path / "data")]
    assert main([*argv, "--train", "m"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "301 sensors" in err and "at most 300" in err
    assert "without --train" in err and "plantwatch model train" in err
