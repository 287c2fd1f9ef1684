"""Scenario files (TOML): which assets run, and which faults hit which asset when.

```toml
[run]                      # all optional
site = "s1"
duration = "150m"          # lets fault times be given as a share of the run ("40%")
rate = "10s"
seed = 7
load = "high"              # hold every asset at this level (low | medium | high) instead
                           # of its daily shift schedule (fleet runs only)

[[assets]]                 # optional; a fleet started with its own asset list ignores it
name = "pump-01"
kind = "pump"              # pump | fan
seed = 1

[[faults]]
asset = "pump-02"
type = "overheating"       # see simulator.faults.FaultType
start = "60m"              # offset from run start ("90s", "15m", "2h", "1d", "40%", seconds)
                           # or an absolute TOML datetime (1979-05-27T07:32:00Z)
duration = "1h"            # optional: repaired after this long; omitted = never
severity = 1.0             # peak severity (1 = textbook-size symptom)
profile = "linear"         # step | linear | accelerating (sensor faults but drift: step)
ramp = "10m"               # onset to peak
recovery = "0s"            # gradual return to normal after the repair
sensor = "bearing_temp_c"  # sensor_* faults: the corrupted channel
notes = "motor cooling fan failed"
```

Errors are :class:`ConfigError` naming the file and the key path (``faults[2].type``);
TOML syntax errors carry tomllib's line and column.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from edge.errors import ConfigError
from edge.wire import NAME_RE
from simulator.asset import AssetSpec
from simulator.faults import PROFILES, SENSOR_FAULTS, Fault, FaultType
from simulator.modes import LOADS
from simulator.physics import KINDS

DEMO_PATH = Path(__file__).parent / "scenarios" / "demo.toml"
MAX_SEVERITY = 5.0
"""Peak severity is a multiple of a textbook-size symptom; beyond this the physics breaks."""

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|min|s|m|h|d)")


def parse_duration(value: object, where: str) -> float:
    """Seconds from ``90``, ``"90s"``, ``"15m"``, ``"1min"``, ``"2h"``, ``"1d"``, ``"1h30m"``."""
    if isinstance(value, bool):
        raise ConfigError(f"{where}: expected a duration like '15m', got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        pos, seconds = 0, 0.0
        for match in _DURATION_RE.finditer(text):
            if match.start() != pos:
                break
            seconds += float(match[1]) * _UNITS[match[2]]
            pos = match.end()
        if pos != len(text) or not text:
            raise ConfigError(
                f"{where}: expected a duration like '90s', '15m', '2h' or '1d', got {value!r}"
            )
    else:
        raise ConfigError(f"{where}: expected a duration like '15m', got {value!r}")
    if not math.isfinite(seconds):
        raise ConfigError(f"{where}: expected a finite duration, got {value!r}")
    if seconds < 0:
        raise ConfigError(f"{where}: must not be negative, got {value!r}")
    return seconds


@dataclass(frozen=True, slots=True)
class When:
    """A point in a run: seconds after its start, a share of its duration, or absolute."""

    offset_s: float | None = None
    share: float | None = None
    absolute: float | None = None

    def resolve(self, start: float, duration_s: float | None, where: str) -> float:
        if self.absolute is not None:
            return self.absolute
        if self.share is not None:
            if duration_s is None:
                raise ConfigError(f"{where}: a percentage needs [run].duration")
            return start + self.share * duration_s
        return start + (self.offset_s or 0.0)


def parse_when(value: object, where: str) -> When:
    if isinstance(value, datetime):
        at = value if value.tzinfo else value.replace(tzinfo=UTC)
        return When(absolute=at.timestamp())
    if isinstance(value, date):
        return When(absolute=datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp())
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            share = float(value.strip()[:-1]) / 100.0
        except ValueError:
            raise ConfigError(f"{where}: expected a percentage like '40%', got {value!r}") from None
        if not 0.0 <= share <= 1.0:
            raise ConfigError(f"{where}: percentage must be within 0-100%, got {value!r}")
        return When(share=share)
    return When(offset_s=parse_duration(value, where))


@dataclass(frozen=True, slots=True)
class FaultDef:
    """A fault as written in a scenario; :meth:`Scenario.resolve` places it in time."""

    asset: str
    type: FaultType
    start: When
    duration_s: float | None = None
    severity: float = 1.0
    profile: str = "linear"
    ramp_s: float = 600.0
    recovery_s: float = 0.0
    sensor: str | None = None
    notes: str = ""
    where: str = "faults[0]"


@dataclass(frozen=True, slots=True)
class Scenario:
    faults: tuple[FaultDef, ...] = ()
    assets: tuple[AssetSpec, ...] = ()
    site: str = "s1"
    duration_s: float | None = None
    rate_s: float | None = None
    seed: int = 0
    load: str | None = None
    """Fleet runs hold every asset at this load level instead of its daily schedule."""
    source: str = "<scenario>"
    extra: Mapping[str, Any] = field(default_factory=dict)

    def check_assets(self, assets: Sequence[AssetSpec]) -> None:
        """Raise ConfigError for a fault on an unknown asset or one its kind cannot have."""
        by_name = {a.name: a for a in assets}
        for fault in self.faults:
            spec = by_name.get(fault.asset)
            if spec is None:
                known = ", ".join(sorted(by_name)) or "none"
                raise ConfigError(
                    f"{self.source}: {fault.where}.asset: unknown asset {fault.asset!r} "
                    f"(assets: {known})"
                )
            kind = KINDS[spec.kind]
            if fault.type in SENSOR_FAULTS:
                if fault.sensor not in kind.sensor_names:
                    raise ConfigError(
                        f"{self.source}: {fault.where}.sensor: {fault.sensor!r} is not a sensor "
                        f"of a {spec.kind} (expected one of {', '.join(kind.sensor_names)})"
                    )
            elif fault.type not in kind.faults:
                raise ConfigError(
                    f"{self.source}: {fault.where}.type: a {spec.kind} cannot have "
                    f"{fault.type.value} (expected one of "
                    f"{', '.join(sorted(t.value for t in kind.faults | SENSOR_FAULTS))})"
                )

    def resolve(self, start: float, duration_s: float | None = None) -> list[Fault]:
        """The faults in absolute time for a run starting at *start* (epoch seconds)."""
        duration = duration_s if duration_s is not None else self.duration_s
        out = []
        for fd in self.faults:
            onset = fd.start.resolve(start, duration, f"{self.source}: {fd.where}.start")
            out.append(
                Fault(
                    asset=fd.asset,
                    type=fd.type,
                    start=onset,
                    end=None if fd.duration_s is None else onset + fd.duration_s,
                    severity=fd.severity,
                    profile=fd.profile,
                    ramp_s=fd.ramp_s,
                    recovery_s=fd.recovery_s,
                    sensor=fd.sensor,
                    notes=fd.notes,
                )
            )
        return out


def load_scenario(path: str | Path) -> Scenario:
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read scenario ({exc.strerror})") from None
    return parse_scenario(text, str(p))


def demo_scenario() -> Scenario:
    """The demo's scenario: pumps pump-01..03 at site s1, pump-02 overheats at 40 % of the run."""
    return load_scenario(DEMO_PATH)


def parse_scenario(text: str, source: str = "<scenario>") -> Scenario:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: invalid TOML: {exc}") from None
    unknown = set(doc) - {"run", "assets", "faults"}
    if unknown:
        raise ConfigError(
            f"{source}: unknown table {sorted(unknown)[0]!r} (expected run, assets, faults)"
        )
    run = _table(doc.get("run", {}), "run", source)
    _keys(run, {"site", "duration", "rate", "seed", "load"}, "run", source)
    load = run.get("load")
    if load is not None and load not in LOADS:
        raise ConfigError(
            f"{source}: run.load: unknown load level {load!r} (expected {', '.join(LOADS)})"
        )
    site = run.get("site", "s1")
    if not isinstance(site, str) or not NAME_RE.match(site):
        raise ConfigError(f"{source}: run.site: expected a name matching {NAME_RE.pattern}")
    duration = _opt(run, "duration", lambda v, w: parse_duration(v, w), "run", source)
    rate = _opt(run, "rate", lambda v, w: parse_duration(v, w), "run", source)
    if rate is not None and rate <= 0:
        raise ConfigError(f"{source}: run.rate: must be positive")
    seed = _int(run.get("seed", 0), "run.seed", source)
    assets = tuple(_asset(a, i, source) for i, a in enumerate(_array(doc, "assets", source)))
    names = [a.name for a in assets]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise ConfigError(f"{source}: assets[{i}].name: duplicate asset {name!r}")
    faults = tuple(_fault(f, i, source) for i, f in enumerate(_array(doc, "faults", source)))
    scenario = Scenario(
        faults=faults,
        assets=assets,
        site=site,
        duration_s=duration,
        rate_s=rate,
        seed=seed,
        load=load,
        source=source,
    )
    if assets:
        scenario.check_assets(assets)
    return scenario


def _table(value: object, where: str, source: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: {where}: expected a table")
    return value


def _array(doc: dict[str, Any], key: str, source: str) -> list[dict[str, Any]]:
    value = doc.get(key, [])
    if not isinstance(value, list):
        raise ConfigError(f"{source}: {key}: expected an array of tables ([[{key}]])")
    return [_table(v, f"{key}[{i}]", source) for i, v in enumerate(value)]


def _keys(table: dict[str, Any], allowed: set[str], where: str, source: str) -> None:
    for key in table:
        if key not in allowed:
            raise ConfigError(
                f"{source}: {where}.{key}: unknown key (expected {', '.join(sorted(allowed))})"
            )


def _opt(table: dict[str, Any], key: str, conv: Any, where: str, source: str) -> Any:
    if key not in table:
        return None
    try:
        return conv(table[key], f"{where}.{key}")
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def _int(value: object, where: str, source: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(f"{source}: {where}: expected an integer, got {value!r}")
    return value


def _asset(table: dict[str, Any], i: int, source: str) -> AssetSpec:
    where = f"assets[{i}]"
    _keys(table, {"name", "kind", "seed"}, where, source)
    name = table.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ConfigError(
            f"{source}: {where}.name: expected a name matching {NAME_RE.pattern}, got {name!r}"
        )
    kind = table.get("kind", "pump")
    if kind not in KINDS:
        raise ConfigError(
            f"{source}: {where}.kind: unknown kind {kind!r} (expected {', '.join(KINDS)})"
        )
    return AssetSpec(name=name, kind=kind, seed=_int(table.get("seed", 0), f"{where}.seed", source))


def _fault(table: dict[str, Any], i: int, source: str) -> FaultDef:
    where = f"faults[{i}]"
    allowed = {"asset", "type", "start", "duration", "severity", "profile", "ramp", "recovery"}
    _keys(table, allowed | {"sensor", "notes"}, where, source)
    for key in ("asset", "type", "start"):
        if key not in table:
            raise ConfigError(f"{source}: {where}.{key}: required")
    asset = table["asset"]
    if not isinstance(asset, str):
        raise ConfigError(f"{source}: {where}.asset: expected a string, got {asset!r}")
    try:
        ftype = FaultType(table["type"])
    except ValueError:
        raise ConfigError(
            f"{source}: {where}.type: unknown fault type {table['type']!r} "
            f"(expected one of {', '.join(t.value for t in FaultType)})"
        ) from None
    try:
        start = parse_when(table["start"], f"{where}.start")
        duration = _opt(table, "duration", parse_duration, where, "")
        ramp = _opt(table, "ramp", parse_duration, where, "")
        recovery = _opt(table, "recovery", parse_duration, where, "")
    except ConfigError as exc:
        raise ConfigError(f"{source}: {str(exc).removeprefix(': ')}") from None
    if duration is not None and duration <= 0:
        raise ConfigError(f"{source}: {where}.duration: must be positive")
    severity = table.get("severity", 1.0)
    if (
        isinstance(severity, bool)
        or not isinstance(severity, int | float)
        or not 0 < severity <= MAX_SEVERITY
    ):
        raise ConfigError(
            f"{source}: {where}.severity: expected a number in (0, {MAX_SEVERITY:g}], "
            f"got {severity!r}"
        )
    default = "step" if ftype in SENSOR_FAULTS - {FaultType.SENSOR_DRIFT} else "linear"
    profile = table.get("profile", default)
    if profile not in PROFILES:
        raise ConfigError(
            f"{source}: {where}.profile: unknown profile {profile!r} (expected {', '.join(PROFILES)})"
        )
    sensor = table.get("sensor")
    if ftype in SENSOR_FAULTS and not isinstance(sensor, str):
        raise ConfigError(f"{source}: {where}.sensor: required for {ftype.value}")
    if ftype not in SENSOR_FAULTS and sensor is not None:
        raise ConfigError(f"{source}: {where}.sensor: only sensor_* faults take a sensor")
    notes = table.get("notes", "")
    if not isinstance(notes, str):
        raise ConfigError(f"{source}: {where}.notes: expected a string")
    return FaultDef(
        asset=asset,
        type=ftype,
        start=start,
        duration_s=duration,
        severity=float(severity),
        profile=profile,
        ramp_s=600.0 if ramp is None else ramp,
        recovery_s=0.0 if recovery is None else recovery,
        sensor=sensor,
        notes=notes,
        where=where,
    )
