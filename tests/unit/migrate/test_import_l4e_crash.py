"""``plantwatch import l4e`` killed (SIGKILL) at every point of a re-import: what the
readers see (``executions``, the results objects they name, ``query``) is the earlier
import or the new one, never a mix; and running the import again gives what one
uninterrupted run gives.

The import runs in a child process, as the CLI wires it, and kills itself from the
importer's own progress callback after its k-th call: after each object read, each
results object copied and each earlier object removed. Nothing of the product is replaced.
"""

from __future__ import annotations

import functools
import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from l4e_import_state import bucket_files, registered

from cloud.cli import imports, output
from cloud.cli.main import main
from cloud.inference.scheduler import EXECUTIONS_NS, stored_result_keys

NAME = "pump"


@pytest.fixture(autouse=True)
def _no_progress_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    """A failed import is one line on stderr; on a loaded machine the import can pass the 2 s
    after which piped progress starts, and a progress line is not what these tests are about.
    (The child processes print no progress: they call the importer, not the CLI.)"""
    monkeypatch.setattr(imports, "progress", functools.partial(output.progress, after_s=3600))


CHILD = """
import os, signal, sys
from cloud.adapters.local import FsObjectStore, SqliteStateStore
from cloud.cli.imports import _source
from cloud.migrate.l4e import L4EImporter, L4EOptions
from cloud.runtime.layout import DataLayout

data, inputs, outputs, labels, kill_at = sys.argv[1:]
calls = 0

def step(stage, total):
    global calls
    calls += 1
    if calls == int(kill_at):
        os.kill(os.getpid(), signal.SIGKILL)

layout = DataLayout.at(data)
state = SqliteStateStore(layout.state_db)
L4EImporter(FsObjectStore(layout.bucket), state, layout.registry(), 1.7e9, step).run(
    L4EOptions(name="pump"),
    _source(inputs, "--input", None),
    _source(outputs, "--output", None),
    _source(labels, "--labels", None),
)
state.close()
print(calls)
"""


def _sources(root: Path, minutes: list[int], flipped: int | None = None) -> list[str]:
    """Input, output and labels folders; results at *minutes* (12:MM), anomalous except
    the one at *flipped*, each with a line that is not a result."""
    inputs, out, labels = root / "input", root / "output", root / "labels"
    inputs.mkdir(parents=True)
    for minute in (10, 15, 20):
        (inputs / f"pump_2022051312{minute}00.csv").write_text(
            "Timestamp,flow,temp\n"
            + "".join(f"2022-05-13T12:{minute + i}:00,{300 + i},{40 + i}\n" for i in range(5))
        )
    for minute in minutes:
        folder = out / f"2022-05-13T12:{minute}:00Z"
        folder.mkdir(parents=True)
        prediction = 0 if minute == flipped else 1
        (folder / "results.jsonl").write_text(
            f'{{"timestamp": "2022-05-13T12:{minute + 1}:00.000000", "prediction": {prediction}}}\n'
            "not json\n"
        )
    labels.mkdir()
    (labels / "l.csv").write_text("2022-05-13T12:10:00,2022-05-13T12:12:00\n")
    return [str(inputs), str(out), str(labels)]


def _import(data: Path, sources: list[str]) -> None:
    argv = ["import", "l4e", "--input", sources[0], "--output", sources[1]]
    assert main([*argv, "--labels", sources[2], "--name", NAME, "--data", str(data)]) == 0


def _view(data: Path, capsys: pytest.CaptureFixture[str]) -> dict:
    """What the readers see: the registered state, the results objects its executions
    name (with their content) and the rows `query` gives for the import."""
    docs = registered(data)
    bucket = data / "buckets" / "plantwatch"
    objects = {}
    for _key, doc in docs[EXECUTIONS_NS]:
        for key in stored_result_keys(doc):
            path = bucket / key
            objects[key] = path.read_bytes() if path.is_file() else None
    capsys.readouterr()
    sql = "SELECT asset, timestamp, prediction FROM results WHERE source = 'imported/pump'"
    assert main(["query", f"{sql} ORDER BY ALL", "--data", str(data), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    return {"state": docs, "objects": objects, "query": rows}


def _killed_at(data: Path, sources: list[str], k: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CHILD, str(data), *sources, str(k)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_reimport_killed_at_any_point_leaves_the_old_import_or_the_new_and_a_rerun_converges(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = _sources(tmp_path / "a", [10, 15, 20])
    # the new export: one result changed, one gone, one more
    second = _sources(tmp_path / "b", [10, 15, 25], flipped=15)
    base = tmp_path / "base"
    _import(base, first)
    old = _view(base, capsys)

    whole = tmp_path / "whole"
    shutil.copytree(base, whole)
    done = _killed_at(whole, second, 0)  # never killed: count the progress calls
    assert done.returncode == 0, done.stderr
    calls = int(done.stdout.strip().splitlines()[-1])
    new = _view(whole, capsys)
    assert new != old and new["query"] != old["query"]
    converged = bucket_files(whole)

    outcomes = []
    for k in range(1, calls + 1):
        data = tmp_path / f"killed-{k}"
        shutil.copytree(base, data)
        killed = _killed_at(data, second, k)
        assert killed.returncode == -signal.SIGKILL, (k, killed.stderr)
        seen = _view(data, capsys)
        outcomes.append("old" if seen == old else "new" if seen == new else "mixed")
        assert seen in (old, new), f"killed after progress call {k} of {calls}: a mix"
        _import(data, second)
        assert _view(data, capsys) == new, f"a re-run after a kill at {k} did not converge"
        assert bucket_files(data) == converged, f"a re-run after a kill at {k} left more"
        shutil.rmtree(data)
    assert "old" in outcomes and "new" in outcomes, outcomes


def test_a_reimport_whose_last_object_cannot_be_written_leaves_the_old_import_whole(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A real file-system failure half way through the copies (a directory stands where the
    last results object goes): the objects already copied are taken back, the earlier
    import is untouched (the bad lines set aside so far stay in quarantine, which keeps
    every line), and once the obstacle is gone a re-run completes."""
    first = _sources(tmp_path / "a", [10, 15, 20])
    second = _sources(tmp_path / "b", [10, 15, 25], flipped=15)
    data, whole = tmp_path / "data", tmp_path / "whole"
    _import(data, first)
    before = {"view": _view(data, capsys), "files": _objects(data)}
    shutil.copytree(data, whole)
    _import(whole, second)  # where the new objects go (their keys come from their content)
    new = sorted(
        key for _key, doc in registered(whole)[EXECUTIONS_NS] for key in stored_result_keys(doc)
    )
    obstacle = data / "buckets" / "plantwatch" / new[-1]
    obstacle.mkdir(parents=True)
    argv = ["import", "l4e", "--input", second[0], "--output", second[1], "--labels", second[2]]
    assert main([*argv, "--name", NAME, "--data", str(data)]) in (1, 2)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and new[-1] in err, err
    obstacle.rmdir()
    assert {"view": _view(data, capsys), "files": _objects(data)} == before
    _import(data, second)
    assert _view(data, capsys) == _view(whole, capsys)
    assert bucket_files(data) == bucket_files(whole)


def _objects(data: Path) -> dict:
    """The bucket's files but the quarantine."""
    return {k: v for k, v in bucket_files(data).items() if isinstance(k, str)}
