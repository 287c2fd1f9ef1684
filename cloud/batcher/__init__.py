"""Readings to L4E input files: windows, de-duplication, late files, quarantine, spool."""

from cloud.batcher.batcher import Batcher, render_csv
from cloud.batcher.config import BatcherConfig
from cloud.batcher.quarantine import Quarantine
from cloud.batcher.spool import Spool

__all__ = ["Batcher", "BatcherConfig", "Quarantine", "Spool", "render_csv"]
