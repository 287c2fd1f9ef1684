"""Readings to L4E input files: windows, de-duplication, late files, quarantine, spool."""

from cloud.batcher.batcher import Batcher, render_csv
from cloud.batcher.config import BatcherConfig
from cloud.batcher.quarantine import Quarantine
from cloud.batcher.spool import Spool, SpoolPort
from cloud.batcher.store_spool import ObjectStoreSpool

__all__ = [
    "Batcher",
    "BatcherConfig",
    "ObjectStoreSpool",
    "Quarantine",
    "Spool",
    "SpoolPort",
    "render_csv",
]
