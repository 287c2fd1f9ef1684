"""The batcher's settings, frozen: one upload frequency, one naming, one quarantine prefix."""

from __future__ import annotations

from dataclasses import dataclass, field

from cloud.l4e.naming import UPLOAD_FREQUENCIES, InputNaming
from cloud.l4e.sites import SiteLayout
from edge.errors import ConfigError

MAX_SENSORS = 3_000
"""Sensor columns one input file may have: L4E's limit of 3,000 sensors per dataset
(l4e-contracts §1.4; ``cloud.inference.dataset.MAX_DATASET_SENSORS``), which a component's
file cannot pass either."""


@dataclass(frozen=True)
class BatcherConfig:
    """Where and how input files are written; mirrors the scheduler that will read them.

    ``prefix``, ``upload_frequency_s`` and ``naming`` must equal the scheduler's
    ``S3InputConfiguration.Prefix``, ``DataUploadFrequency`` and name configuration, or the
    scheduler will not find the files. ``prefix`` is the default site's; any other site
    writes under ``<prefix><site>/`` (:mod:`cloud.l4e.sites`), where its own scheduler reads.
    """

    prefix: str = "input/"
    upload_frequency_s: int = 300
    grace_s: float = 30.0
    naming: InputNaming = field(default_factory=InputNaming)
    quarantine_prefix: str = "quarantine/"
    known_assets: frozenset[str] | None = None
    max_skew_s: float = 7 * 24 * 3600
    sites: SiteLayout = field(default_factory=SiteLayout)
    quarantine_keep_bytes: int = 4096
    """How much of an oversized payload (over the wire limit) the quarantine keeps."""
    max_sensors: int = MAX_SENSORS
    """Sensor columns per input file (:data:`MAX_SENSORS` at most): a message with more
    distinct sensors is quarantined, and so are the messages that would take a window's
    file past it (``too_many_sensors``)."""

    def __post_init__(self) -> None:
        if self.upload_frequency_s not in UPLOAD_FREQUENCIES.values():
            allowed = ", ".join(str(v) for v in UPLOAD_FREQUENCIES.values())
            raise ConfigError(f"upload_frequency_s {self.upload_frequency_s}: expected {allowed}")
        if self.prefix and not self.prefix.endswith("/"):
            raise ConfigError(f"prefix {self.prefix!r}: must be empty or end in '/'")
        if not self.quarantine_prefix.endswith("/"):
            raise ConfigError(f"quarantine_prefix {self.quarantine_prefix!r}: must end in '/'")
        if self.quarantine_prefix.startswith(self.prefix) and self.prefix:
            raise ConfigError(
                f"quarantine_prefix {self.quarantine_prefix!r}: must not lie under the input "
                f"prefix {self.prefix!r} (the scheduler would list it)"
            )
        if self.grace_s < 0:
            raise ConfigError(f"grace_s {self.grace_s}: must be >= 0")
        if self.quarantine_keep_bytes < 0:
            raise ConfigError(f"quarantine_keep_bytes {self.quarantine_keep_bytes}: must be >= 0")
        if not 1 <= self.max_sensors <= MAX_SENSORS:
            raise ConfigError(
                f"max_sensors {self.max_sensors}: expected 1 to {MAX_SENSORS:,} "
                "(L4E: at most 3,000 sensors per dataset)"
            )
        if self.max_skew_s <= 0:
            raise ConfigError(f"max_skew_s {self.max_skew_s}: must be > 0")
