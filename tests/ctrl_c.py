"""Running the CLI in a child that Ctrl-C can reach, however the test run was started.

A shell hands the jobs it starts in the background (`make test &`, `nohup ... &`) SIGINT
ignored, and Python keeps an inherited SIG_IGN instead of installing its KeyboardInterrupt
handler, so a plain `python -m cloud.cli.main` child would ignore the signal the test sends,
as the product rightly does under nohup. The child restores the terminal's Ctrl-C first.
"""

from __future__ import annotations

import sys


def cli_argv(*args: str) -> list[str]:
    """argv for a child running `plantwatch ARGS` with Ctrl-C raising KeyboardInterrupt."""
    program = (
        "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        f"sys.argv = ['plantwatch', *{list(args)!r}]; "
        "runpy.run_module('cloud.cli.main', run_name='__main__', alter_sys=True)"
    )
    return [sys.executable, "-c", program]
