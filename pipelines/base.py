"""What a pipeline hands the runner, and the base class every pipeline fills in."""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import tensorflow as tf

from pipelines.config_base import BaseConfig
from pipelines.errors import UserError
from pipelines.records import DataInfo
from pipelines.sources import DataSources, DataSpec
from tuning.space import SearchSpace


@dataclasses.dataclass
class Splits:
    """A data set split three ways, in memory, plus what the model needs to know of it.

    Each split is ``(inputs, targets)`` with a first axis of examples. ``info`` is the
    pipeline's typed record (a ``DataInfo`` subclass): ``name``, ``source`` and
    whatever ``build_model`` and the export need (class names, a vocabulary,
    normalisation statistics).
    """

    train: tuple[Any, np.ndarray]
    validation: tuple[Any, np.ndarray]
    test: tuple[Any, np.ndarray]
    info: DataInfo

    def sizes(self) -> dict[str, int]:
        """Examples per split."""
        return {name: len(getattr(self, name)[1]) for name in ("train", "validation", "test")}


@dataclasses.dataclass
class Evaluation:
    """The task's metrics on the test split, the baselines' on the same split, and plots."""

    test: dict[str, float]
    baselines: dict[str, dict[str, float]]
    plots: dict[str, str] = dataclasses.field(default_factory=dict)  # title -> file name
    report: str = ""  # extra Markdown for report.md (samples, tables)


class Pipeline:
    """One task. The runner owns the loop; a pipeline only supplies the parts.

    Every pipeline package has the same files, so a subclass defined in
    ``pipelines/NAME/pipeline.py`` finds its parts itself: ``config_class``, ``sources``
    and ``search_space`` from the package's ``config`` module (``CONFIG_CLASS``,
    ``DATA_SOURCES``, ``SEARCH_SPACE``), the ``data``, ``model`` and ``evaluate``
    modules, and ``files`` (prediction over files) where the package has one. A subclass
    sets ``name`` and ``info_class`` (its ``DataInfo``) and implements ``export``,
    ``serving_example``, ``serving_limits`` and ``predict``.
    """

    name: str = ""
    config_class: type[BaseConfig] = BaseConfig
    info_class: type[DataInfo] = DataInfo
    sources: DataSources
    search_space: SearchSpace
    data: ModuleType  # the loaders named by ``sources``
    model: ModuleType  # build_model(config, info)
    evaluation: ModuleType  # evaluate(model, splits, config, out_dir)
    files: ModuleType | None = None  # prediction over files (pipelines.predict_files)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        package = cls.__module__.rpartition(".")[0]
        config = importlib.import_module(f"{package}.config")
        cls.config_class = config.CONFIG_CLASS
        cls.sources = config.DATA_SOURCES
        cls.search_space = config.SEARCH_SPACE
        cls.data = importlib.import_module(f"{package}.data")
        cls.model = importlib.import_module(f"{package}.model")
        cls.evaluation = importlib.import_module(f"{package}.evaluate")
        if importlib.util.find_spec(f"{package}.files") is not None:
            cls.files = importlib.import_module(f"{package}.files")

    def load_data(self, config: BaseConfig, spec: str | DataSpec, seed: int) -> Splits:
        """Load ``spec`` and split it; UserError for a problem with the user's data."""
        parsed = self.sources.parse(spec) if isinstance(spec, str) else spec
        return getattr(self.data, parsed.source.loader)(config, parsed.argument, seed)

    def load_test_data(self, config: BaseConfig, spec: str, info: DataInfo):
        """Every example of ``spec`` as a test split ``(inputs, targets)`` for ``evaluate``."""
        parsed = self.sources.parse(spec)
        if parsed.source.test_loader is None:
            raise UserError(
                f"--data {spec!r}: {self.name} cannot evaluate on {parsed.source.kind} data; "
                f"use one of {', '.join(s.form for s in self.sources if s.test_loader)}"
            )
        return getattr(self.data, parsed.source.test_loader)(config, parsed.argument, info)

    def build_model(self, config: BaseConfig, info: DataInfo):
        """A compiled Keras model built on ``layers/``."""
        return self.model.build_model(config, info)

    def epoch_callbacks(self, splits: Splits, config: BaseConfig) -> list:
        """Callbacks that add ``val_*`` values to the epoch logs (e.g. a validation CER)."""
        return []

    def evaluate(self, model, splits: Splits, config: BaseConfig, out_dir: Path) -> Evaluation:
        """Metrics and baselines on ``splits.test``; plots written into ``out_dir``."""
        return self.evaluation.evaluate(model, splits, config, out_dir)

    def export(self, model, info: DataInfo, path: Path) -> None:
        """Write the serving SavedModel (raw inputs in) to ``path``."""
        raise NotImplementedError

    def write_serving_export(
        self, model, endpoints: dict, info: DataInfo, path: Path, limits: dict | None = None
    ) -> None:
        """Write ``endpoints`` (``serving_default`` first) as a SavedModel at ``path``, with
        the export's limits and TensorFlow Serving warm-up requests in ``assets.extra``."""
        from pipelines.export import write_export

        limits = limits if limits is not None else self.serving_limits(info)
        write_export(model, endpoints, path, limits=limits, example=self.serving_example(info))

    def serving_example(self, info: DataInfo) -> dict[str, Any]:
        """A small valid request for ``serving_default``: input name -> nested lists of the
        signature's dtype (used for warm-up requests and the contract tests)."""
        raise NotImplementedError

    def serving_limits(self, info: DataInfo) -> dict[str, Any]:
        """The bounds ``export`` enforces, per item and per request, written beside the
        SavedModel as ``assets.extra/limits.json`` for the model server::

            {"max_items": <items per request>,
             "inputs": {<input name>: {"dtype": "string|float32|uint8|int32",
                                       "max_item_bytes", "max_request_bytes" (strings) or
                                       "max_item_elements", "max_request_elements"}},
             "max_request_total_<what>": <bound over a whole request that no one input's
                                          size says, e.g. music's generated steps> (optional)}

        Build the entries with ``pipelines.export.string_input`` / ``number_input``."""
        raise NotImplementedError

    def predict(self, model, inputs: list[str], info: DataInfo) -> list[str]:
        """One printable line of prediction per raw input given on the command line."""
        raise NotImplementedError

    def make_dataset(
        self, split: tuple[Any, np.ndarray], batch_size: int, shuffle: bool = False, seed: int = 0
    ) -> tf.data.Dataset:
        """A batched ``tf.data`` pipeline over one split (shuffled with ``seed`` when asked)."""
        inputs, targets = split
        dataset = tf.data.Dataset.from_tensor_slices((inputs, targets))
        if shuffle:
            dataset = dataset.shuffle(len(targets), seed=seed, reshuffle_each_iteration=True)
        return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)
