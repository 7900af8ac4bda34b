"""Speech metrics (word and character error rates with jiwer) against baselines, plots."""

from __future__ import annotations

import collections
import time
from pathlib import Path
from typing import Any

import jiwer
import numpy as np
import tensorflow as tf

from pipelines.base import Evaluation, Splits
from pipelines.plotting import plt
from pipelines.progress import log
from pipelines.speech_to_text.config import SAMPLE_RATE, SpeechToTextConfig
from pipelines.speech_to_text.model import make_transcribe, padded_length


def speech_metrics(predicted: list[str], references: list[str]) -> dict[str, float]:
    """Corpus word and character error rates (jiwer) and the fraction of exact transcripts."""
    exact = float(np.mean([p == r for p, r in zip(predicted, references, strict=True)]))
    return {
        "wer": round(float(jiwer.wer(references, predicted)), 4),
        "cer": round(float(jiwer.cer(references, predicted)), 4),
        "exact_match": round(exact, 4),
    }


def pad_batch(audio: list[np.ndarray], length: int = 0) -> np.ndarray:
    """Audio -> ``[batch, max(longest, length)]`` float32, zero-padded at the end."""
    out = np.zeros((len(audio), max(length, *(len(a) for a in audio))), np.float32)
    for row, samples in enumerate(audio):
        out[row, : len(samples)] = samples
    return out


def transcribe_all(model, info: dict[str, Any], audio, beam_width: int, batch: int = 64):
    """Transcribe every utterance with the in-graph decoder, in batches of similar length."""
    transcribe = make_transcribe(model, info, beam_width)
    order = np.argsort([len(a) for a in audio])
    out: list[str] = [""] * len(audio)
    for start in range(0, len(order), batch):
        rows = order[start : start + batch]
        length = padded_length(len(audio[rows[-1]]), info["max_samples"])
        texts = transcribe(tf.constant(pad_batch([audio[i] for i in rows], length))).numpy()
        for row, text in zip(rows, texts, strict=True):
            out[row] = text.decode("utf-8")
    return out


def most_frequent_baseline(train_transcripts, count: int) -> list[str]:
    """The most frequent training transcript, for every test utterance."""
    commonest = collections.Counter(train_transcripts).most_common(1)[0][0]
    return [commonest] * count


def evaluate(model, splits: Splits, config: SpeechToTextConfig, out_dir: Path) -> Evaluation:
    """Beam search (``test``) beside greedy decoding and two trivial baselines; a spectrogram."""
    info = splits.info
    audio = list(splits.test[0]["audio"])
    references = [str(t) for t in splits.test[0]["transcript"]]
    started = time.perf_counter()
    beam = transcribe_all(model, info, audio, config.beam_width)
    seconds = time.perf_counter() - started
    greedy = transcribe_all(model, info, audio, 1)
    log(f"transcribed {len(audio)} test utterances (beam {config.beam_width}: {seconds:.1f} s)")
    test = speech_metrics(beam, references)
    baselines = {
        "greedy_decoding": speech_metrics(greedy, references),
        "empty_transcript": speech_metrics([""] * len(references), references),
        "most_frequent_transcript": speech_metrics(
            most_frequent_baseline(list(splits.train[0]["transcript"]), len(references)),
            references,
        ),
    }
    plot_spectrogram(model, audio[0], references[0], beam[0], out_dir / "spectrogram.png")
    return Evaluation(
        test=test,
        baselines=baselines,
        plots={"Log-mel spectrogram of a test utterance with its transcripts": "spectrogram.png"},
        report=_report(config, info, references, greedy, beam),
    )


def plot_spectrogram(model, audio: np.ndarray, reference: str, predicted: str, path: Path):
    """The model's own log-mel features of one utterance, titled with both transcripts."""
    features = model.get_layer("features")(tf.constant(audio[None, :]))[0].numpy()
    figure, axis = plt.subplots(figsize=(9, 3.6))
    seconds = len(audio) / SAMPLE_RATE
    axis.imshow(
        features.T,
        origin="lower",
        aspect="auto",
        cmap="magma",
        extent=(0, seconds, 0, features.shape[1]),
    )
    axis.set_xlabel("seconds")
    axis.set_ylabel("mel band")
    axis.set_title(f"reference: {reference!r}\nmodel (beam): {predicted!r}", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _report(config, info, references, greedy, beam) -> str:
    lines = ["## Speech to text", ""]
    lines.append(
        f"Audio at {info['sample_rate']} Hz. Utterances over max_seconds={config.max_seconds} "
        "(or with an empty transcript), left out: "
        + ", ".join(f"{part} {count}" for part, count in info.get("over_length", {}).items())
        + "."
    )
    lines.append(
        f"`test` is CTC beam search (width {config.beam_width}, `keras.ops.ctc_decode`), the "
        "decoder inside the export; `greedy_decoding` is the same model decoded greedily; "
        "`empty_transcript` outputs nothing (WER and CER 1.0 by definition); "
        "`most_frequent_transcript` outputs the commonest training transcript. WER and CER "
        "are jiwer corpus rates on normalised text (a-z, space, apostrophe)."
    )
    voices = info.get("voices")
    if voices:
        lines.append(
            f"Test voices (espeak-ng variants, never heard in training): "
            f"{', '.join(voices['test'])}; as spoken with accents: "
            f"{', '.join(info.get('test_voices_used', [])[:24])}. Validation voices: "
            f"{', '.join(voices['validation'])}. Training voices: {', '.join(voices['train'])}."
        )
    speakers = info.get("speakers")
    if speakers:
        lines.append(
            f"FSDD: the utterances are concatenations of single-digit clips of one speaker "
            f"with 50-200 ms gaps (not natural continuous speech). Test speaker(s) "
            f"{', '.join(speakers['test'])}, held out whole; training speakers "
            f"{', '.join(speakers['train'])}."
        )
    lines += ["", "| reference | greedy | beam | |", "| --- | --- | --- | --- |"]
    for i in range(min(12, len(references))):
        cells = [references[i], greedy[i], beam[i]]
        mark = "ok" if beam[i] == references[i] else "x"
        lines.append(
            "| " + " | ".join(c.replace("|", "\\|") or "(empty)" for c in cells) + f" | {mark} |"
        )
    return "\n".join(lines) + "\n"
