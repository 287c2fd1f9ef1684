"""The ``plantwatch`` command line: a thin shell over the engines."""
