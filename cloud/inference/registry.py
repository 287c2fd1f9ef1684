"""Where models live: ``<models_dir>/<name>/v<N>/`` (model.npz, model.json, reports).

Versions count from 1 as in L4E; ``<name>/active`` names the version schedulers use
(``UpdateActiveModelVersion``); a new version becomes active when it is saved.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from cloud.inference.model import Model
from edge.errors import ConfigError, NotFoundError

MODEL_NAME_RE = re.compile(r"^[0-9a-zA-Z_-]{1,200}$")
_VERSION_RE = re.compile(r"^v(\d+)$")


class ModelRegistry:
    def __init__(self, models_dir: str | Path) -> None:
        self.root = Path(models_dir)

    def versions(self, name: str) -> list[int]:
        folder = self.root / name
        if not folder.is_dir():
            return []
        found = (_VERSION_RE.fullmatch(p.name) for p in folder.iterdir() if p.is_dir())
        return sorted(int(m[1]) for m in found if m)

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and self.versions(p.name))

    def path(self, name: str, version: int | None = None) -> Path:
        return self.root / name / f"v{version or self.active_version(name)}"

    def active_version(self, name: str) -> int:
        versions = self.versions(name)
        if not versions:
            raise NotFoundError(f"model {name!r}: not found under {self.root}")
        marker = self.root / name / "active"
        if marker.is_file():
            chosen = int(marker.read_text().strip())
            if chosen in versions:
                return chosen
        return versions[-1]

    def set_active(self, name: str, version: int) -> None:
        if version not in self.versions(name):
            raise NotFoundError(f"model {name!r}: no version {version}")
        (self.root / name / "active").write_text(f"{version}\n")

    def save(self, name: str, model: Model, reports: dict[str, Any] | None = None) -> int:
        """Store *model* as the next version; *reports* become ``<key>.json`` beside it."""
        if not MODEL_NAME_RE.fullmatch(name):
            raise ConfigError(f"ModelName {name!r}: must match {MODEL_NAME_RE.pattern}")
        version = (self.versions(name) or [0])[-1] + 1
        folder = self.root / name / f"v{version}"
        model.info["name"], model.info["version"] = name, version
        model.save(folder)
        for key, document in (reports or {}).items():
            (folder / f"{key}.json").write_text(json.dumps(document, indent=2, default=str))
        self.set_active(name, version)
        return version

    def load(self, name: str, version: int | None = None) -> Model:
        folder = self.path(name, version)
        if not folder.is_dir():
            raise NotFoundError(f"model {name!r} version {version}: not found under {self.root}")
        return Model.load(folder)

    def report(self, name: str, key: str, version: int | None = None) -> dict[str, Any] | None:
        path = self.path(name, version) / f"{key}.json"
        return json.loads(path.read_text()) if path.is_file() else None

    def describe(self, name: str) -> dict[str, Any]:
        model = self.load(name)
        return {
            "ModelName": name,
            "ActiveModelVersion": self.active_version(name),
            "Versions": self.versions(name),
            "Sensors": list(model.sensors),
            "Template": model.is_template,
            "Config": {k: v for k, v in vars(model.config).items() if not k.startswith("_")},
            "Info": model.info,
            "Evaluation": self.report(name, "evaluation"),
        }
