"""Sentiment metrics (accuracy, macro F1, confusion matrix) and baselines on the same test split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

from pipelines import progress, strict_json
from pipelines.base import Evaluation, Splits
from pipelines.plotting import plot_confusion_matrix


def classification_metrics(targets: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Accuracy and macro-averaged F1."""
    return {
        "accuracy": float(accuracy_score(targets, predicted)),
        "macro_f1": float(f1_score(targets, predicted, average="macro", zero_division=0)),
    }


def majority_baseline(train_targets: np.ndarray, count: int) -> np.ndarray:
    """Predict the training split's most frequent class for every example."""
    return np.full(count, np.bincount(train_targets).argmax())


def bag_of_words_baseline(train: tuple, test_texts) -> np.ndarray:
    """Logistic regression on word counts (unigrams), scikit-learn defaults, fitted on train."""
    return _linear_text_baseline(
        CountVectorizer(), LogisticRegression(max_iter=2000), train, test_texts
    )


def bag_of_ngrams_baseline(train: tuple, test_texts) -> np.ndarray:
    """A stronger linear baseline: TF-IDF of unigrams and bigrams, less regularised (C=4)."""
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    return _linear_text_baseline(
        vectorizer, LogisticRegression(max_iter=2000, C=4.0), train, test_texts
    )


def _linear_text_baseline(vectorizer, classifier, train: tuple, test_texts) -> np.ndarray:
    classifier.fit(vectorizer.fit_transform(list(train[0])), train[1])
    return classifier.predict(vectorizer.transform(list(test_texts)))


def evaluate(model, splits: Splits, config, out_dir: Path) -> Evaluation:
    """Model and baselines on ``splits.test``; writes ``confusion_matrix.png``."""
    texts, targets = splits.test
    probabilities = model.predict(
        np.asarray(texts, dtype=object), verbose=progress.keras_verbose(), batch_size=256
    )
    strict_json.require_finite_outputs(probabilities)
    predicted = probabilities.argmax(axis=-1)
    baselines = {
        "majority": classification_metrics(
            targets, majority_baseline(splits.train[1], len(targets))
        ),
        "bag_of_words": classification_metrics(targets, bag_of_words_baseline(splits.train, texts)),
        "bag_of_ngrams": classification_metrics(
            targets, bag_of_ngrams_baseline(splits.train, texts)
        ),
    }
    class_names = splits.info.class_names
    plot_confusion_matrix(targets, predicted, class_names, out_dir / "confusion_matrix.png")
    return Evaluation(
        test=classification_metrics(targets, predicted),
        baselines=baselines,
        plots={"Confusion matrix (test split)": "confusion_matrix.png"},
        report="\n\n".join(
            (
                _confusion_table(targets, predicted, class_names),
                _samples_table(texts, targets, probabilities, class_names),
                _confident_mistakes_table(texts, targets, probabilities, class_names),
            )
        ),
    )


def _confusion_table(targets, predicted, class_names) -> str:
    """The confusion matrix as a Markdown table: rows true, columns predicted."""
    counts = confusion_matrix(targets, predicted, labels=range(len(class_names)))
    header = " | ".join(_cell(name) for name in class_names)
    rows = [
        "## Confusion matrix (test split; rows: true class, columns: predicted)",
        "",
        f"| true \\ predicted | {header} |",
        "| --- |" + " --- |" * len(class_names),
    ]
    for name, row in zip(class_names, counts, strict=True):
        rows.append(f"| {_cell(name)} | " + " | ".join(str(n) for n in row) + " |")
    return "\n".join(rows)


def _confident_mistakes_table(texts, targets, probabilities, class_names, count: int = 10) -> str:
    """The wrong predictions the model was surest of, most confident first."""
    predicted = probabilities.argmax(axis=-1)
    wrong = np.flatnonzero(predicted != np.asarray(targets))
    worst = wrong[np.argsort(-probabilities[wrong].max(axis=-1), kind="stable")][:count]
    rows = [
        "## Most confident mistakes (test split)",
        "",
        "| text | true | predicted | p |",
        "| --- | --- | --- | --- |",
    ]
    for i in worst:
        rows.append(
            f"| {_cell(texts[i])[:120]} | {_cell(class_names[targets[i]])} "
            f"| {_cell(class_names[predicted[i]])} | {probabilities[i].max():.2f} |"
        )
    if len(worst) == 0:
        rows.append("| (no mistakes) | | | |")
    return "\n".join(rows)


def _cell(value) -> str:
    """``value`` as a Markdown table cell: pipes escaped, on one line."""
    return " ".join(str(value).split()).replace("|", "\\|")


def _samples_table(texts, targets, probabilities, class_names, count: int = 8) -> str:
    rows = [
        "## Sample predictions (test split)",
        "",
        "| text | true | predicted | p |",
        "| --- | --- | --- | --- |",
    ]
    for text, target, probs in list(zip(texts, targets, probabilities, strict=True))[:count]:
        snippet = _cell(text)[:90]
        rows.append(
            f"| {snippet} | {class_names[target]} | {class_names[probs.argmax()]} "
            f"| {probs.max():.2f} |"
        )
    return "\n".join(rows)
