"""The local runtime behind ``plantwatch up`` and ``demo``: broker, services, wiring."""
