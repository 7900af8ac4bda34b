"""Matplotlib without a display, and the plots every run has."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # runs happen on machines without a screen

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
from sklearn.metrics import ConfusionMatrixDisplay  # noqa: E402

__all__ = ["plt", "plot_confusion_matrix", "plot_learning_curves"]


def plot_learning_curves(history_csv: Path, path: Path) -> bool:
    """Loss and every tracked metric per epoch, train beside validation; False if no history."""
    if not history_csv.exists():
        return False
    history = pd.read_csv(history_csv)
    metrics = [
        c
        for c in history.columns
        if c != "epoch" and not c.startswith("val_") and c != "learning_rate"
    ]
    if history.empty or not metrics:
        return False
    figure, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.6), squeeze=False)
    epochs = history["epoch"] + 1
    for axis, metric in zip(axes[0], metrics, strict=True):
        axis.plot(epochs, history[metric], marker="o", label="train")
        if f"val_{metric}" in history:
            axis.plot(epochs, history[f"val_{metric}"], marker="o", label="validation")
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set_title(metric)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def plot_confusion_matrix(
    targets,
    predicted,
    class_names: list[str],
    path: Path,
    title: str = "Confusion matrix, test split",
) -> None:
    """Save a confusion-matrix heat map of the test predictions."""
    figure, axes = plt.subplots(figsize=(1.2 * len(class_names) + 3, 1.2 * len(class_names) + 2.5))
    ConfusionMatrixDisplay.from_predictions(
        targets,
        predicted,
        labels=list(range(len(class_names))),
        display_labels=class_names,
        ax=axes,
        colorbar=False,
        cmap="Blues",
    )
    axes.set_title(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
