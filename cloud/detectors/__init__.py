"""AWS IoT Events-compatible detector models: load, validate, run."""

from cloud.detectors.engine import ActionRequest, ActionSink, DetectorEngine
from cloud.detectors.messages import batch_put_message, batch_update_detector
from cloud.detectors.model import (
    DetectorModel,
    InputDefinition,
    check_references,
    default_detector_paths,
    load_detector_model,
    load_input,
)

__all__ = [
    "ActionRequest",
    "ActionSink",
    "DetectorEngine",
    "DetectorModel",
    "InputDefinition",
    "batch_put_message",
    "batch_update_detector",
    "check_references",
    "default_detector_paths",
    "load_detector_model",
    "load_input",
]
