"""Retention per prefix: objects by age, archive partitions by date, the shorter rule wins;
``plantwatch retention`` and ``plantwatch archive``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from cloud.archive.retention import RetentionRule, apply, load_rules, save_rules
from cloud.cli.main import main
from edge.errors import ConfigError

NOW = 1_700_006_400.0  # 2023-11-15T00:00:00Z
DAY = 86_400


def _put(bucket: Path, key: str, age_days: float) -> Path:
    path = bucket / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * 10)
    os.utime(path, (NOW - age_days * DAY, NOW - age_days * DAY))
    return path


def _partition(bucket: Path, date: str) -> Path:
    folder = bucket / "archive" / "site=s1" / "asset=pump-1" / f"date={date}"
    folder.mkdir(parents=True)
    (folder / "part-1.parquet").write_bytes(b"p" * 5)
    return folder


def test_objects_expire_by_age_under_their_prefix(tmp_path: Path) -> None:
    old_input = _put(tmp_path, "input/pump-1_20231101000000.csv", 31)
    new_input = _put(tmp_path, "input/pump-1_20231114000000.csv", 29)
    old_site2 = _put(tmp_path, "input/s2/pump-1_20231110000000.csv", 6)
    output = _put(tmp_path, "output/pump-1/2023-01-01T00:00:00Z/results.jsonl", 300)
    rules = [RetentionRule("input/", 30), RetentionRule("input/s2/", 5)]
    dry = apply(tmp_path, rules, NOW, dry_run=True)
    assert sorted(dry.objects) == [
        "input/pump-1_20231101000000.csv",
        "input/s2/pump-1_20231110000000.csv",
    ]
    assert dry.bytes == 20 and old_input.exists()
    apply(tmp_path, rules, NOW)
    assert not old_input.exists() and not old_site2.exists()
    assert new_input.exists() and output.exists()  # no rule for output/: kept


def test_archive_partitions_expire_whole_by_their_date(tmp_path: Path) -> None:
    kept = _partition(tmp_path, "2023-11-05")  # its last day ended 9 days ago
    gone = _partition(tmp_path, "2023-11-04")  # 10 days ago
    (tmp_path / "archive" / "_committed").write_text("1\n")
    found = apply(tmp_path, [RetentionRule("archive/", 10)], NOW)
    assert found.partitions == ["archive/site=s1/asset=pump-1/date=2023-11-04/"]
    assert kept.exists() and not gone.exists()
    assert (tmp_path / "archive" / "_committed").exists()
    apply(tmp_path, [RetentionRule("archive/", 1)], NOW)
    assert not (tmp_path / "archive" / "site=s1").exists()  # empty folders go too


def test_a_rule_on_the_whole_bucket_covers_the_archive_too(tmp_path: Path) -> None:
    _partition(tmp_path, "2023-01-01")
    _put(tmp_path, "quarantine/bad_json/x.json", 400)
    _put(tmp_path, "input/new.csv", 1)
    found = apply(tmp_path, [RetentionRule("", 300)], NOW)
    assert found.objects == ["quarantine/bad_json/x.json"]
    assert found.partitions == ["archive/site=s1/asset=pump-1/date=2023-01-01/"]


def test_rules_file_round_trip_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "retention.toml"
    assert load_rules(path) == []
    save_rules(path, [RetentionRule("input/", 30), RetentionRule("archive/", 365)])
    assert load_rules(path) == [RetentionRule("archive/", 365), RetentionRule("input/", 30)]
    path.write_text('[retention]\n"input" = 30\n')
    with pytest.raises(ConfigError, match=r"retention.toml: prefix 'input': expected a key prefix"):
        load_rules(path)
    path.write_text('[retention]\n"input/" = 0\n')
    with pytest.raises(ConfigError, match=r"'input/' = 0: expected whole days"):
        load_rules(path)
    path.write_text("[retention\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_rules(path)


def test_retention_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = ["--data", str(tmp_path)]
    assert main(["retention", "show", *data]) == 0
    assert "no retention rules" in capsys.readouterr().out
    assert main(["retention", "set", "input/", "30", *data]) == 0
    capsys.readouterr()
    assert main(["retention", "set", "archive/", "365", *data, "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 2
    assert main(["retention", "show", *data, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [
        {"prefix": "archive/", "days": 365},
        {"prefix": "input/", "days": 30},
    ]
    _put(tmp_path / "buckets" / "plantwatch", "input/old.csv", 10_000)
    assert main(["retention", "apply", "--dry-run", *data, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["keys"] == ["input/old.csv"]
    assert (tmp_path / "buckets" / "plantwatch" / "input" / "old.csv").exists()
    assert main(["retention", "apply", *data]) == 0
    assert "deleted input/old.csv" in capsys.readouterr().out
    assert main(["retention", "clear", "input/", *data]) == 0
    assert main(["retention", "clear", "input/", *data]) == 2
    assert "no rule for 'input/'" in capsys.readouterr().err


def test_archive_status_and_compact(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from archive_cells import archive_cells
    from test_archive_writer import T0, Rig, _message

    rig = Rig(tmp_path)
    for i in range(3):
        rig.send(_message(i, T0 - 3000 + i * 300, {"a": i}))
        rig.batcher.flush_due()
        rig.writer.flush()
    before = archive_cells(rig.archive)
    rig.send(_message(9, T0 - 100, {"a": 9}))
    rig.batcher.flush_due()  # queued, not yet in the archive
    data = ["--data", str(tmp_path)]
    assert main(["archive", "status", *data, "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["partitions"] == 1 and status["parts"] == 3
    assert (status["queued_files"], status["queued_readings"]) == (1, 1)
    assert main(["archive", "compact", *data, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["parts_after"] == 1
    assert archive_cells(rig.archive) == before


@pytest.mark.parametrize(
    "days", ["0", "-1", "36501", "99999999999999999999", "abc", "1.5", "", "1e3", "NaN"]
)
def test_nonsense_durations_get_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], days: str
) -> None:
    assert main(["retention", "set", "archive/", days, "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "expected whole days 1-36500" in err
    assert not (tmp_path / "retention.toml").exists()


@pytest.mark.parametrize("prefix", ["../", "archive/../", "./", "input/./x/", "/etc/", "a b/"])
def test_prefixes_that_are_not_bucket_folders_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], prefix: str
) -> None:
    assert main(["retention", "set", prefix, "3", "--data", str(tmp_path)]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert not (tmp_path / "retention.toml").exists()
    with pytest.raises(ConfigError):
        RetentionRule(prefix, 3)


@pytest.mark.parametrize("odd", ["bogus", "2023-02-30", "2023-1-5", "2023-01-05T00"])
def test_a_partition_whose_date_is_not_a_date_is_kept_and_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], odd: str
) -> None:
    bucket = tmp_path / "buckets" / "plantwatch"
    strange = _partition(bucket, odd)
    old = _partition(bucket, "2020-01-01")
    expired = apply(bucket, [RetentionRule("archive/", 1)], NOW)
    assert strange.exists() and not old.exists()
    assert expired.partitions == ["archive/site=s1/asset=pump-1/date=2020-01-01/"]
    assert expired.skipped == [f"archive/site=s1/asset=pump-1/date={odd}/"]
    assert main(["retention", "set", "archive/", "1", "--data", str(tmp_path)]) == 0
    capsys.readouterr()
    assert main(["retention", "apply", "--data", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"kept archive/site=s1/asset=pump-1/date={odd}/: date is not YYYY-MM-DD" in out
    assert strange.exists()


def test_a_pass_killed_half_way_leaves_no_partial_partition(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A partition disappears from readers whole: a pass killed while deleting its files
    leaves nothing a query reads, and the next pass removes the rest."""
    import shutil

    from cloud.archive import retention
    from cloud.archive.layout import partitions

    bucket = tmp_path / "buckets" / "plantwatch"
    folder = _partition(bucket, "2020-01-01")
    (folder / "part-2.parquet").write_bytes(b"q" * 5)
    (folder / "_compaction.json").write_text('{"target": "part-2.parquet", "sources": []}')
    kept = _partition(bucket, "2023-11-14")
    real_rmtree = shutil.rmtree

    def killed(path: Path, *args: object, **kwargs: object) -> None:
        victim = sorted(Path(path).iterdir())[0]
        victim.unlink()
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(retention.shutil, "rmtree", killed)
    with pytest.raises(KeyboardInterrupt):
        apply(bucket, [RetentionRule("archive/", 30)], NOW)
    monkeypatch.setattr(retention.shutil, "rmtree", real_rmtree)
    assert [p.date for p in partitions(bucket / "archive")] == ["2023-11-14"]
    apply(bucket, [RetentionRule("archive/", 30)], NOW)
    assert sorted(p.name for p in kept.parent.iterdir()) == ["date=2023-11-14"]


def test_a_partition_another_pass_removed_first_is_not_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two `retention apply` at once: the second lists the partition, waits for the lock,
    and finds it gone."""
    import contextlib
    import shutil

    from cloud.archive import retention

    bucket = tmp_path / "buckets" / "plantwatch"
    folder = _partition(bucket, "2020-01-01")
    real_lock = retention.directory_lock

    @contextlib.contextmanager
    def other_pass_first(root: Path, **kwargs: object):
        shutil.rmtree(folder)
        with real_lock(root, **kwargs) as locked:
            yield locked

    monkeypatch.setattr(retention, "directory_lock", other_pass_first)
    expired = apply(bucket, [RetentionRule("archive/", 30)], NOW)
    assert expired.partitions == []


def test_an_object_deleted_by_someone_else_during_the_pass_is_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cloud.archive import retention

    bucket = tmp_path / "bucket"
    _put(bucket, "input/old.csv", 100)
    real_walk = os.walk

    def walk_then_delete(top: Path):  # listed, then removed before the pass looks at it
        for dirpath, dirs, files in real_walk(top):
            if files:
                (Path(dirpath) / files[0]).unlink()
            yield dirpath, dirs, files

    monkeypatch.setattr(retention.os, "walk", walk_then_delete)
    expired = apply(bucket, [RetentionRule("input/", 30)], NOW)
    assert expired.objects == []
