"""Translation metrics (BLEU, chrF with sacrebleu; exact match) against baselines, plots."""

from __future__ import annotations

import collections
import time
from pathlib import Path

import keras
import numpy as np
import sacrebleu
import tensorflow as tf

from pipelines import progress, strict_json
from pipelines.base import Evaluation, Splits
from pipelines.progress import log
from pipelines.translation import data
from pipelines.translation.config import TranslationConfig
from pipelines.translation.data import TranslationInfo
from pipelines.translation.model import END_ID, Decoder, build_model, make_translate

SCAN_ANCHOR = 0.997  # best LSTM seq2seq, simple split (Lake & Baroni 2018)
# With learning_curve=true: the fractions (percent of the training pairs) trained again.
LEARNING_CURVE_PERCENTS = (25, 50)
SHOWN_ROWS = 12  # test rows shown in the report, and mistakes shown


def translation_metrics(predicted: list[str], references: list[tuple[str, ...]]) -> dict:
    """Scores of detokenized outputs against every original reference of each row:
    exact_match (fraction equal to one of them, whitespace collapsed), bleu and chrf
    (sacrebleu corpus scores, 0-100, its default 13a tokenizer) and bleu_lowercase."""
    exact = np.mean(
        [
            _squeeze(p) in {_squeeze(r) for r in refs}
            for p, refs in zip(predicted, references, strict=True)
        ]
    )
    streams = reference_streams(references)
    return {
        "exact_match": round(float(exact), 4),
        "bleu": round(sacrebleu.corpus_bleu(predicted, streams).score, 2),
        "chrf": round(sacrebleu.corpus_chrf(predicted, streams).score, 2),
        "bleu_lowercase": round(sacrebleu.corpus_bleu(predicted, streams, lowercase=True).score, 2),
    }


def _squeeze(text: str) -> str:
    return " ".join(text.split())


def reference_streams(references: list[tuple[str, ...]]) -> list[list[str | None]]:
    """sacrebleu's reference streams: stream j holds each row's j-th reference, None where a
    row has fewer (sacrebleu then scores that row against the ones it has)."""
    count = max(len(refs) for refs in references)
    return [[refs[j] if j < len(refs) else None for refs in references] for j in range(count)]


def references_of(split) -> list[tuple[str, ...]]:
    """Every original reference translation of each row of a split."""
    return [tuple(refs) for refs in split[0]["references"]]


def translate_all(
    model, info: TranslationInfo, sources, beam_width: int, alpha: float, batch: int = 256
):
    """Decode every source string in batches with the in-graph decoder."""
    translate = make_translate(model, info, beam_width, alpha)
    out = []
    starts = range(0, len(sources), batch)
    for start in progress.bar(starts, description="translating", unit=" batches"):
        chunk = tf.constant(np.asarray(sources[start : start + batch]).astype(str))
        out.extend(t.decode("utf-8") for t in translate(chunk).numpy())
    return out


def copy_source_baseline(sources) -> list[str]:
    """The source sentence, as written, as its own translation."""
    return [_squeeze(s) for s in sources]


def most_frequent_baseline(train_split, count: int) -> list[str]:
    """The most frequent training target, for every test sentence."""
    commonest = collections.Counter(train_split[0]["target"]).most_common(1)[0][0]
    return [commonest] * count


def evaluate(model, splits: Splits, config: TranslationConfig, out_dir: Path) -> Evaluation:
    """Beam search and the baselines on ``splits.test``; writes ``attention.png``."""
    info = splits.info
    sources = list(splits.test[0]["source"])
    references = references_of(splits.test)
    started = time.perf_counter()
    beam = translate_all(model, info, sources, config.beam_width, config.length_penalty)
    beam_seconds = time.perf_counter() - started
    greedy = translate_all(model, info, sources, 1, 0.0)
    log(f"decoded {len(sources)} test sentences (beam {config.beam_width}: {beam_seconds:.1f} s)")
    test = translation_metrics(beam, references)
    curve = learning_curve(splits, config, sources, references) if config.learning_curve else {}
    test.update({f"bleu_at_{percent}_percent": bleu for percent, bleu in curve.items()})
    baselines = {
        "greedy_decoding": translation_metrics(greedy, references),
        "copy_source": translation_metrics(copy_source_baseline(sources), references),
        "most_frequent_target": translation_metrics(
            most_frequent_baseline(splits.train, len(sources)), references
        ),
    }
    test, baselines = strict_json.defined_evaluation(test, baselines)
    plots = {}
    if plot_attention(model, info, sources[:4], out_dir / "attention.png"):
        plots["Attention of the greedy decoder over the source (4 test sentences)"] = (
            "attention.png"
        )
    return Evaluation(
        test=test,
        baselines=baselines,
        plots=plots,
        report=_report(config, info, sources, references, greedy, beam, test),
    )


def learning_curve(splits: Splits, config: TranslationConfig, sources, references) -> dict:
    """Beam-search BLEU of the same model trained afresh on the first
    ``LEARNING_CURVE_PERCENTS`` of the training pairs (the pieces stay those learned from
    all of them)."""
    from pipelines.translation.pipeline import PIPELINE

    bleu = {}
    inputs, ids = splits.train
    for percent in LEARNING_CURVE_PERCENTS:
        # The loaders leave the training rows in a seeded random order: a prefix is a sample.
        rows = np.arange(max(1, len(ids) * percent // 100))
        subset = ({key: value[rows] for key, value in inputs.items()}, ids[rows])
        fraction_model = build_model(config, splits.info)
        fraction_model.fit(
            PIPELINE.make_dataset(subset, config.batch_size, shuffle=True, seed=percent),
            validation_data=PIPELINE.make_dataset(splits.validation, config.batch_size),
            epochs=config.epochs,
            shuffle=False,  # the dataset shuffles itself
            callbacks=[
                keras.callbacks.EarlyStopping(patience=config.patience, restore_best_weights=True)
            ],
            verbose=0,
        )
        beam = translate_all(
            fraction_model, splits.info, sources, config.beam_width, config.length_penalty
        )
        bleu[percent] = translation_metrics(beam, references)["bleu"]
        log(f"learning curve: {percent} % of the training pairs, test BLEU {bleu[percent]}")
    return bleu


def attention_weights(model, info: TranslationInfo, source: str):
    """Greedy decoding of one sentence, eagerly: (output tokens, weights [out, source])."""
    decoder = Decoder(model, info)
    text = tf.constant([source])
    ids = decoder.decode(text, tf.constant(1), tf.constant(0.0))[0].numpy()
    encoded, mask, states = decoder.encode(text)
    token, rows, words = tf.constant([data.RESERVED.index(data.START)]), [], []
    vocabulary = info.target_vocabulary
    for i in ids:
        _, states, scores = decoder.step(token, states, encoded, mask)
        rows.append(scores.numpy()[0])
        words.append("<end>" if i == END_ID else vocabulary[i])
        if i == END_ID or i == 0:
            break
        token = tf.constant([int(i)])
    return words, np.array(rows)


def plot_attention(model, info: TranslationInfo, sources, path: Path) -> bool:
    """Greedy decoding's attention over each of ``sources``, one panel each; False if none."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not sources:
        return False
    fig, axes = plt.subplots(1, len(sources), figsize=(4.5 * len(sources), 4.5), squeeze=False)
    for ax, source in zip(axes[0], sources, strict=False):
        words, weights = attention_weights(model, info, source)
        source_words = data.source_pieces([source], info)[0]
        ax.imshow(weights[:, : len(source_words)], cmap="viridis", aspect="auto")
        ax.set_xticks(range(len(source_words)), source_words, rotation=90, fontsize=7)
        ax.set_yticks(range(len(words)), words, fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def _rows_table(indices, sources, references, greedy, beam) -> list[str]:
    """A Markdown table of the given test rows: source, references, greedy and beam output."""
    lines = ["| source | reference | greedy | beam |", "| --- | --- | --- | --- |"]
    for i in indices:
        cells = [sources[i], " / ".join(references[i]), greedy[i], beam[i]]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return lines


def _report(config, info, sources, references, greedy, beam, test) -> str:
    lines = ["## Translation", ""]
    over = info.over_length
    lines.append(
        f"Rows over the length limits (max_source_length={config.max_source_length}, "
        f"max_target_length={config.max_target_length} subword pieces), left out: "
        + ", ".join(f"{part} {count}" for part, count in over.items())
        + "."
    )
    lines.append(
        f"`test` is beam search (width {config.beam_width}, length penalty "
        f"{config.length_penalty}), the decoder inside the export; `greedy_decoding` is the "
        "same model decoded greedily. Outputs are cased, detokenized text; BLEU and chrF are "
        "sacrebleu corpus scores (0-100, tokenizer 13a) against the original references, "
        "every reference of a test source at once (multi-reference); bleu_lowercase is BLEU "
        "with lowercase=True; exact match: the whole sentence equals one of the references. "
        f"Pieces (whole words where every word of a side fits max_vocabulary="
        f"{config.max_vocabulary}, else SentencePiece BPE subwords; characters included): "
        f"source {len(info.source_vocabulary)}, "
        f"target {len(info.target_vocabulary) - len(data.RESERVED)}. "
        "BLEU counts 4-grams, so it is 0 on references shorter than four tokens whatever the "
        "output: read chrF and exact match there."
    )
    if any(key.startswith("bleu_at_") for key in test):
        lines += ["", "Learning curve (beam-search BLEU on the same test rows):", ""]
        lines += ["| training pairs | BLEU |", "| --- | --- |"]
        for percent in LEARNING_CURVE_PERCENTS:
            lines.append(f"| {percent} % | {test[f'bleu_at_{percent}_percent']} |")
        lines.append(f"| 100 % | {test['bleu']} |")
    if info.name == "scan":
        lines.append(
            f"SCAN sequence-level exact match: {test['exact_match']:.3f}; published anchor "
            f"about {SCAN_ANCHOR} for the best LSTM seq2seq (Lake & Baroni 2018, simple split)."
        )
    lines += ["", "First test sentences:", ""]
    lines += _rows_table(range(min(SHOWN_ROWS, len(sources))), sources, references, greedy, beam)
    misses = [
        i
        for i in range(len(sources))
        if _squeeze(beam[i]) not in {_squeeze(r) for r in references[i]}
    ]
    lines += ["", f"Mistakes: {len(misses)} of {len(sources)} beam outputs match no reference"]
    if misses:
        lines[-1] += f"; the first {min(SHOWN_ROWS, len(misses))}:"
        lines += [""] + _rows_table(misses[:SHOWN_ROWS], sources, references, greedy, beam)
    return "\n".join(lines) + "\n"
