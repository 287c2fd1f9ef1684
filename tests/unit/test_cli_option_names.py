"""One name for one idea across commands: the spelling other commands use also works.

``plantwatch up`` and ``plantwatch import l4e`` take ``--upload-frequency`` and
``--delay-offset``, ``rules run`` takes ``--client-id``; ``schedulers create`` and
``rules eval`` accept those spellings too, beside their original ``--frequency``,
``--delay`` and ``--clientid`` (kept: scripts and the design brief use them).
"""

from __future__ import annotations

import pytest

from cloud.cli.main import build_parser, main

CREATE = ["schedulers", "create", "s", "--model", "m"]


@pytest.mark.parametrize(
    ("argv", "dest", "value"),
    [
        ([*CREATE, "--frequency", "PT10M"], "frequency", "PT10M"),
        ([*CREATE, "--upload-frequency", "PT10M"], "frequency", "PT10M"),
        ([*CREATE, "--delay", "3"], "delay", 3),
        ([*CREATE, "--delay-offset", "3"], "delay", 3),
    ],
)
def test_schedulers_create_takes_the_names_up_uses(argv: list[str], dest: str, value) -> None:
    args = build_parser(argv[0]).parse_args(argv)
    assert getattr(args, dest) == value


@pytest.mark.parametrize("option", ["--clientid", "--client-id"])
def test_rules_eval_takes_both_client_id_spellings(
    option: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["rules", "eval", "--topic", "a/b", "--payload", "{}"]
    argv += ["--sql", "SELECT clientid() AS c FROM 'a/#'", option, "pump-01"]
    assert main(argv) == 0
    assert capsys.readouterr().out.strip() == '{"c":"pump-01"}'


@pytest.mark.parametrize(
    "argv",
    [
        ["rules", "run", "--store", "s"],
        ["sim", "fleet"],
        ["sim", "replay", "--dataset", "d"],
    ],
    ids=["rules run", "sim fleet", "sim replay"],
)
def test_a_broker_url_is_also_taken_as_broker_url(argv: list[str]) -> None:
    """``up`` and ``shadow`` take a broker's URL as ``--broker-url`` (``--broker`` is the
    embedded broker's kind there); the commands whose ``--broker`` is a URL take both."""
    url = "mqtt://127.0.0.1:1884"
    args = build_parser(argv[0]).parse_args([*argv, "--broker-url", url])
    assert args.broker == url


EXPORT = ["export", "--asset", "a"]
EVENTS = ["events", "--scheduler", "s"]
EVALUATE = ["model", "evaluate", "--dataset", "d", "--labels", "l"]
GATEWAY = ["gw", "--site", "s"]


@pytest.mark.parametrize(
    ("argv", "other", "dests"),
    [
        (["demo", "--out", "d"], ["demo", "--data", "d"], ["out"]),
        (
            [*EXPORT, "--from", "2026-01-05", "--to", "2026-01-06"],
            [*EXPORT, "--start", "2026-01-05", "--end", "2026-01-06"],
            ["start", "end"],
        ),
        (
            [*EVENTS, "--start", "2026-01-05", "--end", "2026-01-06"],
            [*EVENTS, "--from", "2026-01-05", "--to", "2026-01-06"],
            ["start", "end"],
        ),
        (
            [*EVALUATE, "--name", "m", "--start", "t1", "--end", "t2"],
            [*EVALUATE, "--model", "m", "--from", "t1", "--to", "t2"],
            ["name", "start", "end"],
        ),
        (
            ["model", "train", "--name", "m", "--dataset", "d"],
            ["model", "train", "--model", "m", "--dataset", "d"],
            ["name"],
        ),
        (
            ["bench", "edge", "--broker", "mqtt://127.0.0.1:1884"],
            ["bench", "edge", "--broker-url", "mqtt://127.0.0.1:1884"],
            ["broker"],
        ),
        (
            ["auth", "add-device", *GATEWAY, "--asset", "a-1", "--asset", "a-2"],
            ["auth", "add-device", *GATEWAY, "--assets", "a-1,a-2"],
            ["asset"],
        ),
        (
            ["provision-device", *GATEWAY, "--assets", "a-1,a-2"],
            ["provision-device", *GATEWAY, "--asset", "a-1", "--asset", "a-2"],
            ["assets"],
        ),
    ],
)
def test_the_spelling_other_commands_use_is_taken_too(
    argv: list[str], other: list[str], dests: list[str]
) -> None:
    """``--data`` is the data directory everywhere (``demo --out`` is one); a time range is
    ``--start``/``--end`` (``events``, ``model evaluate``) or ``--from``/``--to``
    (``export``); a model is ``--model`` (``up``, ``schedulers create``, ``model health``);
    a URL-valued ``--broker`` is also ``--broker-url``; a gateway's assets are ``--asset``
    (repeatable, ``auth add-device``) or ``--assets a,b`` (``provision-device``)."""
    first = build_parser(argv[0]).parse_args(argv)
    second = build_parser(other[0]).parse_args(other)
    for dest in dests:
        assert getattr(first, dest) == getattr(second, dest), dest
        assert getattr(first, dest) not in (None, "", []), dest
