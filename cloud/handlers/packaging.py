"""Which project files a handler's Lambda bundle needs, found from its imports, so the CDK
app can bundle the code without Docker.

A bundle holds only the project's own modules (``cloud``, ``edge``) the handler reaches,
with the package data beside them (the bundled detector model). boto3 and botocore come
from the Lambda Python runtime, numpy, pandas and pyarrow from the public AWS SDK for pandas
layer (it ships its own pyarrow build, 18.1 since layer 3.11.0, with Arrow's compute module);
every other third-party package a bundle imports is listed in ``install`` to be copied in
(today only ``aws_lambda_powertools``, which is pure Python). The CDK app's code asset
(``infra/bundle.py``) is checked against these lists by the tests.

Imports are read from the source (lazy imports inside functions included, ``if
TYPE_CHECKING:`` blocks not), so the closure is what can run, not what happened to run.

``python -m cloud.handlers.packaging inference --out build/inference`` writes one bundle
and prints its manifest as JSON.
"""

from __future__ import annotations

import argparse
import ast
import json
import shutil
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ("cloud", "edge", "simulator", "infra")
DATA_SUFFIXES = (".json", ".toml", ".sql")
HANDLERS = {
    "batcher": "cloud.handlers.batcher",
    "inference": "cloud.handlers.inference",
    "detector": "cloud.handlers.detector",
    "timers": "cloud.handlers.timers",
}
PROVIDED = {
    "boto3": "Lambda Python runtime",
    "botocore": "Lambda Python runtime",
    "numpy": "AWS SDK for pandas layer",
    "pandas": "AWS SDK for pandas layer",
    "pyarrow": "AWS SDK for pandas layer",
}


@dataclass(frozen=True)
class Bundle:
    handler: str
    """The Lambda handler setting: ``cloud.handlers.<name>.handler``."""
    modules: tuple[str, ...]
    files: tuple[str, ...]
    """Paths relative to the project root: modules, package ``__init__`` files, data."""
    provided: dict[str, str]
    """Third-party packages imported and who provides them at run time."""
    install: tuple[str, ...]
    """Third-party packages imported that nothing provides: pip-install into the bundle."""


def bundle(module: str, root: Path = ROOT) -> Bundle:
    """The bundle of the handler module *module* (``cloud.handlers.inference``)."""
    seen: set[str] = set()
    third_party: set[str] = set()
    pending = [module]
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        path = _source(name, root)
        if path is None:
            continue
        seen.add(name)
        for parent in _parents(name):
            pending.append(parent)
        for imported in _imports(path, name):
            top = imported.split(".")[0]
            if top in PROJECT:
                pending.extend(_candidates(imported, root))
            elif top not in sys.stdlib_module_names and top != "__future__":
                third_party.add(top)
    files = {str(_source(name, root).relative_to(root)) for name in seen}  # type: ignore[union-attr]
    for name in seen:
        path = _source(name, root)
        if path is not None and path.name == "__init__.py":
            files.update(str(p.relative_to(root)) for p in _data_files(path.parent))
    return Bundle(
        handler=f"{module}.handler",
        modules=tuple(sorted(seen)),
        files=tuple(sorted(files)),
        provided={name: PROVIDED[name] for name in sorted(third_party) if name in PROVIDED},
        install=tuple(sorted(third_party - set(PROVIDED))),
    )


def write(found: Bundle, out: Path, root: Path = ROOT) -> list[Path]:
    """Copy the bundle's files under *out* (created; existing files replaced)."""
    written = []
    for rel in found.files:
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, target)
        written.append(target)
    return written


def _source(module: str, root: Path) -> Path | None:
    base = root.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _candidates(imported: str, root: Path) -> list[str]:
    """``from a.b import c`` names module ``a.b`` and, if it is a module, ``a.b.c``."""
    return [imported] if _source(imported, root) else [imported.rsplit(".", 1)[0]]


def _imports(path: Path, module: str) -> Iterable[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in _walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names if alias.name != "*")


def _walk(node: ast.AST) -> Iterable[ast.AST]:
    """Every node except the bodies of ``if TYPE_CHECKING:`` (names for type checkers only)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            yield from (n for stmt in child.orelse for n in (stmt, *_walk(stmt)))
            continue
        yield child
        yield from _walk(child)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _data_files(package_dir: Path) -> Iterable[Path]:
    """Data beside a package's modules, and in its subfolders that are not packages."""
    for path in sorted(package_dir.iterdir()):
        if path.is_file() and path.suffix in DATA_SUFFIXES:
            yield path
        elif path.is_dir() and not (path / "__init__.py").exists() and path.name != "__pycache__":
            yield from _data_files(path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cloud.handlers.packaging",
        description="List (and with --out, copy) the project files a handler's bundle needs.",
    )
    parser.add_argument("handler", choices=sorted(HANDLERS), help="which Lambda handler")
    parser.add_argument("--out", type=Path, help="copy the bundle's files into this folder")
    args = parser.parse_args(argv)
    found = bundle(HANDLERS[args.handler])
    if args.out is not None:
        write(found, args.out)
    print(json.dumps(asdict(found), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
