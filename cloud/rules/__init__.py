"""AWS IoT topic rules, locally: the SQL subset, its evaluator, and the rules runner."""

from cloud.rules.definitions import Action, TopicRule, load_rules, rules_from_document
from cloud.rules.evaluate import UNDEFINED, Message, RuleOutput, evaluate
from cloud.rules.sql import Statement, parse

__all__ = [
    "UNDEFINED",
    "Action",
    "Message",
    "RuleOutput",
    "Statement",
    "TopicRule",
    "evaluate",
    "load_rules",
    "parse",
    "rules_from_document",
]
