"""Inference input file names: ``<prefix><component><delimiter><timestamp>.csv``.

The timestamp in the name is the *end* of the upload window it belongs to, written in the
scheduler's ``InputTimeZoneOffset`` (EPOCH names are absolute and ignore the offset).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from edge.errors import ConfigError

TIMESTAMP_FORMATS = ("yyyyMMddHHmmss", "yyyy-MM-dd-HH-mm-ss", "EPOCH")
DELIMITERS = ("_", "-", " ", "", "\t", "\n", "\x0b", "\f", "\r")
r"""``ComponentTimestampDelimiter``'s pattern ``^(\-|\_|\s)?$`` (API reference,
InferenceInputNameConfiguration): a hyphen, an underscore, nothing, or one whitespace
character as the service's ``\s`` matches it (space, tab, line feed, vertical tab, form
feed, carriage return)."""
COMPONENT_RE = re.compile(r"^[0-9a-zA-Z._\-]{1,200}$")
TZ_OFFSET_RE = re.compile(r"^([+-])([0-9]{2}):([0-9]{2})$")
"""``InputTimeZoneOffset``'s pattern; ASCII digits only (``\\d`` would take any script's)."""
UPLOAD_FREQUENCIES = {"PT5M": 300, "PT10M": 600, "PT15M": 900, "PT30M": 1800, "PT1H": 3600}

_STRFTIME = {"yyyyMMddHHmmss": "%Y%m%d%H%M%S", "yyyy-MM-dd-HH-mm-ss": "%Y-%m-%d-%H-%M-%S"}
_LAYOUT = {
    "yyyyMMddHHmmss": "{:04d}{:02d}{:02d}{:02d}{:02d}{:02d}",
    "yyyy-MM-dd-HH-mm-ss": "{:04d}-{:02d}-{:02d}-{:02d}-{:02d}-{:02d}",
}
"""Name layouts with the year always four digits (``%Y`` writes year 999 as ``999``)."""
_TS_PATTERN = {
    "yyyyMMddHHmmss": r"[0-9]{14}",
    "yyyy-MM-dd-HH-mm-ss": r"[0-9]{4}-[0-9]{2}-[0-9]{2}-[0-9]{2}-[0-9]{2}-[0-9]{2}",
    "EPOCH": r"[0-9]{1,12}",
}
"""ASCII digits only: ``\\d`` also takes fullwidth or Arabic-Indic digits, which ``int``
reads, so ``pump_１６５２４４４１００.csv`` was a second name for the same window."""
_EPOCH_NO_DELIMITER_MAX = 10**10
"""Without a delimiter an EPOCH name carries exactly 10 digits (see :meth:`parse`)."""


@dataclass(frozen=True, slots=True)
class InputNaming:
    """A scheduler's ``InferenceInputNameConfiguration`` plus ``InputTimeZoneOffset``.

    Defaults are AWS's sample defaults, used when a scheduler gives no name configuration.
    """

    delimiter: str = "_"
    timestamp_format: str = "yyyyMMddHHmmss"
    tz_offset: str = "+00:00"

    def __post_init__(self) -> None:
        if self.delimiter not in DELIMITERS:
            raise ConfigError(
                f"ComponentTimestampDelimiter {self.delimiter!r}: expected '-', '_', '' or "
                "one whitespace character (a space, a tab, ...)"
            )
        if self.timestamp_format not in TIMESTAMP_FORMATS:
            raise ConfigError(
                f"TimestampFormat {self.timestamp_format!r}: expected one of "
                f"{', '.join(TIMESTAMP_FORMATS)}"
            )
        tz_offset_seconds(self.tz_offset)

    def format(self, component: str, at: datetime, prefix: str = "") -> str:
        """The key of *component*'s file for the window ending at *at* (aware, any zone)."""
        if not COMPONENT_RE.fullmatch(component):
            raise ConfigError(f"component {component!r}: must match {COMPONENT_RE.pattern}")
        return f"{prefix}{component}{self.delimiter}{self.format_timestamp(at)}.csv"

    def format_timestamp(self, at: datetime) -> str:
        """The name's timestamp for *at*; a ConfigError for an instant no name of this
        configuration can carry so that it parses back (rather than a name read as another
        instant, or another component)."""
        at = _aware(at)
        if self.timestamp_format == "EPOCH":
            seconds = int(at.timestamp())
            if seconds < 0:
                raise ConfigError(
                    f"{at.isoformat()}: before 1970, so no TimestampFormat EPOCH name holds it"
                )
            if not self.delimiter:  # parse reads exactly 10 digits there (see parse)
                if seconds >= _EPOCH_NO_DELIMITER_MAX:
                    raise ConfigError(
                        f"{at.isoformat()}: TimestampFormat EPOCH with an empty "
                        "ComponentTimestampDelimiter names only instants before "
                        "2286-11-20T17:46:40Z (10 digits)"
                    )
                return f"{seconds:010d}"
            return str(seconds)
        try:
            local = at.astimezone(timezone(timedelta(seconds=tz_offset_seconds(self.tz_offset))))
        except OverflowError:
            raise ConfigError(
                f"{at.isoformat()}: at InputTimeZoneOffset {self.tz_offset} the name's time "
                "falls outside years 1 to 9999"
            ) from None
        return _LAYOUT[self.timestamp_format].format(
            local.year, local.month, local.day, local.hour, local.minute, local.second
        )

    def parse(self, key: str, prefix: str = "") -> tuple[str, datetime] | None:
        """``(component, UTC time)`` from a key, or None if the key is not an input file
        (which includes a name whose timestamp is no real instant, such as month 13).

        With an empty delimiter the component is everything before the timestamp digits, and
        EPOCH names are read as exactly 10 digits (2001-09-09 to 2286), the only way such a
        name is unambiguous.
        """
        if not key.startswith(prefix) or not key.endswith(".csv"):
            return None
        name = key[len(prefix) : -len(".csv")]
        if "/" in name:
            return None
        ts_pattern = _TS_PATTERN[self.timestamp_format]
        if self.timestamp_format == "EPOCH" and not self.delimiter:
            ts_pattern = r"[0-9]{10}"
        pattern = rf"^(?P<c>.+?){re.escape(self.delimiter)}(?P<t>{ts_pattern})$"
        match = re.fullmatch(pattern, name)
        if not match or not COMPONENT_RE.fullmatch(match["c"]):
            return None
        try:
            return match["c"], self.parse_timestamp(match["t"])
        except (ValueError, OverflowError):  # month 13, Feb 30, an EPOCH past year 9999
            return None

    def parse_timestamp(self, text: str) -> datetime:
        if self.timestamp_format == "EPOCH":
            return datetime.fromtimestamp(int(text), tz=UTC)
        zone = timezone(timedelta(seconds=tz_offset_seconds(self.tz_offset)))
        local = datetime.strptime(text, _STRFTIME[self.timestamp_format]).replace(tzinfo=zone)
        return local.astimezone(UTC)


KEY_PATTERN_DELIMITERS = ("_", " ", ".", "-")
"""The ``[DELIMITER]`` of the flat historical KeyPattern ``{prefix}/{component_name}[DELIMITER]*``
(``IngestionS3InputConfiguration``: space, dot, underscore or hyphen); ``_`` is also
L4E's ``{prefix}/{component_name}_*``."""


def plain_sensor(name: str) -> str:
    """``component\\column`` -> ``column``, the name input files and readings use. A component
    holds no ``\\`` and a column may (l4e-contracts §1.1), so the split is at the first one;
    a name without a component is returned as it is."""
    return name.partition("\\")[2] or name


def flat_component(filename: str, delimiter: str | None = None) -> str | None:
    """The component of a historical file flat under the dataset prefix, or None when the
    name gives none (l4e-contracts §1.1).

    L4E matches ``{component_name}[DELIMITER]*`` against the components of the dataset's
    schema, with the one delimiter the ingestion's KeyPattern names. Without a schema the
    component is the name up to the first *delimiter* (the whole file name: with ``.``,
    ``pump.csv`` is ``pump``, as ``pump.*`` matches it); a name without it matches no
    pattern. With no delimiter given, plantwatch's default takes the stem up to the first
    ``_`` or space: both patterns at once, leaving hyphens and dots to the name, since
    asset names hold them (``pump-01_2023.csv`` is ``pump-01``).
    """
    if delimiter is None:
        stem = filename.rpartition(".")[0] if "." in filename else filename
        component = re.split(r"[_ ]", stem, maxsplit=1)[0]
    elif delimiter not in KEY_PATTERN_DELIMITERS:
        raise ConfigError(
            f"KeyPattern delimiter {delimiter!r}: expected one of "
            f"{', '.join(repr(d) for d in KEY_PATTERN_DELIMITERS)} (space, dot, underscore, "
            "hyphen)"
        )
    else:
        component, found, _rest = filename.partition(delimiter)
        if not found:
            return None
    return component if COMPONENT_RE.fullmatch(component) else None


def tz_offset_seconds(offset: str) -> int:
    """``+05:30`` -> 19800; names the problem on bad input."""
    match = TZ_OFFSET_RE.fullmatch(offset) if isinstance(offset, str) else None
    if not match or int(match[3]) >= 60 or int(match[2]) > 23:
        raise ConfigError(
            f"InputTimeZoneOffset {offset!r}: expected +HH:MM or -HH:MM with HH 00 to 23 "
            "and MM 00 to 59, e.g. +05:30 or -00:00"
        )
    seconds = int(match[2]) * 3600 + int(match[3]) * 60
    return -seconds if match[1] == "-" else seconds


def upload_frequency_seconds(frequency: str) -> int:
    try:
        return UPLOAD_FREQUENCIES[frequency]
    except (KeyError, TypeError):  # TypeError: a list or another unhashable value
        raise ConfigError(
            f"DataUploadFrequency {frequency!r}: expected one of {', '.join(UPLOAD_FREQUENCIES)}"
        ) from None


def format_row_timestamp(at: datetime) -> str:
    """Row and results timestamps: ``yyyy-MM-ddTHH:mm:ss.ffffff`` in UTC, no zone suffix."""
    return _aware(at).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def window_end(t: float, frequency_s: int) -> float:
    """End of the upload window ``(E - F, E]`` holding epoch second *t*."""
    q, r = divmod(t, frequency_s)
    return (q if r == 0 else q + 1) * frequency_s


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)
