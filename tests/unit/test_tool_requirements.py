"""A test that needs a missing tool skips locally and fails under CI=true (issue 13, item
15): the project's own conftest, run by pytest on a throwaway test file."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"
TESTS = """
import pytest

@pytest.mark.requires_tool("plantwatch-no-such-tool")
def test_needs_a_missing_tool():
    pass

@pytest.mark.requires_tool("sh")
def test_needs_a_present_tool():
    pass
"""


@pytest.mark.parametrize(("ci", "expected"), [("true", "errors"), ("", "skipped")])
def test_a_missing_tool_skips_locally_and_fails_under_ci(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str, expected: str
) -> None:
    monkeypatch.setenv("CI", ci)
    pytester.makeconftest(CONFTEST.read_text())
    pytester.makeini("[pytest]\nmarkers =\n    mosquitto: x\n    requires_tool: x\n")
    pytester.makepyfile(TESTS)
    result = pytester.runpytest("-rfs", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, **{expected: 1})
    assert result.ret == (1 if ci else 0)
    result.stdout.fnmatch_lines(["*plantwatch-no-such-tool is not installed*"])
