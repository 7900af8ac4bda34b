"""Translation metrics (BLEU, chrF with sacrebleu; exact match) against baselines, plots."""

from __future__ import annotations

import collections
import time
from pathlib import Path

import numpy as np
import sacrebleu
import tensorflow as tf

from pipelines import strict_json
from pipelines.base import Evaluation, Splits
from pipelines.progress import log
from pipelines.translation import data
from pipelines.translation.config import TranslationConfig
from pipelines.translation.data import TranslationInfo
from pipelines.translation.model import END_ID, Decoder, make_translate

SCAN_ANCHOR = 0.997  # best LSTM seq2seq, simple split (Lake & Baroni 2018)


def translation_metrics(predicted: list[str], references: list[str]) -> dict[str, float]:
    """exact_match (fraction), bleu and chrf (sacrebleu corpus scores, 0-100)."""
    exact = float(np.mean([p == r for p, r in zip(predicted, references, strict=True)]))
    return {
        "exact_match": round(exact, 4),
        "bleu": round(sacrebleu.corpus_bleu(predicted, [references]).score, 2),
        "chrf": round(sacrebleu.corpus_chrf(predicted, [references]).score, 2),
    }


def references_of(split) -> list[str]:
    """The normalised reference translations of a split."""
    return [data.detokenize_text(t) for t in split[0]["target"]]


def translate_all(
    model, info: TranslationInfo, sources, beam_width: int, alpha: float, batch: int = 256
):
    """Decode every source string in batches with the in-graph decoder."""
    translate = make_translate(model, info, beam_width, alpha)
    out = []
    for start in range(0, len(sources), batch):
        chunk = tf.constant(np.asarray(sources[start : start + batch]).astype(str))
        out.extend(t.decode("utf-8") for t in translate(chunk).numpy())
    return out


def copy_source_baseline(sources) -> list[str]:
    """The (normalised) source sentence as its own translation."""
    return [data.detokenize_text(data.normalize_text(s)) for s in sources]


def most_frequent_baseline(train_split, count: int) -> list[str]:
    """The most frequent training target, for every test sentence."""
    commonest = collections.Counter(references_of(train_split)).most_common(1)[0][0]
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
        source_words = data.source_tokens([source])[0]
        ax.imshow(weights[:, : len(source_words)], cmap="viridis", aspect="auto")
        ax.set_xticks(range(len(source_words)), source_words, rotation=90, fontsize=7)
        ax.set_yticks(range(len(words)), words, fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def _report(config, info, sources, references, greedy, beam, test) -> str:
    lines = ["## Translation", ""]
    over = info.over_length
    lines.append(
        f"Pairs over the length limits (max_source_length={config.max_source_length}, "
        f"max_target_length={config.max_target_length} tokens), left out: "
        + ", ".join(f"{part} {count}" for part, count in over.items())
        + "."
    )
    lines.append(
        f"`test` is beam search (width {config.beam_width}, length penalty "
        f"{config.length_penalty}), the decoder inside the export; `greedy_decoding` is the "
        "same model decoded greedily. BLEU and chrF: sacrebleu corpus scores (0-100) on "
        "normalised text (lower case, punctuation split off); exact match: whole sentence. "
        "BLEU counts 4-grams, so it is 0 on references shorter than four tokens whatever the "
        "output: read chrF and exact match there."
    )
    if info.name == "scan":
        lines.append(
            f"SCAN sequence-level exact match: {test['exact_match']:.3f}; published anchor "
            f"about {SCAN_ANCHOR} for the best LSTM seq2seq (Lake & Baroni 2018, simple split)."
        )
    lines += ["", "| source | reference | greedy | beam | |", "| --- | --- | --- | --- | --- |"]
    for i in range(min(12, len(sources))):
        cells = [sources[i], references[i], greedy[i], beam[i]]
        cells = [c.replace("|", "\\|") for c in cells]
        lines.append("| " + " | ".join(cells) + f" | {'ok' if beam[i] == references[i] else 'x'} |")
    return "\n".join(lines) + "\n"
