"""Exit codes, named once: the CLI decides the process status in one place."""

SUCCESS = 0
FAILED = 1
"""The job ran and did not succeed (for example a demo whose story did not complete)."""
BAD_INPUT = 2
"""Bad input or usage; one line on stderr names the problem."""
INTERRUPTED = 130
BROKEN_PIPE = 141
"""stdout's reader went away (``plantwatch ... | head``): 128 + SIGPIPE, as a shell reports
for Unix tools stopped that way; nothing is printed."""
