"""Lookout for Equipment's public contracts: input file naming and time formats.

Shared by the batcher (which writes the input bucket) and the scheduler (which reads it),
so both sides agree byte for byte.
"""
