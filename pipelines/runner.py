"""The one place that loads, tunes, trains, evaluates, exports and reports.

``load -> (tune) -> train -> evaluate -> export -> report``, inside a partial
run directory that is renamed into place only when everything is written.
"""

from __future__ import annotations

import dataclasses
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import keras
import tensorflow as tf

import layers  # noqa: F401  (registers the custom cells for loading)
from pipelines import distributed, registry, report, resume, rundir
from pipelines.base import Pipeline, Splits
from pipelines.errors import UserError
from pipelines.progress import log


@dataclasses.dataclass
class RunRequest:
    """What ``python -m pipelines run`` was asked to do."""

    name: str
    preset: str = "default"
    data: str = "builtin"
    settings: list[str] = dataclasses.field(default_factory=list)
    seed: int = 0
    out: str | None = None
    resume: bool = False
    tune: bool = False
    tuner: str = "random"
    max_trials: int | None = None
    deterministic: bool = False
    checkpoint_steps: int = 20
    distribute: str = "none"
    tune_workers: int = 0


def run(request: RunRequest) -> Path:
    """Run one pipeline end to end; returns the finished run directory.

    Under ``--distribute multiworker`` a worker other than the chief only trains and
    returns the folder holding its final weights.
    """
    strategy = distributed.make_strategy() if request.distribute == "multiworker" else None
    chief, worker_index = distributed.task() if strategy else (True, 0)
    name = registry.canonical_name(request.name)
    pipeline = registry.load_pipeline(name)
    if not chief:
        return _run_worker(request, pipeline, strategy, worker_index)
    if request.resume:
        partial = rundir.find_interrupted(name, request.out)
        distribute = request.distribute
        request, config = _resumed_request(partial, pipeline)
        request.distribute = distribute
        log(f"resuming {partial}")
    else:
        config = _requested_config(pipeline, request)
        partial = rundir.partial_of(rundir.new_run_dir(name, request.out))
    _seed(request)
    log(f"{name}: loading data {request.data!r}")
    splits = pipeline.load_data(config, request.data, request.seed)
    log(f"splits: {splits.sizes()} from {splits.info['source']}")
    fresh = not partial.exists()
    partial.mkdir(parents=True, exist_ok=True)
    try:
        _write_run_config(partial, request, config, splits)
        if request.tune:
            config = _tune(pipeline, config, splits, partial, request)
            _write_run_config(partial, request, config, splits)  # now with the tuned values
        model, history_info = _train_any(pipeline, config, splits, partial, request, strategy)
        _evaluate_export_report(pipeline, model, config, splits, partial, request, history_info)
    except UserError:
        if fresh:
            shutil.rmtree(partial, ignore_errors=True)
        raise
    resume.kill_point("finish")
    final = rundir.finish(partial, link_latest=request.out is None)
    shutil.rmtree(final / "backup", ignore_errors=True)  # the training state; no longer needed
    log(f"finished: {final}")
    return final


def _requested_config(pipeline: Pipeline, request: RunRequest):
    config = pipeline.config_class.from_preset(request.preset).with_overrides(request.settings)
    if request.max_trials:
        config = config.with_settings({"max_trials": request.max_trials})
    if request.tune and request.distribute != "none":
        raise UserError("--tune and --distribute multiworker do not go together")
    return config


def _seed(request: RunRequest) -> None:
    keras.utils.set_random_seed(request.seed)
    if request.deterministic:
        tf.config.experimental.enable_op_determinism()


def _train_any(pipeline, config, splits, partial, request: RunRequest, strategy):
    if strategy is None:
        return train(pipeline, config, splits, partial, request.seed, request.checkpoint_steps)
    model, info = distributed.train(
        strategy, pipeline, config, splits, partial, request.seed, chief=True
    )
    rundir.write_json(partial / "training.json", info)
    return model, info


def _run_worker(request: RunRequest, pipeline: Pipeline, strategy, index: int) -> Path:
    """A non-chief worker: train in a temporary folder, keep only the final weights.

    With ``--resume`` it reads the chief's backup (``--out``'s partial folder).
    """
    config = _requested_config(pipeline, request)
    chief_partial = rundir.partial_of(Path(request.out)) if request.out else None
    if request.resume and chief_partial is not None:
        config = _resumed_request(chief_partial, pipeline)[1]
    _seed(request)
    splits = pipeline.load_data(config, request.data, request.seed)
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        if request.resume and chief_partial is not None and (chief_partial / "backup").exists():
            shutil.copytree(chief_partial / "backup", work / "backup")
        model, _ = distributed.train(
            strategy, pipeline, config, splits, work, request.seed, chief=False
        )
    final = Path(request.out or f"runs/{pipeline.name}/worker")
    folder = final.with_name(f"{final.name}.worker-{index}")
    folder.mkdir(parents=True, exist_ok=True)
    model.save_weights(folder / "model.weights.h5")
    log(f"worker {index} finished: {folder}")
    return folder


def _resumed_request(partial: Path, pipeline: Pipeline):
    saved = rundir.read_json(partial / "config.json")
    request = RunRequest(**saved["request"])
    request.resume = True
    return request, pipeline.config_class.from_dict(saved["config"])


def _write_run_config(partial: Path, request: RunRequest, config, splits: Splits) -> None:
    rundir.write_json(
        partial / "config.json",
        {
            "pipeline": registry.canonical_name(request.name),
            "request": dataclasses.asdict(request) | {"resume": False},
            "config": config.to_dict(),  # after tuning: the values the final model used
            "data": request.data,
            "seed": request.seed,
            "versions": {
                "python": platform.python_version(),
                "tensorflow": tf.__version__,
                "keras": keras.__version__,
            },
        },
    )
    rundir.write_json(partial / "data_info.json", splits.info)


def _tune(pipeline: Pipeline, config, splits: Splits, partial: Path, request: RunRequest):
    from tuning.hypermodel import PipelineHyperModel
    from tuning.search import run_search

    log(
        f"tuning: {request.tuner} search, up to {config.max_trials} trials of "
        f"{config.tune_epochs} epochs"
    )
    hypermodel = PipelineHyperModel(pipeline, config, splits, pipeline.search_space)
    best = run_search(
        hypermodel,
        tuner_name=request.tuner,
        max_trials=config.max_trials,
        epochs=config.tune_epochs,
        directory=partial / "tuning",
        seed=request.seed,
        resume=request.resume,
        workers=request.tune_workers,
        worker_command=[sys.executable, "-m", "tuning.worker", str(partial.resolve())],
    )
    log(f"tuning: best {best}")
    return config.with_settings(best)


def train(
    pipeline: Pipeline, config, splits: Splits, partial: Path, seed: int, checkpoint_steps: int = 20
):
    """Fit with early stopping, checkpoints, TensorBoard logs, ``history.csv`` and resumability.

    The whole training state is backed up in ``backup/`` every ``checkpoint_steps``
    steps and at each epoch end (``pipelines.resume``); a resumed run continues from
    the step of its last backup, and a finished training is not repeated.
    """
    model = pipeline.build_model(config, splits.info)
    stopping = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=config.patience, restore_best_weights=True
    )
    (partial / "checkpoints").mkdir(exist_ok=True)
    best = keras.callbacks.ModelCheckpoint(
        str(partial / "checkpoints" / "best.weights.h5"),
        monitor="val_loss",
        save_best_only=True,
        save_weights_only=True,
    )
    epoch_data, train_data = _training_data(pipeline, config, splits, seed)
    steps = checkpoint_steps if epoch_data else 0  # mid-epoch backups need EpochData's skip
    state = resume.TrainingState(partial / "backup", steps, stopping, best, epoch_data)
    if state.restore_finished(model):
        log("training: already finished before the interruption; not repeated")
        return model, _finished_training_info(partial, state)
    _trim_history_to_backup(partial)
    # history.csv is written before the backup, so after a kill it holds every backed-up
    # epoch (and at most one more, which _trim_history_to_backup drops on resume).
    callbacks = [
        keras.callbacks.CSVLogger(
            str(partial / "history.csv"), append=(partial / "history.csv").exists()
        ),
        stopping,
        best,
        state,  # after early stopping and the checkpoint: it backs up their state
        resume.KillPoint(),
        keras.callbacks.TensorBoard(str(partial / "logs")),
    ]
    log(f"training: {model.count_params():,} parameters, up to {config.epochs} epochs")
    started = time.perf_counter()
    model.fit(
        train_data,
        validation_data=pipeline.make_dataset(splits.validation, config.batch_size),
        epochs=config.epochs,
        callbacks=callbacks,
        shuffle=False,
        verbose=1 if sys.stdout.isatty() else 2,
    )
    seconds = time.perf_counter() - started
    info = {
        "train_seconds": round(seconds, 2),
        "epochs_run": state.epoch,
        "train_samples_per_second": round(state.epoch * len(splits.train[1]) / seconds, 1)
        if state.epoch
        else None,
    }
    rundir.write_json(partial / "training.json", info)
    return model, info


def _training_data(pipeline: Pipeline, config, splits: Splits, seed: int):
    """``(EpochData or None, dataset)``: epoch-seeded shuffling where batches can be rebuilt.

    Where they cannot (variable-length batches), the pipeline's own shuffled dataset is
    used and a resumed run continues from its last backup with a different data order.
    """
    unshuffled = pipeline.make_dataset(splits.train, config.batch_size)
    if not resume.EpochData.supports(unshuffled):
        log("training: batches of variable shape; a resumed run reshuffles from its backup")
        return None, pipeline.make_dataset(splits.train, config.batch_size, shuffle=True, seed=seed)
    data = resume.EpochData(unshuffled, len(splits.train[1]), config.batch_size, seed)
    return data, data.dataset


def _finished_training_info(partial: Path, state: resume.TrainingState) -> dict:
    path = partial / "training.json"
    if path.is_file():
        return rundir.read_json(path)
    return {"train_seconds": None, "epochs_run": state.epoch, "train_samples_per_second": None}


def _trim_history_to_backup(partial: Path) -> None:
    """Keep only the rows of ``history.csv`` for epochs the training backup holds."""
    history = partial / "history.csv"
    if not history.exists():
        return
    state = resume.read_state(partial / "backup")
    done = state["epoch"] if state else 0
    lines = history.read_text().splitlines(keepends=True)
    history.write_text("".join(lines[: 1 + done]) if done else "")


def _evaluate_export_report(pipeline, model, config, splits, partial, request, history_info):
    log("evaluating on the test split beside the baselines")
    evaluation = pipeline.evaluate(model, splits, config, partial)
    model.save(partial / "model.keras")
    log("exporting saved_model/")
    shutil.rmtree(partial / "saved_model", ignore_errors=True)  # a killed export's remains
    pipeline.export(model, splits.info, partial / "saved_model")
    resume.kill_point("export")
    metrics = {
        "pipeline": pipeline.name,
        "dataset": {
            "name": splits.info["name"],
            "source": splits.info["source"],
            "splits": splits.sizes(),
        },
        "test": evaluation.test,
        "baselines": evaluation.baselines,
        "seed": request.seed,
        **history_info,
    }
    rundir.write_json(partial / "metrics.json", metrics)
    report.write_report(partial, metrics, config, evaluation)
    print(report.metrics_table(metrics))


def load_run(run_dir: str):
    """The pipeline, config, saved run config, data info and Keras model of a finished run."""
    path = Path(run_dir)
    saved = rundir.read_json(path / "config.json")
    pipeline = registry.load_pipeline(saved["pipeline"])
    config = pipeline.config_class.from_dict(saved["config"])
    info = rundir.read_json(path / "data_info.json")
    if not (path / "model.keras").is_file():
        raise UserError(f"{path / 'model.keras'} not found: the run did not finish")
    try:
        # safe_mode refuses Lambda layers and anything else that would run pickled code.
        model = keras.models.load_model(path / "model.keras", safe_mode=True)
    except Exception as error:
        raise UserError(
            f"{path / 'model.keras'}: cannot load the model ({type(error).__name__}: {error})"
        ) from None
    return pipeline, config, saved, info, model


def evaluate_run(run_dir: str, data_spec: str | None, settings: list[str] | None = None) -> Path:
    """Evaluate a finished run again, on its own test split or on every row of ``data_spec``.

    ``settings`` (``KEY=VALUE``) change how ``data_spec`` is read, e.g. its column names.
    """
    pipeline, config, saved, info, model = load_run(run_dir)
    keras.utils.set_random_seed(saved["seed"])
    splits = pipeline.load_data(config, saved["data"], saved["seed"])
    splits.info = info
    if data_spec:
        test_config = config.with_overrides(settings or [])
        splits.test = pipeline.load_test_data(test_config, data_spec, info)
    label = _slug(data_spec.replace(":", "_").split("/")[-1] if data_spec else "test")
    final = Path(run_dir) / "evaluations" / label
    partial = rundir.partial_of(final)
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    evaluation = pipeline.evaluate(model, splits, config, partial)
    metrics = {
        "pipeline": pipeline.name,
        "evaluated_on": data_spec or saved["data"],
        "dataset": {"splits": splits.sizes()},
        "test": evaluation.test,
        "baselines": evaluation.baselines,
    }
    rundir.write_json(partial / "metrics.json", metrics)
    shutil.rmtree(final, ignore_errors=True)
    partial.rename(final)
    print(report.metrics_table(metrics))
    log(f"written: {final / 'metrics.json'}")
    return final


def predict(run_dir: str, inputs: list[str]) -> None:
    """Print one prediction line per input."""
    pipeline, _, _, info, model = load_run(run_dir)
    for line in pipeline.predict(model, inputs, info):
        print(line)


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-." else "_" for c in text)[-80:]
