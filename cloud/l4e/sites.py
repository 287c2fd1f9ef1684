"""Sites are tenants: each site's input files, results and detector keys stay apart.

L4E names an input file by its component alone, so one flat prefix cannot hold the
``pump-01`` of two sites: their readings would merge into one CSV. plantwatch extends the
naming with one folder per site, and a configured *default site* keeps exactly the names a
single-site deployment has always had:

============  ========================================  =================================================
              default site (``s1`` unless configured)   any other site
============  ========================================  =================================================
input         ``input/<asset>_<ts>.csv``                ``input/<site>/<asset>_<ts>.csv``
results       ``output/<asset>/<start>/results.jsonl``  ``output/<site>/<asset>/<start>/results.jsonl``
detector key  ``<asset>``                               ``<site>:<asset>``
============  ========================================  =================================================

Each site's folder is an ordinary L4E input prefix: a scheduler reading ``input/<site>/``
writes ``output/<site>/``. L4E lists input files flat under its prefix (a name holding a
``/`` is not an input file), so the default site's scheduler on ``input/`` never reads
another site's files. The detector key joins site and asset with ``:``, which IoT Events
allows in key values and which no site or asset name contains.

Shadows are not split: a device's shadow belongs to its thing name, which AWS IoT keeps
unique per account and region, so two sites whose devices share a thing name share its
shadow; give such things distinct names.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge.errors import ConfigError
from edge.wire import NAME_RE

DEFAULT_SITE = "s1"
"""The site name the simulator, the demo and the scenarios use when none is given."""
KEY_SEPARATOR = ":"


@dataclass(frozen=True, slots=True)
class SiteLayout:
    """Where a site's objects live; ``default_site=None`` gives every site its own folder."""

    default_site: str | None = DEFAULT_SITE

    def __post_init__(self) -> None:
        if self.default_site is not None and not NAME_RE.fullmatch(self.default_site):
            raise ConfigError(f"default site {self.default_site!r}: must match {NAME_RE.pattern}")

    def prefix(self, base: str, site: str) -> str:
        """``input/`` for the default site, ``input/<site>/`` for any other."""
        return base if site == self.default_site else f"{base}{site}/"

    def key(self, site: str, asset: str) -> str:
        """The asset's key among every site's: ``<asset>`` or ``<site>:<asset>``."""
        return asset if site == self.default_site else f"{site}{KEY_SEPARATOR}{asset}"

    def split(self, key: str) -> tuple[str, str]:
        """``(site, asset)`` of a :meth:`key`; a bare asset belongs to the default site."""
        site, sep, asset = key.rpartition(KEY_SEPARATOR)
        if sep:
            return site, asset
        if self.default_site is None:
            raise ConfigError(f"key {key!r}: names no site and there is no default site")
        return self.default_site, key
