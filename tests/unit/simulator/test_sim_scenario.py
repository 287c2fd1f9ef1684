"""Scenario files: what parses, and errors that name the line or the key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.errors import ConfigError
from simulator.asset import AssetSpec
from simulator.faults import FaultType
from simulator.scenario import demo_scenario, load_scenario, parse_duration, parse_scenario

GOOD = """
[run]
site = "s2"
duration = "10h"
rate = "10s"
seed = 5

[[assets]]
name = "p1"

[[assets]]
name = "f1"
kind = "fan"

[[faults]]
asset = "p1"
type = "bearing_wear"
start = "2h"
duration = "3h"
profile = "accelerating"
ramp = "1h30m"
recovery = "10m"
severity = 0.8

[[faults]]
asset = "f1"
type = "sensor_stuck"
sensor = "motor_temp_c"
start = "50%"

[[faults]]
asset = "p1"
type = "leak"
start = 2026-01-12T08:00:00Z
"""


def test_parses_a_full_scenario_and_resolves_times() -> None:
    sc = parse_scenario(GOOD, "good.toml")
    assert sc.site == "s2" and sc.duration_s == 36_000 and sc.rate_s == 10 and sc.seed == 5
    assert sc.assets == (AssetSpec("p1", "pump", 0), AssetSpec("f1", "fan", 0))
    faults = sc.resolve(1_000_000.0)
    wear, stuck, leak = faults
    assert wear.type is FaultType.BEARING_WEAR
    assert (wear.start, wear.end, wear.ramp_s, wear.recovery_s) == (
        1_007_200.0,
        1_018_000.0,
        5400.0,
        600.0,
    )
    assert wear.profile == "accelerating" and wear.severity == 0.8
    assert stuck.start == 1_018_000.0 and stuck.end is None and stuck.sensor == "motor_temp_c"
    assert leak.start == 1_768_204_800.0


def test_demo_scenario_has_three_pumps_and_a_fault_on_pump_02_after_40_percent() -> None:
    sc = demo_scenario()
    assert [a.name for a in sc.assets] == ["pump-01", "pump-02", "pump-03"]
    assert sc.site == "s1" and sc.load == "high"
    (fault,) = sc.resolve(0.0)
    assert fault.asset == "pump-02"
    assert fault.type in (FaultType.BEARING_WEAR, FaultType.OVERHEATING)
    assert fault.start == pytest.approx(0.4 * sc.duration_s)


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ('[[faults]]\nasset = "p1"\ntype = "gremlins"\nstart = "1h"', 3, "faults[0].type: unknown fault type 'gremlins'"),
        ('[[faults]]\nasset = "p1"\ntype = "leak"\nstart = "1h"\nduration = -5', 5, "faults[0].duration: must not be negative"),
        ('[[faults]]\nasset = "p1"\ntype = "leak"\nstart = "-1h"', 4, "faults[0].start: must not be negative, got '-1h'"),
        ('[[faults]]\nasset = "p1"\ntype = "leak"\nstart = "1h"\nduration = "-2h"', 5, "faults[0].duration: must not be negative, got '-2h'"),
        ('[[assets]]\nname = "p1"\n[[faults]]\nasset = "p9"\ntype = "leak"\nstart = "1h"', 4, "faults[0].asset: unknown asset 'p9' (assets: p1)"),
        ('[[faults]]\nasset = "p1"\ntype = "leak"', 1, "faults[0].start: required"),
        ('[[faults]]\nasset = "p1"\ntype = "sensor_drift"\nstart = "1h"', 1, "faults[0].sensor: required for sensor_drift"),
        ('[[assets]]\nname = "p1"\n[[faults]]\nasset = "p1"\ntype = "sensor_drift"\nsensor = "nope"\nstart = "1h"', 6, "faults[0].sensor: 'nope' is not a sensor of a pump"),
        ('[[assets]]\nname = "f1"\nkind = "fan"\n[[faults]]\nasset = "f1"\ntype = "cavitation"\nstart = "1h"', 6, "faults[0].type: a fan cannot have cavitation"),
        ('[[faults]]\nasset = "p1"\ntype = "leak"\nstart = "1h"\nprofile = "wobbly"', 5, "faults[0].profile: unknown profile 'wobbly'"),
        ('[[faults]]\nasset = "p1"\ntype = "leak"\nstart = "1h"\nsevere = 2', 5, "faults[0].severe: unknown key"),
        ('[[faults]]\nasset = "p1"\ntype = "leak"\nstart = "150%"', 4, "faults[0].start: percentage must be within 0-100%"),
        ('[[assets]]\nname = "p1"\nkind = "turbine"', 3, "assets[0].kind: unknown kind 'turbine'"),
        ('[[assets]]\nname = "p 1"', 2, "assets[0].name: expected a name"),
        ('[[assets]]\nname = "p1"\n[[assets]]\nname = "p1"', 4, "assets[1].name: duplicate asset 'p1'"),
        ('[run]\nrate = "fast"', 2, "run.rate: expected a duration"),
        ('[run]\nrate = "250us"', 2, "run.rate: expected a duration"),
        ('[run]\nrate = "0.5ms"', 2, "run.rate: must be at least 1ms"),
        ("[pumps]\nx = 1", 1, "pumps: unknown table (expected run, assets, faults)"),
        ('[[faults]]\nasset = "p1"\ntype = "leak"\nstart = "1h"\nseverity = nan', 5, "faults[0].severity: expected a number in (0, 5]"),
        ('[[faults]]\nasset = "p1"\ntype = "leak"\nstart = "1h"\nduration = inf', 5, "faults[0].duration: expected a finite duration"),
        ('[run]\nseed = 1\nload = "max"', 3, "run.load: unknown load level 'max' (expected low, medium, high)"),
        ('# a comment\n\n[[faults]]\nasset = "p1"\n\n  type   =   "x"\nstart = "1h"', 6, "faults[0].type: unknown fault type 'x'"),
        ('[[faults]]\nasset = "p1"\ntype = "leak"\nstart = "1h"\n[[faults]]\nasset = "p1"\ntype = "leak"\nstart = "1h"\nramp = "soon"', 9, "faults[1].ramp: expected a duration"),
    ],
)  # fmt: skip
def test_bad_scenarios_name_the_line_and_key_path(text: str, line: int, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_scenario(text, "bad.toml")
    assert str(err.value).startswith(f"bad.toml:{line}: ")
    assert message in str(err.value)


def test_toml_syntax_errors_give_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text('[[faults]]\nasset = "p1"\ntype = leak\n')
    with pytest.raises(ConfigError, match=r"broken\.toml: invalid TOML: .*line 3"):
        load_scenario(path)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read scenario"):
        load_scenario(tmp_path / "nope.toml")


def test_percentage_without_run_duration_is_an_error() -> None:
    sc = parse_scenario('[[faults]]\nasset = "p1"\ntype = "leak"\nstart = "50%"', "s.toml")
    with pytest.raises(ConfigError, match=r"faults\[0\]\.start: a percentage needs"):
        sc.resolve(0.0)
    assert sc.resolve(0.0, 100.0)[0].start == 50.0


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("15m", 900), ("1min", 60), ("2h", 7200), ("1d", 86400), ("1h30m", 5400),
     (45, 45), (0.5, 0.5), ("250ms", 0.25)],
)  # fmt: skip
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text, "x") == seconds


@pytest.mark.parametrize("text", ["", "5", "5 parsecs", "m5", "1h-5m", True])
def test_bad_durations(text: object) -> None:
    with pytest.raises(ConfigError, match="x: "):
        parse_duration(text, "x")
