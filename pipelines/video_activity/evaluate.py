"""Video metrics (accuracy, top-k, within-pair accuracy, confusion) and baselines.

The frame-averaging baseline is the same per-frame CNN with the recurrence
replaced by an average over frames, trained here on the same training split:
the gap between it and the model is what the recurrence learned.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from pipelines import progress, strict_json
from pipelines.base import Evaluation, Splits
from pipelines.plotting import plot_confusion_matrix, plt
from pipelines.progress import log
from pipelines.video_activity.config import VideoConfig
from pipelines.video_activity.data import VideoInfo
from pipelines.video_activity.model import build_frame_average_baseline


def classification_metrics(
    targets: np.ndarray, probabilities: np.ndarray, top_k: int, pairs: list[list[int]]
) -> dict[str, float]:
    """Accuracy, top-k accuracy and (with ``pairs``) accuracy within the right pair."""
    predicted = probabilities.argmax(axis=-1)
    k = min(top_k, probabilities.shape[-1])
    top = np.argsort(-probabilities, axis=-1, kind="stable")[:, :k]
    metrics = {
        "accuracy": float(np.mean(predicted == targets)),
        f"top_{k}_accuracy": float(np.mean((top == targets[:, None]).any(axis=-1))),
    }
    if pairs:
        metrics["within_pair_accuracy"] = within_pair_accuracy(targets, predicted, pairs)
    return metrics


def within_pair_accuracy(targets, predicted, pairs: list[list[int]]) -> float:
    """Of the clips predicted within their own pair, the fraction given the right class.

    A model blind to frame order scores about 0.5 here; one that sees it, about 1.
    """
    pair_of = {c: i for i, pair in enumerate(pairs) for c in pair}
    same_pair = np.array(
        [pair_of[t] == pair_of.get(p) for t, p in zip(targets, predicted, strict=True)]
    )
    if not same_pair.any():
        return 0.0
    return float(np.mean(predicted[same_pair] == targets[same_pair]))


def pair_confusion(targets, predicted, pairs, class_names) -> list[dict[str, Any]]:
    """Per pair: clips, right class, swapped for the pair's other class, elsewhere."""
    rows = []
    for a, b in pairs:
        members = np.isin(targets, [a, b])
        partner = np.where(targets[members] == a, b, a)
        rows.append(
            {
                "pair": f"{class_names[a]} / {class_names[b]}",
                "clips": int(members.sum()),
                "right": float(np.mean(predicted[members] == targets[members])),
                "swapped": float(np.mean(predicted[members] == partner)),
            }
        )
    return rows


def majority_probabilities(train_targets: np.ndarray, count: int, classes: int) -> np.ndarray:
    """The training split's class frequencies, the same for every clip."""
    frequencies = np.bincount(train_targets, minlength=classes) / len(train_targets)
    return np.tile(frequencies, (count, 1))


def frame_average_baseline(splits: Splits, config: VideoConfig) -> keras.Model:
    """Train the frame-averaging baseline on the training split (early stopping on validation)."""
    model = build_frame_average_baseline(config, splits.info)
    log(f"training the frame-averaging baseline: up to {config.baseline_epochs} epochs")
    model.fit(
        _dataset(splits.train, config.batch_size, shuffle=True),
        validation_data=_dataset(splits.validation, config.batch_size),
        epochs=config.baseline_epochs,
        callbacks=[
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=config.patience, restore_best_weights=True
            )
        ],
        shuffle=False,  # the dataset shuffles itself
        verbose=progress.keras_verbose(),
    )
    return model


def _dataset(split, batch_size: int, shuffle: bool = False) -> tf.data.Dataset:
    dataset = tf.data.Dataset.from_tensor_slices(split)
    if shuffle:
        dataset = dataset.shuffle(len(split[1]), seed=0)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def evaluate(model, splits: Splits, config: VideoConfig, out_dir: Path) -> Evaluation:
    """Model and baselines on ``splits.test``; writes the plots and ``pair_confusion.json``."""
    clips, targets = splits.test
    info = splits.info
    probabilities = model.predict(clips, verbose=progress.keras_verbose(), batch_size=64)
    strict_json.require_finite_outputs(probabilities)
    baseline = frame_average_baseline(splits, config).predict(clips, verbose=0, batch_size=64)
    majority = majority_probabilities(splits.train[1], len(targets), len(info.class_names))
    plots = _write_plots(splits, probabilities.argmax(-1), baseline.argmax(-1), out_dir)
    pair_rows = {
        "model": pair_confusion(targets, probabilities.argmax(-1), info.pairs, info.class_names),
        "frame_average": pair_confusion(targets, baseline.argmax(-1), info.pairs, info.class_names),
    }
    if info.pairs:
        (out_dir / "pair_confusion.json").write_text(strict_json.dumps(pair_rows, indent=2) + "\n")

    def scores(p: np.ndarray) -> dict[str, float]:
        return classification_metrics(targets, p, config.top_k, info.pairs)

    return Evaluation(
        test=scores(probabilities),
        baselines={"majority": scores(majority), "frame_average": scores(baseline)},
        plots=plots,
        report=_report(info, pair_rows),
    )


def _write_plots(splits: Splits, predicted, baseline_predicted, out_dir: Path) -> dict[str, str]:
    """The sample frames and both confusion matrices; returns title -> file name."""
    targets, names = splits.test[1], splits.info.class_names
    plot_confusion_matrix(targets, predicted, names, out_dir / "confusion_matrix.png")
    plot_confusion_matrix(
        targets,
        baseline_predicted,
        names,
        out_dir / "baseline_confusion_matrix.png",
        title="Frame-averaging baseline, test split",
    )
    plot_sample_frames(splits.train, names, out_dir / "sample_frames.png")
    return {
        "Sample frames (one training clip per class, time left to right)": "sample_frames.png",
        "Confusion matrix (test split)": "confusion_matrix.png",
        "Confusion matrix of the frame-averaging baseline (test split)": (
            "baseline_confusion_matrix.png"
        ),
    }


def plot_sample_frames(split, class_names: list[str], path: Path) -> None:
    """One strip of frames per class, from the first clip of that class in ``split``."""
    clips, targets = split
    present = [c for c in range(len(class_names)) if np.any(targets == c)][:12]
    frames = clips.shape[1]
    figure, axes = plt.subplots(
        len(present), frames, figsize=(0.9 * frames + 1.5, 0.95 * len(present)), squeeze=False
    )
    for row, label in enumerate(present):
        clip = clips[np.flatnonzero(targets == label)[0]]
        for t in range(frames):
            axes[row, t].imshow(clip[t])
            axes[row, t].set_xticks([])
            axes[row, t].set_yticks([])
        axes[row, 0].set_ylabel(class_names[label], rotation=0, ha="right", va="center")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


ABOUT_GENERATED = (
    "The built-in clips are **generated**, not recorded: no labelled human-activity "
    "video reaches this machine. Real handwritten digits (scikit-learn's `load_digits`) "
    "move, rotate, grow or shrink over cluttered, noisy, jittering backgrounds; the two "
    "classes of each pair are each other's reverse in time, so only frame order tells "
    "them apart. `within_pair_accuracy` is about 0.5 for a model blind to order."
)


def _report(info: VideoInfo, pair_rows: dict[str, list[dict[str, Any]]]) -> str:
    """The report's extra sections: about generated data, the per-pair table, skipped files."""
    lines = ["## About the data", "", ABOUT_GENERATED, ""] if info.generated else []
    if pair_rows["model"]:
        lines += _pair_table(pair_rows) + [""]
    if info.skipped_files:
        lines += [f"## Skipped files: {len(info.skipped_files)} (skip_bad_files)", ""]
        lines += [f"- {reason}" for reason in info.skipped_files[:50]]
    return "\n".join(lines)


def _pair_table(pair_rows: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Per pair, the model's and the frame-averaging baseline's right and swapped shares."""
    lines = [
        "## Per pair (test split): right class, and swapped for the pair's other class",
        "",
        "| pair | clips | model right | model swapped | frame-average right "
        "| frame-average swapped |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for mine, base in zip(pair_rows["model"], pair_rows["frame_average"], strict=True):
        lines.append(
            f"| {mine['pair']} | {mine['clips']} | {mine['right']:.3f} | "
            f"{mine['swapped']:.3f} | {base['right']:.3f} | {base['swapped']:.3f} |"
        )
    return lines
