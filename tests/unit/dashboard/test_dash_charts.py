"""Server-side SVG: well-formed, escaped, with the marks each widget promises."""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from cloud.dashboard import charts

NS = {"svg": "http://www.w3.org/2000/svg"}


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def test_time_series_draws_lines_threshold_bands_and_local_time_ticks() -> None:
    t0 = datetime(2026, 1, 5, 6, 0, tzinfo=UTC).timestamp()
    points = [(t0 + 60 * i, 0.1 + 0.01 * i) for i in range(120)]
    svg = charts.time_series(
        "score <of> pump",
        [
            charts.Series("score", points),
            charts.Series("flagged", points[100:], "alarm", dots=True),
        ],
        y_min=0,
        y_max=1,
        lines=[charts.Line(0.5, "threshold 0.5")],
        bands=[charts.Band(t0 + 600, t0 + 1200, "event")],
    )
    root = parse(svg)
    assert root.find("svg:title", NS).text == "score <of> pump"
    [line] = root.findall(".//svg:polyline", NS)
    assert len(line.get("points").split()) == 120
    assert len(root.findall(".//svg:circle", NS)) == 20
    assert root.find(".//svg:line[@class='ref']", NS) is not None
    assert root.find(".//svg:rect[@class='band']", NS) is not None
    ticks = root.findall(".//svg:text[@data-ts]", NS)
    assert ticks and all(int(t.get("data-ts")) % 900 == 0 for t in ticks)
    assert ticks[0].find("svg:title", NS).text.endswith("UTC")


def test_names_are_escaped_and_empty_data_says_so() -> None:
    svg = charts.hbars(
        "x", [("<script>alert(1)</script>", 0.5)], reference=charts.Line(0.25, "1/N")
    )
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    parse(svg)
    assert "no data yet" in charts.time_series("empty", [charts.Series("a", [])])
    assert "no events" in charts.vbars("none", [])


def test_ribbon_colours_each_slice_by_what_it_holds() -> None:
    cells = [
        {"start": "a", "rows": 0, "anomalous": 0, "off": 0},
        {"start": "b", "rows": 10, "anomalous": 0, "off": 0},
        {"start": "c", "rows": 10, "anomalous": 5, "off": 0},
        {"start": "d", "rows": 10, "anomalous": 0, "off": 10},
    ]
    rects = parse(charts.ribbon("r", cells)).findall("svg:rect", NS)
    assert [r.get("class") for r in rects] == [
        "cell nodata",
        "cell normal",
        "cell anomalous",
        "cell off",
    ]
    assert rects[2].find("svg:title", NS).text == "c: 5/10 anomalous"


@given(st.floats(0, 1e9), st.floats(60, 1e7))
def test_time_ticks_are_round_and_inside(start: float, span: float) -> None:
    ticks = charts.time_ticks(start, start + span)
    assert all(start <= t <= start + span for t in ticks)
    assert len(ticks) <= 12


@given(st.floats(-1e6, 1e6), st.floats(1e-3, 1e6))
def test_value_ticks_cover_the_range_in_equal_steps(low: float, span: float) -> None:
    ticks = charts.value_ticks(low, low + span)
    assert ticks and all(low - 1e-6 * span <= t <= low + span * (1 + 1e-6) for t in ticks)
    steps = {round(b - a, 6) for a, b in itertools.pairwise(ticks)}
    assert len(steps) <= 1 or max(steps) - min(steps) <= 1e-6 * span


@given(
    st.lists(
        st.floats(allow_nan=False, allow_infinity=False),
        min_size=1,
        max_size=20,
    )
)
def test_any_finite_readings_draw_a_well_formed_chart(values: list[float]) -> None:
    """A raw trace holding 1.7e308 and -1.7e308 made the axis span infinite and its ticks
    raise OverflowError: a 500 for the whole asset page."""
    t0 = datetime(2026, 1, 5, 6, 0, tzinfo=UTC).timestamp()
    svg = charts.time_series(
        "raw", [charts.Series("x", [(t0 + i, v) for i, v in enumerate(values)])]
    )
    root = parse(svg)
    assert "nan" not in svg and "inf" not in svg
    assert root.find("svg:title", NS).text == "raw"


def test_readings_at_the_ends_of_the_float_range_are_drawn() -> None:
    t0 = datetime(2026, 1, 5, 6, 0, tzinfo=UTC).timestamp()
    points = [(t0, 1.7e308), (t0 + 10, -1.7e308), (t0 + 20, 0.0)]
    [line] = parse(charts.time_series("raw", [charts.Series("x", points)])).findall(
        ".//svg:polyline", NS
    )
    assert len(line.get("points").split()) == 3
