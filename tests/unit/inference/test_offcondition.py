"""The off condition's grammar (l4e-contracts §7): ``component\\sensor WS* (<|>) WS* number``,
as AWS's tools write it (``pump\\motor_current<1``) and as one AWS docstring spaces it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.inference.offcondition import OffCondition
from edge.errors import ConfigError

names = st.from_regex(r"[0-9A-Za-z._\-]{1,20}", fullmatch=True)
spaces = st.sampled_from(["", " ", "  ", "\t"])
numbers = st.one_of(
    st.integers(-(10**9), 10**9).map(str),
    st.floats(-1e9, 1e9, allow_nan=False).map(repr),
    st.sampled_from(["1.", ".5", "+3", "-0", "1e3", "2.5E-2", "4000"]),
)


@settings(max_examples=150, deadline=None)
@given(names, names, spaces, st.sampled_from("<>"), spaces, numbers)
def test_every_spelling_of_one_comparison_parses(
    component: str, sensor: str, before: str, op: str, after: str, number: str
) -> None:
    text = f"{component}\\{sensor}{before}{op}{after}{number}"
    condition = OffCondition.parse(text)
    assert (condition.sensor, condition.op, condition.value) == (
        f"{component}\\{sensor}",
        op,
        float(number),
    )
    # the machine is off where the comparison holds; a missing reading is not off
    values = np.array([condition.value - 1, condition.value, condition.value + 1, np.nan])
    frame = pd.DataFrame({condition.sensor: values})
    expected = values < condition.value if op == "<" else values > condition.value
    assert condition.mask(frame).tolist() == expected.tolist()


@pytest.mark.parametrize(
    "text",
    [
        "pump\\motor_current<1",  # AWS's tools
        "centrifugal-pump\\Sensor13<4000",
        "pump\\motor_current < 1",  # AWS's docstring spacing
    ],
)
def test_aws_examples_parse(text: str) -> None:
    assert OffCondition.parse(text).op == "<"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "pump\\flow = 1",
        "pump\\flow <= 1",
        "pump\\flow < 1 and pump\\temp > 2",  # one condition only
        "pump\\flow < 1; pump\\temp > 2",
        "< 1",
        "pump\\flow <",
        "pump\\flow < one",
        "pump\\flow < 1e999",
        "pump\\flow < nan",
        "pump flow < 1",
        "pump\\flow\n< 1\nx",
        "pump\\" + "f" * 2040 + " < 1",  # past 2048 characters
    ],
)
def test_anything_else_is_refused_in_one_line(text: str) -> None:
    with pytest.raises(ConfigError) as raised:
        OffCondition.parse(text)
    assert "\n" not in str(raised.value)


column_names = st.from_regex(r"[0-9A-Za-z._\\\-]{1,20}", fullmatch=True)
"""Column names as l4e-contracts §1.1 allows them: ``A-Z a-z 0-9 . \\ _ -``."""


@settings(max_examples=150, deadline=None)
@given(names, column_names, spaces, st.sampled_from("<>"), spaces, numbers)
def test_a_sensor_whose_column_name_holds_a_backslash_parses(
    component: str, column: str, before: str, op: str, after: str, number: str
) -> None:
    """§1.1: ``\\`` is a column-name character, and a component name holds none, so the
    component is what comes before the first ``\\`` and the sensor is all the rest."""
    condition = OffCondition.parse(f"{component}\\{column}{before}{op}{after}{number}")
    assert (condition.sensor, condition.op, condition.value) == (
        f"{component}\\{column}",
        op,
        float(number),
    )
    assert condition.plain_sensor == column
    # a frame of plain column names (a template model's) is read at the whole column name
    values = np.array([condition.value - 1, condition.value + 1])
    frame = pd.DataFrame({column: values, f"{column}x": values[::-1]})
    expected = values < condition.value if op == "<" else values > condition.value
    assert condition.mask(frame).tolist() == expected.tolist()
