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

Errors are :class:`ConfigError` naming the file, the line and the key path
(``demo.toml:23: faults[2].type: unknown fault type 'rust' ...``); TOML syntax errors carry
tomllib's line and column.
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

from edge.cliargs import parse_duration_text
from edge.errors import ConfigError
from edge.user_files import parse_problem, read_document_text
from edge.wire import NAME_RE
from simulator.asset import AssetSpec
from simulator.faults import PROFILES, SENSOR_FAULTS, Fault, FaultType
from simulator.modes import LOADS
from simulator.physics import KINDS

MIN_RATE_S = 0.001
"""The shortest sample period: readings are stamped in whole milliseconds (the wire
format's ``ts``), so a shorter one would give two readings one time."""

DEMO_PATH = Path(__file__).parent / "scenarios" / "demo.toml"
MAX_SEVERITY = 5.0
"""Peak severity is a multiple of a textbook-size symptom; beyond this the physics breaks."""


def parse_duration(value: object, where: str) -> float:
    """Seconds from ``90``, ``"90s"``, ``"15m"``, ``"1min"``, ``"2h"``, ``"1d"``, ``"1h30m"``."""
    if isinstance(value, bool):
        raise ConfigError(f"{where}: expected a duration like '15m', got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        try:
            seconds = parse_duration_text(value)
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from None
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

    def resolve(self, start: float, duration_s: float | None) -> float:
        if self.absolute is not None:
            return self.absolute
        if self.share is not None:
            if duration_s is None:
                raise ValueError("a percentage needs the run's duration")
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
    lines: Mapping[str, int] = field(default_factory=dict)
    """Key path (``faults[2].type``) -> line in the file, for error messages."""

    def error(self, path: str, message: str) -> ConfigError:
        """``file:line: path: message`` (the line of the key, else of its table)."""
        return _Locator(self.source, self.lines).error(path, message)

    def check_assets(self, assets: Sequence[AssetSpec]) -> None:
        """Raise ConfigError for a fault on an unknown asset or one its kind cannot have."""
        by_name = {a.name: a for a in assets}
        for fault in self.faults:
            spec = by_name.get(fault.asset)
            if spec is None:
                known = ", ".join(sorted(by_name)) or "none"
                raise self.error(
                    f"{fault.where}.asset", f"unknown asset {fault.asset!r} (assets: {known})"
                )
            kind = KINDS[spec.kind]
            if fault.type in SENSOR_FAULTS:
                if fault.sensor not in kind.sensor_names:
                    raise self.error(
                        f"{fault.where}.sensor",
                        f"{fault.sensor!r} is not a sensor of a {spec.kind} "
                        f"(expected one of {', '.join(kind.sensor_names)})",
                    )
            elif fault.type not in kind.faults:
                raise self.error(
                    f"{fault.where}.type",
                    f"a {spec.kind} cannot have {fault.type.value} (expected one of "
                    f"{', '.join(sorted(t.value for t in kind.faults | SENSOR_FAULTS))})",
                )

    def resolve(self, start: float, duration_s: float | None = None) -> list[Fault]:
        """The faults in absolute time for a run starting at *start* (epoch seconds)."""
        duration = duration_s if duration_s is not None else self.duration_s
        out = []
        for fd in self.faults:
            if fd.start.share is not None and duration is None:
                raise self.error(f"{fd.where}.start", "a percentage needs [run].duration")
            onset = fd.start.resolve(start, duration)
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
        text = read_document_text(p)
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read scenario ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}: {exc}") from None
    return parse_scenario(text, str(p))


def demo_scenario() -> Scenario:
    """The demo's scenario: pumps pump-01..03 at site s1, pump-02 overheats at 40 % of the run."""
    return load_scenario(DEMO_PATH)


_HEADER_RE = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_-]+)\s*\]\]?")
_KEY_RE = re.compile(r"^\s*([A-Za-z0-9_-]+)\s*=")


def key_lines(text: str) -> dict[str, int]:
    """Line numbers of tables and keys: ``run``, ``run.seed``, ``faults[1]``, ``faults[1].type``.

    A light scan of the layout scenario files use (one key per line); tomllib has already
    checked the syntax, and a key it cannot place just gets no line number.
    """
    lines: dict[str, int] = {}
    counts: dict[str, int] = {}
    table = ""
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER_RE.match(line)
        if header:
            name = header[2]
            if header[1] == "[[":
                index = counts.get(name, -1) + 1
                counts[name] = index
                table = f"{name}[{index}]"
            else:
                table = name
            lines.setdefault(table, number)
            continue
        key = _KEY_RE.match(line)
        if key:
            lines.setdefault(f"{table}.{key[1]}" if table else key[1], number)
    return lines


@dataclass(frozen=True, slots=True)
class _Locator:
    source: str
    lines: Mapping[str, int]

    def error(self, path: str, message: str) -> ConfigError:
        probe = path
        while probe and probe not in self.lines:
            probe = probe.rpartition(".")[0]
        where = f"{self.source}:{self.lines[probe]}" if probe else self.source
        return ConfigError(f"{where}: {path}: {message}")

    def call(self, path: str, parse: Any, value: object) -> Any:
        """Run a ``parse(value, where)`` helper, re-raising its error at *path*'s line."""
        try:
            return parse(value, path)
        except ConfigError as exc:
            raise self.error(path, str(exc).removeprefix(f"{path}: ")) from None


def parse_scenario(text: str, source: str = "<scenario>") -> Scenario:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: invalid TOML: {exc}") from None
    except (ValueError, RecursionError) as exc:  # past tomllib's own checks
        raise ConfigError(f"{source}: invalid TOML: {parse_problem(exc)}") from None
    at = _Locator(source, key_lines(text))
    for name in doc:
        if name not in ("run", "assets", "faults"):
            raise at.error(name, "unknown table (expected run, assets, faults)")
    run = _table(doc.get("run", {}), "run", at)
    _keys(run, {"site", "duration", "rate", "seed", "load"}, "run", at)
    site = run.get("site", "s1")
    if not isinstance(site, str) or not NAME_RE.fullmatch(site):
        raise at.error("run.site", f"expected a name matching {NAME_RE.pattern}, got {site!r}")
    duration = (
        at.call("run.duration", parse_duration, run["duration"]) if "duration" in run else None
    )
    rate = at.call("run.rate", parse_duration, run["rate"]) if "rate" in run else None
    if rate is not None and rate < MIN_RATE_S:
        raise at.error("run.rate", "must be at least 1ms")
    seed = _int(run.get("seed", 0), "run.seed", at)
    load = run.get("load")
    if load is not None and load not in LOADS:
        raise at.error("run.load", f"unknown load level {load!r} (expected {', '.join(LOADS)})")
    assets = tuple(_asset(a, i, at) for i, a in enumerate(_array(doc, "assets", at)))
    names = [a.name for a in assets]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise at.error(f"assets[{i}].name", f"duplicate asset {name!r}")
    faults = tuple(_fault(f, i, at) for i, f in enumerate(_array(doc, "faults", at)))
    scenario = Scenario(
        faults=faults,
        assets=assets,
        site=site,
        duration_s=duration,
        rate_s=rate,
        seed=seed,
        load=load,
        source=source,
        lines=at.lines,
    )
    if assets:
        scenario.check_assets(assets)
    return scenario


def _table(value: object, where: str, at: _Locator) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise at.error(where, "expected a table")
    return value


def _array(doc: dict[str, Any], key: str, at: _Locator) -> list[dict[str, Any]]:
    value = doc.get(key, [])
    if not isinstance(value, list):
        raise at.error(key, f"expected an array of tables ([[{key}]])")
    return [_table(v, f"{key}[{i}]", at) for i, v in enumerate(value)]


def _keys(table: dict[str, Any], allowed: set[str], where: str, at: _Locator) -> None:
    for key in table:
        if key not in allowed:
            raise at.error(f"{where}.{key}", f"unknown key (expected {', '.join(sorted(allowed))})")


def _int(value: object, where: str, at: _Locator) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise at.error(where, f"expected an integer, got {value!r}")
    return value


def _asset(table: dict[str, Any], i: int, at: _Locator) -> AssetSpec:
    where = f"assets[{i}]"
    _keys(table, {"name", "kind", "seed"}, where, at)
    name = table.get("name")
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise at.error(f"{where}.name", f"expected a name matching {NAME_RE.pattern}, got {name!r}")
    kind = table.get("kind", "pump")
    if kind not in KINDS:
        raise at.error(f"{where}.kind", f"unknown kind {kind!r} (expected {', '.join(KINDS)})")
    return AssetSpec(name=name, kind=kind, seed=_int(table.get("seed", 0), f"{where}.seed", at))


def _fault(table: dict[str, Any], i: int, at: _Locator) -> FaultDef:
    where = f"faults[{i}]"
    allowed = {"asset", "type", "start", "duration", "severity", "profile", "ramp", "recovery"}
    _keys(table, allowed | {"sensor", "notes"}, where, at)
    for key in ("asset", "type", "start"):
        if key not in table:
            raise at.error(f"{where}.{key}", "required")
    asset = table["asset"]
    if not isinstance(asset, str):
        raise at.error(f"{where}.asset", f"expected a string, got {asset!r}")
    try:
        ftype = FaultType(table["type"])
    except ValueError:
        raise at.error(
            f"{where}.type",
            f"unknown fault type {table['type']!r} "
            f"(expected one of {', '.join(t.value for t in FaultType)})",
        ) from None
    start = at.call(f"{where}.start", parse_when, table["start"])
    durations = {
        key: at.call(f"{where}.{key}", parse_duration, table[key])
        for key in ("duration", "ramp", "recovery")
        if key in table
    }
    duration = durations.get("duration")
    if duration is not None and duration <= 0:
        raise at.error(f"{where}.duration", "must be positive")
    severity = table.get("severity", 1.0)
    if (
        isinstance(severity, bool)
        or not isinstance(severity, int | float)
        or not 0 < severity <= MAX_SEVERITY
    ):
        raise at.error(
            f"{where}.severity", f"expected a number in (0, {MAX_SEVERITY:g}], got {severity!r}"
        )
    default = "step" if ftype in SENSOR_FAULTS - {FaultType.SENSOR_DRIFT} else "linear"
    profile = table.get("profile", default)
    if profile not in PROFILES:
        raise at.error(
            f"{where}.profile", f"unknown profile {profile!r} (expected {', '.join(PROFILES)})"
        )
    sensor = table.get("sensor")
    if ftype in SENSOR_FAULTS and not isinstance(sensor, str):
        raise at.error(f"{where}.sensor", f"required for {ftype.value}")
    if ftype not in SENSOR_FAULTS and sensor is not None:
        raise at.error(f"{where}.sensor", "only sensor_* faults take a sensor")
    notes = table.get("notes", "")
    if not isinstance(notes, str):
        raise at.error(f"{where}.notes", "expected a string")
    return FaultDef(
        asset=asset,
        type=ftype,
        start=start,
        duration_s=duration,
        severity=float(severity),
        profile=profile,
        ramp_s=durations.get("ramp", 600.0),
        recovery_s=durations.get("recovery", 0.0),
        sensor=sensor,
        notes=notes,
        where=where,
    )
