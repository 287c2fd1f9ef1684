"""Shared fixtures and settings: a real broker per test module, started by the tests.

Hypothesis: no per-example deadline (a loaded 2-core machine makes timing flaky; speed is
measured by benchmarks, not tests), and under CI the search is derandomized so a run is
reproducible; locally it keeps exploring new examples.

Tools: a test that needs a binary says so with ``@pytest.mark.mosquitto`` or
``@pytest.mark.requires_tool("openssl")``. Locally a missing tool skips it with the reason;
under ``CI=true`` it fails, because CI installs every tool (``.ci/run``) and a skipped
protocol test is a test that silently stopped running.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from cloud.runtime.broker import EmbeddedBroker, mosquitto_path

TREE = Path(__file__).resolve().parent.parent
"""The checkout under test."""


def _children_import_this_tree() -> None:
    """Child processes (CLIs, agents, CDK synthesis) must import the checkout under test.

    Why: run from a second checkout (a git worktree sharing one virtualenv) with
    ``PYTHONPATH=.``, a child started in another folder resolves ``.`` there, misses, and
    imports the packages from the folder the virtualenv was installed from: the child then
    tests other code and passes or fails for it. An absolute first entry pins them."""
    entries = [e for e in os.environ.get("PYTHONPATH", "").split(os.pathsep) if e]
    pinned = [str(TREE)] + [str(Path(e).resolve()) for e in entries if Path(e).resolve() != TREE]
    os.environ["PYTHONPATH"] = os.pathsep.join(pinned)


_children_import_this_tree()

settings.register_profile("dev", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


def under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def tool_path(name: str) -> str | None:
    return mosquitto_path() if name == "mosquitto" else shutil.which(name)


def require_tool(name: str) -> str:
    """The path of the tool *name*; if it is missing, skip the test, or fail it under CI."""
    path = tool_path(name)
    if path is not None:
        return path
    message = f"{name} is not installed"
    if under_ci():
        pytest.fail(f"{message}, and CI=true: .ci/run must install it", pytrace=False)
    pytest.skip(message)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("mosquitto") is not None:
        require_tool("mosquitto")
    for marker in item.iter_markers("requires_tool"):
        for name in marker.args:
            require_tool(name)


@pytest.fixture(autouse=True)
def _root_logging_as_it_was() -> Iterator[None]:
    """A CLI's ``main`` sets the root logger's handler on the ``sys.stderr`` of its test,
    which capsys closes afterwards; every later log record then printed a "Logging error"
    traceback into the next tests' stderr (seen with tests/unit before tests/handlers)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    """A real amqtt broker on a free loopback port."""
    with EmbeddedBroker("amqtt") as running:
        yield running
