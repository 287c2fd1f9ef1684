"""``plantwatch import iotevents`` takes CloudFormation templates written in YAML, with the
short-form tags (``!Ref``, ``!Sub``, ``!GetAtt``, ``!Join``, ``!If`` ...) as well as the long
``Fn::`` forms, exactly as it takes the JSON template they stand for."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.adapters.local import InMemoryStateStore
from cloud.cli.main import main
from cloud.detectors import ActionRequest, DetectorEngine, load_detector_model, load_input
from cloud.migrate.cfn_yaml import MAX_NODES, SHORT_FORMS, load_yaml
from cloud.migrate.iotevents import registered
from edge.clock import ManualClock
from edge.errors import UserError

STACK = """\
AWSTemplateFormatVersion: "2010-09-09"
Description: A pump watch, written by hand   # comments are fine in YAML
Parameters:
  Site:
    Type: String
    Default: plant7
  SpinSeconds:
    Type: Number
    Default: 120
Resources:
  PumpInput:
    Type: AWS::IoTEvents::Input
    Properties:
      InputName: PumpInput
      InputDefinition:
        Attributes:
          - JsonPath: pump.id
          - JsonPath: pump.rpm
  WatchRole:
    Type: AWS::IAM::Role
  Notify:
    Type: AWS::Lambda::Function
  PumpWatch:
    Type: AWS::IoTEvents::DetectorModel
    Properties:
      DetectorModelName: !Sub "${Site}-pump-watch"
      Key: pump.id
      EvaluationMethod: SERIAL
      RoleArn: !GetAtt WatchRole.Arn
      Tags:
        - Key: site
          Value: !Ref Site
      DetectorModelDefinition:
        InitialStateName: Idle
        States:
          - StateName: Idle
            OnInput:
              Events:
                - EventName: count
                  Condition: !Join ['', ['currentInput("', !Ref PumpInput, '")']]
                  Actions:
                    - SetVariable:
                        VariableName: seen
                        Value: 1
              TransitionEvents:
                - EventName: Idle_to_Running
                  Condition:
                    Fn::Join:
                      - ''
                      - - '$input.'
                        - Ref: PumpInput
                        - .pump.rpm > 100
                  NextState: Running
          - StateName: Running
            OnEnter:
              Events:
                - EventName: started
                  Condition: true
                  Actions:
                    - IotTopicPublish:
                        MqttTopic:
                          Fn::Sub: ${Site}/pumps/started
                        Payload:
                          Type: JSON
                          ContentExpression: >-
                            '{"pump": "${$input.PumpInput.pump.id}",
                            "rpm": ${$input.PumpInput.pump.rpm}}'
                    - Lambda:
                        FunctionArn: !GetAtt [Notify, Arn]
                    - SetTimer:
                        TimerName: spin
                        Seconds: !Ref SpinSeconds
            OnInput:
              TransitionEvents:
                - EventName: Running_to_Idle
                  Condition: timeout("spin")
                  NextState: Idle
"""

MODEL = "plant7-pump-watch"
WATCH = "$.Resources.PumpWatch.Properties"


def _folder(tmp_path: Path, text: str = STACK, name: str = "stack.yaml") -> Path:
    folder = tmp_path / "cfn"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)
    return folder


def _import(capsys: pytest.CaptureFixture[str], folder: Path, data: Path) -> tuple[int, str]:
    code = main(["import", "iotevents", str(folder), "--data", str(data), "--json"])
    captured = capsys.readouterr()
    return code, captured.out if code == 0 else captured.err


class _Sink:
    def __init__(self) -> None:
        self.requests: list[ActionRequest] = []

    def execute(self, request: ActionRequest) -> None:
        self.requests.append(request)


@pytest.mark.parametrize("name", ["stack.yaml", "template.yml"])
def test_a_yaml_template_in_short_and_long_forms_is_registered_and_runs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str
) -> None:
    code, out = _import(capsys, _folder(tmp_path, name=name), tmp_path / "data")
    assert code == 0, out
    report = json.loads(out)
    assert [(m["name"], m["key"], m["evaluation_method"]) for m in report["models"]] == [
        (MODEL, "pump.id", "SERIAL")
    ]
    assert [i["name"] for i in report["inputs"]] == ["PumpInput"]
    (problem,) = report["cannot_run_locally"]
    assert problem["action"] == "lambda"
    assert "cloudformation:Notify.Arn" in problem["reason"]
    assert problem["path"] == f"{WATCH}.DetectorModelDefinition.States[1].OnEnter.Events[0]" + (
        ".Actions[1].Lambda"
    )
    model_file, inputs, _ = registered(tmp_path / "data" / "detectors", MODEL)
    body = json.loads(model_file.read_text())
    assert body["roleArn"] == "cloudformation:WatchRole.Arn"
    assert body["tags"] == [{"key": "site", "value": "plant7"}]
    idle, running = body["detectorModelDefinition"]["states"]
    assert idle["onInput"]["events"][0]["condition"] == 'currentInput("PumpInput")'
    assert idle["onInput"]["events"][0]["actions"][0]["setVariable"]["value"] == "1"
    assert idle["onInput"]["transitionEvents"][0]["condition"] == "$input.PumpInput.pump.rpm > 100"
    started = running["onEnter"]["events"][0]
    assert started["condition"] == "true"  # the expression, not a YAML Boolean
    assert started["actions"][0]["iotTopicPublish"]["mqttTopic"] == "plant7/pumps/started"
    assert started["actions"][2]["setTimer"] == {"timerName": "spin", "seconds": 120}

    clock = ManualClock(0)
    sink = _Sink()
    engine = DetectorEngine(
        load_detector_model(model_file),
        [load_input(p) for p in inputs],
        InMemoryStateStore(),
        clock,
        sink,
    )
    engine.put_message("PumpInput", {"pump": {"id": "p1", "rpm": 150}})
    assert engine.describe("p1")["detector"]["state"]["stateName"] == "Running"
    published = [r for r in sink.requests if r.kind == "iotTopicPublish"]
    assert [r.payload for r in published] == [{"pump": "p1", "rpm": 150}]
    clock.advance(120)
    engine.tick()
    assert engine.describe("p1")["detector"]["state"]["stateName"] == "Idle"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "      Key: pump.id\n",
            "      Key: !ImportValue SharedPumpKey\n",
            f"cfn/stack.yaml: {WATCH}.Key.Fn::ImportValue: Fn::ImportValue cannot be evaluated"
            " outside CloudFormation",
        ),
        (
            "      Key: pump.id\n",
            "      Key: !Lookup pump.id\n",
            "cfn/stack.yaml: not valid YAML: line 27, column 12: unknown tag !Lookup"
            " (CloudFormation's short forms are !Ref,",
        ),
        (
            "                  NextState: Running\n",
            "                  NextState: Nowhere\n",
            f"cfn/stack.yaml: {WATCH}.DetectorModelDefinition.States[0].OnInput"
            ".TransitionEvents[0].NextState: unknown state 'Nowhere'",
        ),
        (
            "      Tags:\n        - Key: site\n          Value: !Ref Site\n",
            "      Tags:\n        - Key: site\n          Value: !Ref Plant\n",
            f"cfn/stack.yaml: {WATCH}.Tags[0].Value.Ref: 'Plant' is neither a parameter nor a"
            " resource of the template",
        ),
        (
            "      EvaluationMethod: SERIAL\n",
            "      EvaluationMethod: SERIAL\n     Broken: [\n",
            "cfn/stack.yaml: not valid YAML: line 29, column 6: ",
        ),
    ],
)
def test_what_cannot_be_taken_is_one_line_naming_the_file_and_where(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, old: str, new: str, expected: str
) -> None:
    assert old in STACK
    folder = _folder(tmp_path, STACK.replace(old, new))
    code, err = _import(capsys, folder, tmp_path / "data")
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert expected in err, err
    assert not (tmp_path / "data" / "detectors").exists()


def test_validate_and_run_take_a_yaml_template(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = _folder(tmp_path) / "stack.yaml"
    code = main(["detectors", "validate", str(path), "--input", str(path), "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert json.loads(out)["detectorModelName"] == MODEL
    messages = tmp_path / "m.jsonl"
    messages.write_text(
        json.dumps({"inputName": "PumpInput", "payload": {"pump": {"id": "p", "rpm": 500}}}) + "\n"
    )
    run = ["detectors", "run", str(path), "--input", str(path), "--messages", str(messages)]
    code = main([*run, "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    (detector,) = json.loads(out)["detectors"]
    assert detector["detector"]["state"]["stateName"] == "Running"


ALARM = """\
Resources:
  In:
    Type: AWS::IoTEvents::Input
    Properties:
      InputName: BoilerInput
      InputDefinition: {Attributes: [{JsonPath: boilerId}, {JsonPath: temp}]}
  BoilerHigh:
    Type: AWS::IoTEvents::AlarmModel
    Properties:
      AlarmModelName: boilerHigh
      RoleArn: arn:aws:iam::123456789012:role/r
      Key: boilerId
      Severity: 3
      AlarmRule:
        SimpleRule:
          InputProperty: !Sub "$input.${In}.temp"
          ComparisonOperator: GREATER
          Threshold: 80
      AlarmCapabilities:
        InitializationConfiguration: {DisabledOnInitialization: false}
        AcknowledgeFlow:
          Enabled: "true"
"""


def test_alarms_validate_takes_an_alarm_model_in_yaml(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = _folder(tmp_path, ALARM, "alarm.yml") / "alarm.yml"
    code = main(["alarms", "validate", str(path), "--input", str(path), "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    body = json.loads(out)
    assert body["alarmModelName"] == "boilerHigh"


def test_a_yaml_create_body_validates_as_its_json_does(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """``aws iotevents ... --output yaml`` writes the API shapes in YAML."""
    model = tmp_path / "model.yaml"
    model.write_text(
        "detectorModelName: m\nroleArn: arn:aws:iam::1:role/r\nkey: id\n"
        "detectorModelDefinition:\n  initialStateName: A\n  states:\n"
        "    - stateName: A\n      onInput:\n        events:\n"
        "          - eventName: e\n            condition: $input.In.v > 10\n"
    )
    inputs = tmp_path / "input.yaml"
    inputs.write_text("inputName: In\ninputDefinition:\n  attributes:\n    - jsonPath: v\n")
    code = main(["detectors", "validate", str(model), "--input", str(inputs), "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert json.loads(out)["detectorModelName"] == "m"
    model.write_text(model.read_text().replace("initialStateName: A", "initialStateName: B"))
    assert main(["detectors", "validate", str(model), "--input", str(inputs)]) == 2
    err = capsys.readouterr().err
    assert "model.yaml: $.detectorModelDefinition.initialStateName" in err, err


def test_aliases_that_expand_past_the_limit_or_into_themselves_are_refused() -> None:
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 7)]
    with pytest.raises(UserError, match=f"past {MAX_NODES:,} values"):
        load_yaml("\n".join(levels), "bomb.yaml")
    with pytest.raises(UserError, match=r"bomb\.yaml: not valid YAML: line 1"):
        load_yaml("a: &a [1, *a]", "bomb.yaml")
    # an alias used a few times is fine, and merge keys work
    assert load_yaml("b: &b {x: 1}\nc:\n  <<: *b\n  y: 2\nd: *b", "ok.yaml") == {
        "b": {"x": "1"},
        "c": {"x": "1", "y": "2"},
        "d": {"x": "1"},
    }


def test_an_undefined_alias_is_named() -> None:
    """libyaml's parser says only 'found undefined alias' (PyYAML's own names it): the
    line alone left the user to find which ``*name`` on it has no ``&name`` before it."""
    with pytest.raises(UserError) as caught:
        load_yaml("a: &site s1\nb: [x, *sight]\n", "stack.yaml")
    assert str(caught.value) == (
        "stack.yaml: not valid YAML: line 2, column 8: found undefined alias *sight: "
        "define it with &sight before its first use"
    )


def test_scalars_stay_the_text_the_template_wrote() -> None:
    document = load_yaml(
        "a: true\nb: 010\nc: 1e3\nd: 2020-01-01\ne: yes\nf:\ng: ~\nh: null\ni: 'null'\non: 1",
        "t.yaml",
    )
    assert document == {
        "a": "true",
        "b": "010",
        "c": "1e3",
        "d": "2020-01-01",
        "e": "yes",
        "f": None,
        "g": None,
        "h": None,
        "i": "null",
        "on": "1",
    }


# ---------------------------------------------------------------- short form == long form

texts = st.text(st.characters(blacklist_categories=("Cs", "Cc"), max_codepoint=0xFFFF), max_size=6)


def _node(draw: Any, depth: int, tag: bool = True) -> tuple[str, Any]:
    """(YAML flow text using short forms, the document it stands for in long form).

    A tag's value is not itself tagged: YAML gives a node one tag (CloudFormation: "use the
    full function name for at least one of the functions")."""
    kinds = ["text", "list", "map", "tag"] if tag else ["text", "list", "map"]
    kind = draw(st.sampled_from(kinds if depth < 3 else ["text"]))
    if kind == "text":
        value = draw(texts)
        return json.dumps(value), value
    if kind == "list":
        items = [_node(draw, depth + 1) for _ in range(draw(st.integers(0, 3)))]
        return "[" + ", ".join(t for t, _ in items) + "]", [v for _, v in items]
    if kind == "map":
        keys = draw(st.lists(texts, max_size=3, unique=True))
        items = [(k, _node(draw, depth + 1)) for k in keys]
        text = "{" + ", ".join(f"{json.dumps(k)}: {t}" for k, (t, _) in items) + "}"
        return text, {k: v for k, (_, v) in items}
    name = draw(st.sampled_from(SHORT_FORMS))
    if name == "GetAtt":
        logical, attribute = draw(texts.filter(lambda s: "." not in s)), draw(texts)
        return f"!GetAtt {json.dumps(logical + '.' + attribute)}", {
            "Fn::GetAtt": [logical, attribute]
        }
    text, value = _node(draw, depth + 1, tag=False)
    key = name if name in ("Ref", "Condition") else f"Fn::{name}"
    return f"!{name} {text}", {key: value}


@st.composite
def documents(draw: Any) -> tuple[str, Any]:
    return _node(draw, 0)


@settings(max_examples=300, deadline=None)
@given(documents())
def test_a_short_form_reads_as_its_long_form(document: tuple[str, Any]) -> None:
    text, expected = document
    assert load_yaml(f"v: {text}", "t.yaml") == {"v": expected}


DESCRIBE_YAML = """\
detectorModel:
  detectorModelConfiguration:
    creationTime: '2024-03-01T10:00:00.000000+00:00'
    detectorModelName: heartbeat
    detectorModelVersion: '1'
    evaluationMethod: BATCH
    key: id
    roleArn: arn:aws:iam::123456789012:role/r
    status: ACTIVE
  detectorModelDefinition:
    initialStateName: Online
    states:
    - stateName: Online
      onEnter:
        events:
        - eventName: arm
          condition: 'true'
          actions:
          - setTimer:
              timerName: hb
              seconds: 60
      onInput:
        transitionEvents:
        - eventName: lost
          condition: timeout("hb")
          nextState: Offline
          actions:
          - sqs:
              queueUrl: https://sqs.us-east-1.amazonaws.com/123456789012/q
              useBase64: false
    - stateName: Offline
      onInput:
        transitionEvents:
        - eventName: back
          condition: currentInput("In") && $input.In.v > 0
          nextState: Online
"""


def test_describe_output_saved_as_yaml_is_imported_with_aws_types(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """``aws iotevents describe-detector-model --output yaml``: integers and Booleans print
    bare, and come out as AWS's types, not text."""
    folder = _folder(tmp_path, DESCRIBE_YAML, "heartbeat.yaml")
    (folder / "In.yaml").write_text(
        "input:\n  inputConfiguration:\n    inputName: In\n    status: ACTIVE\n"
        "  inputDefinition:\n    attributes:\n    - jsonPath: id\n    - jsonPath: v\n"
    )
    code, out = _import(capsys, folder, tmp_path / "data")
    assert code == 0, out
    model_file, _, _ = registered(tmp_path / "data" / "detectors", "heartbeat")
    states = json.loads(model_file.read_text())["detectorModelDefinition"]["states"]
    assert states[0]["onEnter"]["events"][0]["actions"][0]["setTimer"]["seconds"] == 60
    sqs = states[0]["onInput"]["transitionEvents"][0]["actions"][0]["sqs"]
    assert sqs["useBase64"] is False


def test_without_pyyaml_a_yaml_file_is_one_line_saying_what_to_install(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "yaml", None)  # import yaml raises ImportError
    monkeypatch.delitem(sys.modules, "cloud.migrate.cfn_yaml", raising=False)
    code, err = _import(capsys, _folder(tmp_path), tmp_path / "data")
    assert code == 2
    assert err.count("\n") == 1, err
    assert "cfn/stack.yaml: reading YAML needs PyYAML" in err
    assert "make install" in err


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("a: !!int abc", "line 1, column 4: !!int 'abc' is not an integer"),
        ("a: !!int 0x", "line 1, column 4: !!int '0x' is not an integer"),
        ("a: !!float x", "line 1, column 4: !!float 'x' is not a number"),
        ("a: !!float .inf", "line 1, column 4: !!float '.inf' is not a finite number"),
        ("a: !!bool maybe", "line 1, column 4: !!bool 'maybe' is not a Boolean"),
        ("a: !!timestamp 2020-01-01", "line 1, column 4: !!timestamp is not taken"),
        ("a: !!binary aGk=", "line 1, column 4: !!binary is not taken"),
        ("a: !!set {x}", "line 1, column 4: !!set is not taken"),
        ("a: !!omap [b: 1]", "line 1, column 4: !!omap is not taken"),
        ("a: !!pairs [b: 1]", "line 1, column 4: !!pairs is not taken"),
    ],
)
def test_a_yaml_type_json_cannot_hold_is_refused_naming_the_line(text: str, problem: str) -> None:
    with pytest.raises(UserError) as caught:
        load_yaml(text, "t.yaml")
    assert str(caught.value).startswith(f"t.yaml: not valid YAML: {problem}"), caught.value


def test_explicit_json_types_are_kept() -> None:
    assert load_yaml("a: !!int 60\nb: !!float 2.5\nc: !!bool true\nd: !!str 010", "t.yaml") == {
        "a": 60,
        "b": 2.5,
        "c": True,
        "d": "010",
    }


YAML_ALPHABET = st.sampled_from(
    [
        *"abc01:-[]{},'\"&*!<>|#%@`?~\n ",
        "  ",
        "!!int ",
        "!!float ",
        "!!bool ",
        "!!timestamp ",
        "!!binary ",
        "!!set ",
        "!!omap ",
        "!!str ",
        "!!null ",
        "!!python/tuple ",
        "!Ref ",
        "!Sub ",
        "!GetAtt ",
        "!Nope ",
        "&a ",
        "*a",
        "<<: ",
        ".inf",
        "0x",
        "\t",
        "\x00",
        "\ufeff",
        "---\n",
    ]
)


@settings(max_examples=1500, deadline=None)
@given(st.lists(YAML_ALPHABET, max_size=30).map("".join))
def test_any_text_loads_as_json_values_or_is_one_line_user_error(text: str) -> None:
    try:
        document = load_yaml(text, "t.yaml")
    except UserError as exc:
        assert "\n" not in str(exc)
        assert str(exc).startswith("t.yaml: ")
        return
    json.dumps(document, allow_nan=False)  # only what a JSON template can hold


def test_describe_alarm_model_saved_as_yaml_is_imported_with_aws_types(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder = _folder(
        tmp_path,
        "alarmModelArn: arn:aws:iotevents:us-east-1:123456789012:alarmModel/boilerHigh\n"
        "alarmModelName: boilerHigh\nalarmModelVersion: '1'\n"
        "creationTime: '2024-03-01T10:00:00+00:00'\nstatus: ACTIVE\n"
        "roleArn: arn:aws:iam::123456789012:role/r\nkey: boilerId\nseverity: 3\n"
        "alarmRule:\n  simpleRule:\n    inputProperty: $input.BoilerInput.temp\n"
        "    comparisonOperator: GREATER\n    threshold: '80'\n"
        "alarmCapabilities:\n  initializationConfiguration:\n"
        "    disabledOnInitialization: false\n  acknowledgeFlow:\n    enabled: true\n",
        "boilerHigh.yaml",
    )
    (folder / "BoilerInput.json").write_text(
        json.dumps(
            {
                "inputName": "BoilerInput",
                "inputDefinition": {"attributes": [{"jsonPath": "boilerId"}, {"jsonPath": "temp"}]},
            }
        )
    )
    code, out = _import(capsys, folder, tmp_path / "data")
    assert code == 0, out
    (alarm,) = json.loads(out)["alarm_models"]
    body = json.loads((tmp_path / "data" / "detectors" / alarm["file"]).read_text())
    assert body["severity"] == 3
    assert body["alarmCapabilities"] == {
        "initializationConfiguration": {"disabledOnInitialization": False},
        "acknowledgeFlow": {"enabled": True},
    }
