"""What the Lambda handlers emit and read, derived from their source, and what a CloudWatch
Logs Insights query reads: for the checks that the CDK dashboard and the functions'
environment match the handlers (``tests/infra/test_handler_contract.py``) and that the
handlers' real lines match their source (``tests/handlers/test_aws_data_path.py``).

Nothing here is a hand-copied list: log fields are the keyword arguments of each
``<observability>.event("<message>", ...)`` call, metrics the ``Metric.<NAME>`` of each
``.count(...)`` call, and environment variables the names each entry point reaches through
its calls (``environ.get``, ``environ[...]``, ``settings.required``, ``settings.prefix``).
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cloud.handlers.observability import Metric

ROOT = Path(__file__).resolve().parents[1]
HANDLERS = ROOT / "cloud" / "handlers"
POWERTOOLS_KEYS = frozenset({"level", "location", "message", "timestamp", "service"})
"""Keys every Powertools Logger line carries besides an event's own fields."""


def _modules() -> dict[str, ast.Module]:
    return {
        f"cloud.handlers.{path.stem}": ast.parse(path.read_text(), filename=str(path))
        for path in sorted(HANDLERS.glob("*.py"))
    }


# ---- log lines and metrics ----------------------------------------------------------------


def log_fields() -> dict[str, dict[str, set[str]]]:
    """``{message: {field: {handler module that writes it, ...}}}`` of every ``.event()``."""
    found: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for module, tree in _modules().items():
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "event"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                for keyword in node.keywords:
                    assert keyword.arg is not None, f"{module}: event(**fields) hides its fields"
                    found[node.args[0].value][keyword.arg].add(module)
    return {message: dict(fields) for message, fields in found.items()}


def message_writers() -> dict[str, set[str]]:
    """``{message: {handler module that writes it}}``."""
    return {message: set().union(*fields.values()) for message, fields in log_fields().items()}


def metric_names() -> set[str]:
    """Every metric a handler counts: ``Metric.X`` passed to ``.count(...)``."""
    names = set()
    for tree in _modules().values():
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "count"
                and node.args
                and isinstance(node.args[0], ast.Attribute)
                and isinstance(node.args[0].value, ast.Name)
                and node.args[0].value.id == "Metric"
            ):
                names.add(Metric[node.args[0].attr].value)
    return names


# ---- environment ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EnvRead:
    name: str
    required: bool


def _is_environ(node: ast.AST) -> bool:
    return (isinstance(node, ast.Name) and node.id == "environ") or (
        isinstance(node, ast.Attribute) and node.attr == "environ"
    )


def _constant(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _direct_reads(body: ast.AST) -> Iterator[EnvRead]:
    for node in ast.walk(body):
        if isinstance(node, ast.Subscript) and _is_environ(node.value):
            name = _constant(node.slice)
            if name:
                yield EnvRead(name, True)
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        callee = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if isinstance(func, ast.Attribute) and func.attr == "get" and _is_environ(func.value):
            name = _constant(node.args[0]) if node.args else None
            if name:
                yield EnvRead(name, False)
        elif callee in ("required", "prefix") and len(node.args) >= 2:
            name = _constant(node.args[1])
            if name:
                yield EnvRead(name, callee == "required")


class _Functions:
    """Every function and class of the handler modules, by dotted name, and what each
    calls (resolved through the module's own names and its ``from ... import``)."""

    def __init__(self) -> None:
        self.modules = _modules()
        self.defs: dict[str, ast.AST] = {}
        self.scope: dict[str, dict[str, str]] = {}
        for module, tree in self.modules.items():
            names: dict[str, str] = {}
            for node in tree.body:
                if isinstance(node, ast.FunctionDef | ast.ClassDef):
                    self.defs[f"{module}.{node.name}"] = node
                    names[node.name] = f"{module}.{node.name}"
                elif isinstance(node, ast.ImportFrom) and node.module:
                    for alias in node.names:
                        names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
            self.scope[module] = names

    def calls(self, qualified: str) -> set[str]:
        module = qualified.rsplit(".", 1)[0]
        while module not in self.modules:
            module = module.rsplit(".", 1)[0]
        names = self.scope[module]
        out = set()
        for node in ast.walk(self.defs[qualified]):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            if isinstance(func, ast.Name) and func.id in names:
                out.add(names[func.id])
            elif (
                isinstance(func, ast.Attribute)
                and isinstance(func.value, ast.Name)
                and func.value.id in names
            ):
                out.add(f"{names[func.value.id]}.{func.attr}")
        resolved = set()
        for target in out:
            node = self.defs.get(target)
            if isinstance(node, ast.ClassDef):  # constructing a class runs its __init__
                resolved.add(f"{target}.__init__")
                for item in node.body:
                    if isinstance(item, ast.FunctionDef):
                        self.defs.setdefault(f"{target}.{item.name}", item)
            elif node is not None:
                resolved.add(target)
        return resolved


def env_reads(handler_module: str) -> dict[str, EnvRead]:
    """What ``<handler_module>.handler`` reaches: ``{name: EnvRead}``; a name read both ways
    counts as required."""
    functions = _Functions()
    seen: set[str] = set()
    pending = [f"{handler_module}.handler"]
    reads: dict[str, EnvRead] = {}
    while pending:
        name = pending.pop()
        if name in seen or name not in functions.defs:
            continue
        seen.add(name)
        for read in _direct_reads(functions.defs[name]):
            if read.name not in reads or read.required:
                reads[read.name] = read
        pending.extend(functions.calls(name))
    return reads


# ---- Logs Insights ----------------------------------------------------------------------

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<number>\d+(?:\.\d+)?[a-z]*)
      | (?P<ident>[@A-Za-z_][\w.@]*)
      | (?P<op>[^\s\w"'])
    )""",
    re.VERBOSE,
)
KEYWORDS = frozenset(
    {"fields", "filter", "stats", "sort", "limit", "by", "as", "and", "or", "not", "in"}
    | {"like", "desc", "asc", "display", "dedup", "source"}
)


@dataclass(frozen=True, slots=True)
class Query:
    messages: frozenset[str]
    """The ``message = "..."`` values the query filters on."""
    fields: frozenset[str]
    """Log fields it reads (dotted paths as written; no ``@`` fields, no aliases)."""
    sources: tuple[str, ...]
    """The ``SOURCE '...'`` log groups."""


def parse_query(text: str) -> Query:
    sources = tuple(re.findall(r"SOURCE\s+'([^']*)'", text))
    body = re.sub(r"SOURCE\s+'[^']*'\s*\|", "", text)
    tokens = [
        (kind, value)
        for match in _TOKEN.finditer(body)
        for kind, value in match.groupdict().items()
        if value is not None
    ]
    aliases: set[str] = set()
    used: set[str] = set()
    messages: set[str] = set()
    for i, (kind, value) in enumerate(tokens):
        if kind != "ident" or value.lower() in KEYWORDS or value.startswith("@"):
            continue
        before = tokens[i - 1][1].lower() if i else ""
        after = tokens[i + 1][1] if i + 1 < len(tokens) else ""
        if before == "as":
            aliases.add(value)
        elif after == "(":
            continue  # a function: count, sum, bin, datefloor ...
        else:
            used.add(value)
        if value == "message" and after == "=" and i + 2 < len(tokens):
            messages.add(tokens[i + 2][1].strip("\"'"))
    return Query(frozenset(messages), frozenset(used - aliases), sources)


def dotted(line: dict, path: str) -> bool:
    """Whether a captured log line has the dotted path (``diagnostics.0.name``)."""
    value: object = line
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return False
    return True
