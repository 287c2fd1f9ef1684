"""Which inputs ``plantwatch up`` feeds when it runs the models of one import together.

The local stack sends its detectors one input, the scoring results (:mod:`cloud.feeder`),
and routes each ``iotEvents`` action's message to every model it runs that reads the
action's input (:class:`cloud.detectors.router.MessageRouter`). So an input is fed when it
is the results' input, or when a model that is itself fed sends to it: a model that never
gets a message makes no instance, and none of its actions ever runs. The import's report
and ``--strict`` take what is fed from here, so they say what ``up`` does with the
models the import's next step names.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class ModelFeeds:
    """One model (detector or alarm) as the stack sees it: what it reads, where its
    ``iotEvents`` actions send."""

    name: str
    reads: frozenset[str]
    sends: frozenset[str]


@dataclass(frozen=True)
class Feeds:
    served: frozenset[str]
    """Inputs some model of the set reads: an ``iotEvents`` action to one is routed."""
    fed: frozenset[str]
    """Inputs something sends messages to under ``plantwatch up``."""
    senders: Mapping[str, tuple[str, ...]]
    """Input -> the models whose ``iotEvents`` actions send to it, fed or not."""


def local_feeds(models: Iterable[ModelFeeds], source: str) -> Feeds:
    """What the stack feeds, *source* being the input it sends its detectors itself."""
    models = list(models)
    fed = {source}
    active: set[int] = set()
    grown = True
    while grown:  # each pass wakes the models a newly fed input reaches
        grown = False
        for index, model in enumerate(models):
            if index not in active and model.reads & fed:
                active.add(index)
                fed |= model.sends
                grown = True
    senders: dict[str, list[str]] = {}
    for model in models:
        for target in sorted(model.sends):
            senders.setdefault(target, []).append(model.name)
    return Feeds(
        served=frozenset(name for model in models for name in model.reads),
        fed=frozenset(fed),
        senders={target: tuple(names) for target, names in senders.items()},
    )
