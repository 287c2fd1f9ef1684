"""A template (YAML or JSON) that repeats a key in one mapping is refused naming the key and
its lines, as cfn-lint refuses it (E0000 "Duplicate found", at load, for YAML and JSON);
CloudFormation itself would deploy the last one silently, which is how a copy-pasted
resource or property ends up ignored."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud.cli.main import main
from cloud.migrate.cfn_yaml import load_yaml
from cloud.migrate.cloudformation import load_json
from edge.errors import UserError

YAML = """\
Resources:
  PumpInput:
    Type: AWS::IoTEvents::Input
    Properties:
      InputName: PumpInput
      InputDefinition:
        Attributes:
          - JsonPath: pump.id
  PumpInput:
    Type: AWS::IoTEvents::Input
    Properties:
      InputName: OtherInput
      InputDefinition:
        Attributes:
          - JsonPath: pump.rpm
"""

JSON = """\
{
  "Resources": {
    "PumpInput": {
      "Type": "AWS::IoTEvents::Input",
      "Properties": {
        "InputName": "PumpInput",
        "InputDefinition": {"Attributes": [{"JsonPath": "pump.id"}]},
        "InputName": "OtherInput"
      }
    }
  }
}
"""


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("stack.yaml", YAML, "cfn/stack.yaml: not valid YAML: line 9, column 3: duplicate key "
         "'PumpInput' (also on line 2); keep one"),
        ("stack.json", JSON, "cfn/stack.json: not valid JSON: line 8, column 9: duplicate key "
         "'InputName' (also on line 6); keep one"),
    ],
)  # fmt: skip
def test_import_refuses_a_repeated_key_on_one_line_naming_it_and_registers_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str, text: str, expected: str
) -> None:
    folder = tmp_path / "cfn"
    folder.mkdir()
    (folder / name).write_text(text)
    data = tmp_path / "data"
    assert main(["import", "iotevents", str(folder), "--data", str(data)]) == 2
    err = capsys.readouterr().err
    assert err == f"plantwatch: error: {expected}\n"
    assert not (data / "detectors").exists()


def test_validate_refuses_a_json_template_with_a_repeated_key(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """``detectors validate`` must not fall back to reading the file as a Create body."""
    path = tmp_path / "stack.json"
    path.write_text(JSON)
    assert main(["detectors", "validate", "--input", str(path), str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "duplicate key 'InputName'" in err, err


def test_a_key_that_overrides_a_merged_one_is_not_a_duplicate() -> None:
    """YAML merge keys (``<<: *base``) exist to be overridden; cfn-lint's E0000 flags that
    too (cfn-lint#2993), which is not followed here."""
    text = "base: &b {x: '1', y: '2'}\nother:\n  <<: *b\n  y: '3'\n"
    assert load_yaml(text, "t.yaml")["other"] == {"x": "1", "y": "3"}


def test_the_same_key_in_two_mappings_is_fine() -> None:
    text = '{"a": {"Type": "x"}, "b": {"Type": "y"}, "Type": "z"}'
    assert load_json(text, "t.json") == json.loads(text)
    assert load_yaml("a: {Type: x}\nb: {Type: y}\nType: z\n", "t.yaml") == json.loads(text)


KEYS = st.sampled_from(["a", "b", "Type", "Ref", "é", "a b", 'q"uote'])


def _documents(depth: int = 2) -> st.SearchStrategy[object]:
    scalar = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.sampled_from(["", "v"]))
    if depth == 0:
        return scalar
    inner = _documents(depth - 1)
    return st.one_of(
        scalar,
        st.lists(inner, max_size=3).map(lambda items: ("list", items)),
        st.lists(st.tuples(KEYS, inner), max_size=4).map(lambda pairs: ("object", pairs)),
    )


def _render(node: object, newline: bool) -> str:
    if isinstance(node, tuple) and node[0] == "list":
        return "[" + ", ".join(_render(item, newline) for item in node[1]) + "]"
    if isinstance(node, tuple):
        sep = ",\n" if newline else ", "
        return "{" + sep.join(f"{json.dumps(k)}: {_render(v, newline)}" for k, v in node[1]) + "}"
    return json.dumps(node)


def _repeats(node: object) -> bool:
    if isinstance(node, tuple) and node[0] == "list":
        return any(_repeats(item) for item in node[1])
    if isinstance(node, tuple):
        keys = [k for k, _v in node[1]]
        return len(set(keys)) != len(keys) or any(_repeats(v) for _k, v in node[1])
    return False


@given(_documents(), st.booleans())
def test_json_is_refused_exactly_when_a_mapping_repeats_a_key(
    document: object, newline: bool
) -> None:
    text = _render(document, newline)
    if not _repeats(document):
        assert load_json(text, "t.json") == json.loads(text)
        return
    with pytest.raises(UserError) as caught:
        load_json(text, "t.json")
    message = str(caught.value)
    assert "\n" not in message
    found = re.fullmatch(
        r"t\.json: not valid JSON: line (\d+), column (\d+): duplicate key (.+) "
        r"\(also on line (\d+)\); keep one",
        message,
    )
    assert found, message
    line, column = int(found[1]), int(found[2])
    key = found[3]
    at = text.splitlines()[line - 1][column - 1 :]
    assert at.startswith(json.dumps(ast.literal_eval(key)) + ":"), (message, text)
