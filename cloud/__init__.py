"""plantwatch cloud side: everything after the broker.

Engines (rules, batcher, inference, detectors, alerts, shadow documents) are plain Python
that talk to the world only through ``cloud.ports``; adapters live in ``cloud.adapters``.
"""
