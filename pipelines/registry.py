"""Pipeline name -> pipeline. Importing this module imports no TensorFlow."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from pipelines.errors import UserError

# Registry name -> Python package. Each package has config.py (no TensorFlow) and pipeline.py.
PIPELINES: dict[str, str] = {
    "sentiment": "pipelines.sentiment",
    "forecasting": "pipelines.forecasting",
    "music": "pipelines.music",
    "translation": "pipelines.translation",
    "video-activity": "pipelines.video_activity",
    "speech-to-text": "pipelines.speech_to_text",
}


def canonical_name(name: str) -> str:
    """The registry name for ``name`` (underscores accepted for hyphens); UserError if unknown."""
    candidate = name.strip().lower().replace("_", "-")
    if candidate not in PIPELINES:
        raise UserError(f"unknown pipeline {name!r}; choose one of {', '.join(PIPELINES)}")
    return candidate


def config_module(name: str) -> ModuleType:
    """The pipeline's ``config`` module: ``CONFIG_CLASS``, ``SUMMARY``, ``DATA_SOURCES`` and
    ``SEARCH_SPACE`` (imports no TensorFlow)."""
    return importlib.import_module(PIPELINES[canonical_name(name)] + ".config")


def load_pipeline(name: str) -> Any:
    """The pipeline object (imports TensorFlow)."""
    return importlib.import_module(PIPELINES[canonical_name(name)] + ".pipeline").PIPELINE
