"""plantwatch device side: the agent that runs on field devices and gateways.

``edge.wire``, ``edge.errors`` and ``edge.clock`` are stdlib-only and shared by every side.
"""
