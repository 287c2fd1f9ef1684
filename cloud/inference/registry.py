"""Where models live: ``<prefix><name>/v<N>/`` (model.npz, model.json, reports) in an
ObjectStore: a directory locally (FsObjectStore), ``models/`` in the artifacts bucket on AWS.

Versions count from 1 as in L4E; ``<name>/active`` names the version schedulers use
(``UpdateActiveModelVersion``); a new version becomes active when it is saved. Nothing here
assumes a local path: artifacts are read as bytes and loaded without pickle.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

from cloud.inference.model import ARTIFACT_FILES, Model
from cloud.ports import ObjectStore
from edge.errors import ConfigError, NotFoundError, UserError
from edge.user_files import parse_problem

MODEL_NAME_RE = re.compile(r"^[0-9a-zA-Z_-]{1,200}$")
ARTIFACTS_PREFIX = "models/"
"""Where models live in a deployment's artifacts bucket (the inference function reads them)."""
_VERSION_RE = re.compile(r"^v(\d+)$")


class ModelRegistry:
    """*where* names the store in messages (a directory, ``s3://bucket/models/``)."""

    def __init__(self, store: ObjectStore, prefix: str = "", *, where: str | None = None) -> None:
        if prefix and not prefix.endswith("/"):
            raise ConfigError(f"model registry prefix {prefix!r}: must be empty or end in '/'")
        self.store = store
        self.prefix = prefix
        self.where = where if where is not None else (prefix or "models")

    def key(self, name: str, version: int | None = None) -> str:
        """The folder key of a version (the active one by default), ending in ``/``."""
        return f"{self.prefix}{name}/v{version or self.active_version(name)}/"

    def location(self, name: str, version: int | None = None) -> str:
        """Where a version lives, for people: ``<where>/<name>/v<N>``."""
        return f"{self.where.rstrip('/')}/{name}/v{version or self.active_version(name)}"

    def versions(self, name: str) -> list[int]:
        base = f"{self.prefix}{name}/"
        found = set()
        for key in self.store.list(base):
            folder, sep, _ = key[len(base) :].partition("/")
            match = _VERSION_RE.fullmatch(folder) if sep else None
            if match:
                found.add(int(match[1]))
        return sorted(found)

    def names(self) -> list[str]:
        candidates = {
            key[len(self.prefix) :].split("/", 1)[0]
            for key in self.store.list(self.prefix)
            if "/" in key[len(self.prefix) :]
        }
        return sorted(n for n in candidates if MODEL_NAME_RE.fullmatch(n) and self.versions(n))

    def active_version(self, name: str) -> int:
        versions = self.versions(name)
        if not versions:
            raise NotFoundError(f"model {name!r}: not found under {self.where}")
        try:
            chosen = int(self.store.get(f"{self.prefix}{name}/active").decode().strip())
        except (NotFoundError, ValueError, UnicodeDecodeError):
            return versions[-1]
        return chosen if chosen in versions else versions[-1]

    def set_active(self, name: str, version: int) -> None:
        if version not in self.versions(name):
            raise NotFoundError(f"model {name!r}: no version {version}")
        self.store.put(f"{self.prefix}{name}/active", f"{version}\n".encode())

    def save(
        self,
        name: str,
        model: Model,
        reports: dict[str, Any] | None = None,
        files: dict[str, bytes] | None = None,
    ) -> int:
        """Store *model* as the next version; *reports* become ``<key>.json`` beside it and
        *files* are stored as given (a ``model.npz`` there is the exact bytes *model* was
        loaded from, kept rather than written anew)."""
        if not MODEL_NAME_RE.fullmatch(name):
            raise ConfigError(f"ModelName {name!r}: must match {MODEL_NAME_RE.pattern}")
        version = (self.versions(name) or [0])[-1] + 1
        model.info["name"], model.info["version"] = name, version
        files = {**model.to_artifacts(), **(files or {})}
        for report, document in (reports or {}).items():
            files[f"{report}.json"] = json.dumps(document, indent=2, default=str).encode()
        folder = self.key(name, version)
        for filename in sorted(files, key=lambda f: f in ARTIFACT_FILES):
            self.store.put(folder + filename, files[filename])  # the model files land last
        self.set_active(name, version)
        return version

    def copy_from(
        self, source: ModelRegistry, name: str, version: int | None = None
    ) -> tuple[int, bool]:
        """Copy version *version* of *name* (the active one by default) from *source* in as
        this registry's newest, active version, with every file beside it (reports,
        diagnostics). Returns ``(version here, copied)``.

        Pushing the same model twice adds no version: when this registry's active version
        holds the same ``model.npz`` bytes, nothing is written and ``copied`` is False. The
        arrays are copied byte for byte and loaded once without pickle on the way, so a
        broken or unsafe artifact is refused before anything is written.
        """
        chosen = version or source.active_version(name)
        folder = source.key(name, chosen)
        files = {
            key[len(folder) :]: source.store.get(key)
            for key in source.store.list(folder)
            if "/" not in key[len(folder) :]
        }
        where = source.location(name, chosen)
        if not files:
            raise NotFoundError(f"model {name!r} version {chosen}: not found under {source.where}")
        model = Model.from_artifacts(files, where)
        npz = ARTIFACT_FILES[0]
        try:
            current: int | None = self.active_version(name)
        except NotFoundError:
            current = None
        if current is not None:
            try:
                if self.store.get(self.key(name, current) + npz) == files[npz]:
                    return current, False
            except NotFoundError:
                pass
        model.info["copied_from"] = where
        extras = {f: body for f, body in files.items() if f != ARTIFACT_FILES[1]}
        return self.save(name, model, files=extras), True

    def put_file(self, name: str, version: int, filename: str, body: bytes) -> None:
        """Another file beside a version's artifacts (diagnostics of the training run)."""
        self.store.put(self.key(name, version) + filename, body)

    def put_file_from(self, name: str, version: int, filename: str, source: Path) -> None:
        """Like :meth:`put_file` from a finished local file, moved in whole where the store
        can take a file (a directory), read into memory otherwise."""
        put_path = getattr(self.store, "put_path", None)
        if put_path is not None:
            put_path(self.key(name, version) + filename, source)
        else:
            self.put_file(name, version, filename, source.read_bytes())
            source.unlink()

    def staging(self) -> Path | None:
        """A directory on the store's own filesystem for files about to be put, if any."""
        root = getattr(self.store, "root", None)
        return Path(root) if isinstance(root, Path) else None

    def load(self, name: str, version: int | None = None) -> Model:
        """Version *version* of *name*, the active one by default. Its ``info["version"]``
        is the version folder it was read from, whatever its model.json says (a file
        copied by hand): a scheduler records it as the executions' ``ModelVersion``."""
        given = version
        version = version or self.active_version(name)
        folder = self.key(name, version)
        files: dict[str, bytes] = {}
        for filename in ARTIFACT_FILES:
            try:
                files[filename] = self.store.get(folder + filename)
            except NotFoundError:
                if given is not None and version not in self.versions(name):
                    raise NotFoundError(
                        f"model {name!r} version {version}: not found under {self.where}"
                    ) from None
        model = Model.from_artifacts(files, self.location(name, version))
        model.info["version"] = version
        return model

    def report(self, name: str, key: str, version: int | None = None) -> dict[str, Any] | None:
        try:
            body = self.store.get(self.key(name, version) + f"{key}.json")
        except NotFoundError:
            return None
        try:
            doc = json.loads(body)
        except (ValueError, RecursionError) as exc:
            doc = exc
        if not isinstance(doc, dict):  # a damaged artifact: name it, not a bare JSON error
            why = parse_problem(doc) if isinstance(doc, Exception) else "not a JSON object"
            raise UserError(f"{self.location(name, version)}/{key}.json: {why}")
        return doc

    def describe(self, name: str) -> dict[str, Any]:
        model = self.load(name)
        return {
            "ModelName": name,
            "ActiveModelVersion": self.active_version(name),
            "Versions": self.versions(name),
            "Sensors": list(model.sensors),
            "Template": model.is_template,
            "Config": asdict(model.config),  # the alarm rules as an object, not their repr
            "Info": model.info,
            "Evaluation": self.report(name, "evaluation"),
        }
