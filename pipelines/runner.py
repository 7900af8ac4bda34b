"""The one place that loads, tunes, trains, evaluates, exports and reports.

``load -> (tune) -> train -> evaluate -> export -> report``, inside a partial
run directory that is renamed into place only when everything is written.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import keras
import tensorflow as tf

import layers  # noqa: F401  (registers the custom cells for loading)
from pipelines import distributed, locks, registry, report, resume, rundir, training
from pipelines import experiment as experiments
from pipelines.base import Pipeline, Splits
from pipelines.errors import UserError
from pipelines.experiment import Experiment, Resolved
from pipelines.progress import log
from pipelines.trainer import Trainer


@dataclasses.dataclass
class RunRequest:
    """A resolved experiment and how to run it.

    Args:
        resolved: the experiment checked against its pipeline (``pipelines.experiment``).
        resume: continue the interrupted run in ``resolved.experiment.out``'s partial folder.
        distribute: ``none`` or ``multiworker`` (the cluster in ``TF_CONFIG``).
        callbacks: extra Keras callbacks given to every fit of the run (trials, training).
        in_runs_folder: whether the run lives under ``runs/NAME`` and updates its
            ``latest`` link (default: when no ``out`` is given).
    """

    resolved: Resolved
    resume: bool = False
    distribute: str = "none"
    callbacks: Sequence[keras.callbacks.Callback] = ()
    in_runs_folder: bool | None = None

    @property
    def link_latest(self) -> bool:
        """Whether the finished run becomes ``runs/NAME/latest`` (not for a given ``--out``)."""
        return self.out is None if self.in_runs_folder is None else self.in_runs_folder

    @property
    def experiment(self) -> Experiment:
        """The experiment as declared."""
        return self.resolved.experiment

    @property
    def name(self) -> str:
        """The pipeline's registry name."""
        return self.resolved.name

    @property
    def seed(self) -> int:
        """The run's seed."""
        return self.experiment.seed

    @property
    def out(self) -> str | None:
        """The run directory asked for, if any."""
        return self.experiment.out

    @property
    def tune(self) -> bool:
        """Whether the run searches hyperparameters first."""
        return self.experiment.tuning is not None


def run_command(resolved: Resolved | None, args) -> Path:
    """``run`` from the command line: a new run, or ``--resume`` of an interrupted one."""
    if args.resume:
        return run(resume_request(args.name, args.out, args.distribute))
    return run(RunRequest(resolved, distribute=args.distribute))


def resume_request(name: str | None, out: str | None, distribute: str = "none") -> RunRequest:
    """The request that continues the interrupted run of ``out``, else ``name``'s newest.

    UserError ``... is in use by process N`` while another process holds ``out``'s lock:
    a live run is not an interrupted one.
    """
    if out:
        locks.check_free(Path(out))
    partial = rundir.find_interrupted(registry.canonical_name(name) if name else None, out)
    resolved = resolved_from_run(partial)
    if resolved.experiment.out is None:
        resolved = experiments.resolve(
            experiments.with_overrides(resolved.experiment, out=str(rundir.final_of(partial))),
            str(partial / "config.json"),
        )
    return RunRequest(resolved, resume=True, distribute=distribute, in_runs_folder=not out)


def resolved_from_run(folder: Path) -> Resolved:
    """The experiment a run directory (finished or partial) was made from."""
    path = folder / "config.json"
    return experiments.resolve(experiments.parse(rundir.read_json(path), str(path)), str(path))


def run(request: RunRequest) -> Path:
    """Run one pipeline end to end; returns the finished run directory.

    ``request.callbacks`` are passed to every fit the run makes in this process (tuning
    trials, then the final training), after the trainer's own. Under ``--distribute
    multiworker`` a worker other than the chief only trains and returns the folder
    holding its final weights.
    """
    callbacks = list(request.callbacks)
    if request.tune and request.distribute != "none":
        raise UserError("--tune and --distribute multiworker do not go together")
    strategy = distributed.make_strategy() if request.distribute == "multiworker" else None
    chief, worker_index = distributed.task() if strategy else (True, 0)
    pipeline = registry.load_pipeline(request.name)
    if not chief:
        return _run_worker(request, pipeline, strategy, worker_index, callbacks)
    final = Path(request.out) if request.resume else rundir.new_run_dir(request.name, request.out)
    partial = rundir.partial_of(final)
    rundir.check_writable(final.parent, f"run folder {final}")
    with rundir.parents_made(final), locks.hold(final):  # the lock file goes beside the run
        if request.resume:
            _check_still_interrupted(final)
            log(f"resuming {partial}")
        else:
            rundir.check_new_run_dir(final)
        return _run_locked(request, pipeline, partial, strategy, callbacks)


def _check_still_interrupted(final: Path) -> None:
    """UserError unless ``final``'s partial folder still holds an interrupted run (another
    process may have finished it before the lock was taken)."""
    partial = rundir.partial_of(final)
    if not (partial / "config.json").is_file():
        if final.exists():
            raise UserError(f"--resume: {final} has already finished")
        raise UserError(f"--resume: no interrupted run found at {partial}")
    rundir.check_writable(partial, f"--resume: run folder {partial}")


def _run_locked(request: RunRequest, pipeline: Pipeline, partial: Path, strategy, callbacks):
    """The run's work in ``partial`` (its lock held), then the rename into place."""
    config = request.resolved.config
    config.check_memory()
    _seed(request)
    log(f"{request.name}: loading data {request.experiment.data!r}")
    splits = pipeline.load_data(config, request.resolved.data, request.seed)
    log(f"splits: {splits.sizes()} from {splits.info.source}")
    fresh = not partial.exists()
    partial.mkdir(parents=True, exist_ok=True)
    try:
        _write_run_config(partial, request.resolved, splits)
        if request.tune:
            config = _tune(pipeline, config, splits, partial, request, callbacks)
            request.resolved = dataclasses.replace(request.resolved, config=config)
            _write_run_config(partial, request.resolved, splits, tuned=True)
        model, history_info = _train_any(
            pipeline, config, splits, partial, request, strategy, callbacks
        )
        _evaluate_export_report(pipeline, model, config, splits, partial, request, history_info)
        final = rundir.finish(partial, link_latest=request.link_latest)
    except UserError:
        if fresh:
            shutil.rmtree(partial, ignore_errors=True)
        raise
    except Exception as error:
        failed = rundir.write_failure(error)
        if failed is None:
            raise
        raise _write_failed(failed, partial) from None
    shutil.rmtree(final / "backup", ignore_errors=True)  # the training state; no longer needed
    log(f"finished: {final}")
    return final


def _write_failed(failed: OSError, partial: Path) -> UserError:
    """The error of a run whose write the file system refused: the file and the cause, and
    how to continue the partial run (removed instead when it holds nothing to continue)."""
    cause = f"writing {failed.filename or partial}: {os.strerror(failed.errno)}"
    if not (partial / "config.json").is_file():
        shutil.rmtree(partial, ignore_errors=True)
        return UserError(cause)
    final = rundir.final_of(partial)
    return UserError(f"{cause}; the run is kept in {partial}, {rundir.resume_hint(final)}")


def _seed(request: RunRequest) -> None:
    keras.utils.set_random_seed(request.seed)
    if request.experiment.deterministic:
        tf.config.experimental.enable_op_determinism()


def _train_any(pipeline, config, splits, partial, request: RunRequest, strategy, callbacks):
    if strategy is None:
        return train(
            pipeline,
            config,
            splits,
            partial,
            request.seed,
            request.experiment.checkpoint_steps,
            callbacks,
        )
    trainer = _trainer(partial, config, request.experiment.checkpoint_steps, callbacks)
    return distributed.train(strategy, pipeline, config, splits, trainer, request.seed)


def _trainer(
    directory: Path | None, config, checkpoint_steps: int, callbacks, chief=True, epoch_callbacks=()
):
    """The final training's trainer (``pipelines.trainer``) over ``directory``."""
    return Trainer(
        directory,
        epochs=config.epochs,
        patience=config.patience,
        backup_steps=checkpoint_steps,
        callbacks=callbacks,
        epoch_callbacks=epoch_callbacks,
        chief=chief,
        learning_rate=training.learning_rate_schedule(config, config.epochs),
    )


def _run_worker(request: RunRequest, pipeline: Pipeline, strategy, index: int, callbacks) -> Path:
    """A non-chief worker: train, writing nothing but the final weights.

    With ``--resume`` it continues from the chief's backup (``--out``'s partial folder).
    """
    config = request.resolved.config
    chief_partial = rundir.partial_of(Path(request.out)) if request.out else None
    if request.resume and chief_partial is not None:
        config = resolved_from_run(chief_partial).config
    _seed(request)
    splits = pipeline.load_data(config, request.resolved.data, request.seed)
    backup_of = chief_partial if request.resume else None
    trainer = _trainer(
        backup_of, config, request.experiment.checkpoint_steps, callbacks, chief=False
    )
    model, _ = distributed.train(strategy, pipeline, config, splits, trainer, request.seed)
    final = Path(request.out or f"runs/{pipeline.name}/worker")
    folder = final.with_name(f"{final.name}.worker-{index}")
    folder.mkdir(parents=True, exist_ok=True)
    model.save_weights(folder / "model.weights.h5")
    log(f"worker {index} finished: {folder}")
    return folder


def _write_run_config(partial: Path, resolved: Resolved, splits: Splits, tuned=False) -> None:
    """``config.json`` (an experiment file that reruns the run) and ``data_info.json``."""
    values = resolved.config_file(tuned=tuned)
    values["versions"] = {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
    }
    rundir.write_json(partial / "config.json", values)
    rundir.write_json(partial / "data_info.json", splits.info.to_json())


def _tune(
    pipeline: Pipeline, config, splits: Splits, partial: Path, request: RunRequest, callbacks
):
    from tuning.hypermodel import PipelineHyperModel
    from tuning.search import run_search

    resolved = request.resolved
    tuning = resolved.experiment.tuning
    _check_search_unchanged(partial / "tuning", resolved.search_record())
    epochs = tuning.max_epochs or config.tune_epochs
    log(
        f"tuning: {tuning.tuner} search of {', '.join(resolved.space)} for "
        f"{tuning.objective.name} ({tuning.objective.direction}), "
        + ("hyperband" if tuning.tuner == "hyperband" else f"up to {resolved.max_trials} trials")
        + f" of {epochs} epochs"
    )
    hypermodel = PipelineHyperModel(pipeline, config, splits, resolved.space)
    best = run_search(
        hypermodel,
        tuner_name=tuning.tuner,
        max_trials=resolved.max_trials,
        epochs=epochs,
        objective=tuning.objective,
        directory=partial / "tuning",
        seed=request.seed,
        resume=request.resume,
        workers=tuning.workers,
        worker_command=[sys.executable, "-m", "tuning.worker", str(partial.resolve())],
        callbacks=callbacks,
    )
    log(f"tuning: best {best}")
    return config.with_settings(best)


def _check_search_unchanged(directory: Path, record: dict) -> None:
    """Write the searched space and objective; refuse to resume a search that differs."""
    path = directory / "search.json"
    if path.is_file() and rundir.read_json(path) != json.loads(json.dumps(record)):
        raise UserError(
            f"{path}: the interrupted search explored another space, objective or tuner than "
            "this experiment asks for; start a new run instead of --resume"
        )
    directory.mkdir(parents=True, exist_ok=True)
    rundir.write_json(path, record)


def train(
    pipeline: Pipeline,
    config,
    splits: Splits,
    partial: Path,
    seed: int,
    checkpoint_steps: int = 20,
    callbacks: Sequence[keras.callbacks.Callback] = (),
):
    """Train the run's model in ``partial`` with the trainer; returns ``(model, training info)``.

    Early stopping, checkpoints, TensorBoard logs, ``history.csv``, backups every
    ``checkpoint_steps`` steps and resuming are ``pipelines.trainer.Trainer``'s; a
    finished training is not repeated.
    """
    model = pipeline.build_model(config, splits.info)
    config.check_memory(model.count_params())
    epoch_data, train_data = _training_data(pipeline, config, splits, seed)
    steps = checkpoint_steps if epoch_data else 0  # mid-epoch backups need EpochData's skip
    log(f"training: {model.count_params():,} parameters, up to {config.epochs} epochs")
    epoch_callbacks = pipeline.epoch_callbacks(splits, config)
    result = _trainer(partial, config, steps, callbacks, epoch_callbacks=epoch_callbacks).fit(
        model,
        train_data,
        pipeline.make_dataset(splits.validation, config.batch_size),
        data=epoch_data,
        examples=len(splits.train[1]),
    )
    return model, result.info


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


def _evaluate_export_report(pipeline, model, config, splits, partial, request, history_info):
    log("evaluating on the test split beside the baselines")
    evaluation = pipeline.evaluate(model, splits, config, partial)
    with rundir.writing(partial / "model.keras"):
        model.save(partial / "model.keras")
    log("exporting saved_model/")
    shutil.rmtree(partial / "saved_model", ignore_errors=True)  # a killed export's remains
    with rundir.writing(partial / "saved_model"):
        pipeline.export(model, splits.info, partial / "saved_model")
    metrics = {
        "pipeline": pipeline.name,
        "dataset": {
            "name": splits.info.name,
            "source": splits.info.source,
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
    """The pipeline, resolved experiment, data info and Keras model of a finished run.

    UserError for a run that has not finished (``rundir.finished_run``).
    """
    path = rundir.finished_run(Path(run_dir))
    resolved = resolved_from_run(path)
    pipeline = registry.load_pipeline(resolved.name)
    info = pipeline.info_class.from_json(
        rundir.read_json(path / "data_info.json"), path / "data_info.json"
    )
    try:
        # safe_mode refuses Lambda layers and anything else that would run pickled code.
        model = keras.models.load_model(path / "model.keras", safe_mode=True)
    except Exception as error:
        reason = (str(error).strip().splitlines() or [""])[0]
        raise UserError(
            f"{path / 'model.keras'}: cannot load the model ({type(error).__name__}: "
            f"{reason}); a run made by another version of the suite may not load: rerun it "
            f"with `rnn-suite run --config {path / 'config.json'}`"
        ) from None
    return pipeline, resolved, info, model


def evaluate_run(
    run_dir: str,
    data_spec: str | None,
    settings: list[str] | None = None,
    overwrite: bool = False,
) -> Path:
    """Evaluate a finished run again, on its own test split or on every row of ``data_spec``.

    ``settings`` (``KEY=VALUE``) change how ``data_spec`` is read, e.g. its column names.
    Writes ``RUN_DIR/evaluations/LABEL/`` holding the run's lock; an evaluation already
    there is replaced only with ``overwrite``.
    """
    run = rundir.finished_run(Path(run_dir))
    label = _slug(data_spec.replace(":", "_").split("/")[-1] if data_spec else "test")
    final = run / "evaluations" / label
    rundir.check_writable(final.parent, f"evaluation {final}")
    with locks.hold(run):
        if os.path.lexists(final) and not overwrite:
            raise UserError(f"{final} already exists; add --overwrite to replace it")
        return _evaluate_locked(run, data_spec, settings, final)


def _evaluate_locked(run: Path, data_spec, settings, final: Path) -> Path:
    """``evaluate_run``'s work, the run's lock held."""
    pipeline, resolved, info, model = load_run(str(run))
    config, seed = resolved.config, resolved.experiment.seed
    keras.utils.set_random_seed(seed)
    splits = pipeline.load_data(config, resolved.data, seed)
    splits.info = info
    if data_spec:
        test_config = config.with_overrides(settings or [])
        splits.test = pipeline.load_test_data(test_config, data_spec, info)
    partial = rundir.partial_of(final)
    shutil.rmtree(partial, ignore_errors=True)  # a killed evaluation's remains
    partial.mkdir(parents=True)
    evaluation = pipeline.evaluate(model, splits, config, partial)
    metrics = {
        "pipeline": pipeline.name,
        "evaluated_on": data_spec or resolved.experiment.data,
        "dataset": {"splits": splits.sizes()},
        "test": evaluation.test,
        "baselines": evaluation.baselines,
    }
    rundir.write_json(partial / "metrics.json", metrics)
    if final.is_dir() and not final.is_symlink():
        shutil.rmtree(final)  # --overwrite was given
    elif os.path.lexists(final):
        final.unlink()
    partial.rename(final)
    print(report.metrics_table(metrics))
    log(f"written: {final / 'metrics.json'}")
    return final


def predict(run_dir: str, inputs: list[str]) -> None:
    """Print one prediction line per input."""
    for number, text in enumerate(inputs, start=1):
        _check_text_argument(number, text)
    pipeline, _, info, model = load_run(run_dir)
    for line in pipeline.predict(model, inputs, info):
        print(line)


def _check_text_argument(number: int, text: str) -> None:
    """UserError for a command-line input that is not UTF-8 text (the shell passed bytes
    that Python could only keep as surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise UserError(
            f"input {number} is not UTF-8 text (byte {error.start} of it); "
            "pass text in UTF-8, or a file with --input and --set encoding=..."
        ) from None


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-." else "_" for c in text)[-80:]
