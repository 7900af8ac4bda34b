"""Speech metrics (word and character error rates with jiwer) against baselines, plots, and
the validation CER of each epoch (``val_cer``)."""

from __future__ import annotations

import collections
import time
from pathlib import Path

import jiwer
import keras
import numpy as np
import tensorflow as tf

from pipelines import progress, strict_json
from pipelines.base import Evaluation, Splits
from pipelines.plotting import plt
from pipelines.progress import log
from pipelines.speech_to_text.config import SAMPLE_RATE, SpeechToTextConfig
from pipelines.speech_to_text.data import SpeechToTextInfo
from pipelines.speech_to_text.decoding import MAX_SPELLED_LEXICON
from pipelines.speech_to_text.language_model import WordNgramModel, rescore
from pipelines.speech_to_text.model import make_candidates, make_transcribe, padded_length
from pipelines.splitting import sample_indices

MAX_CER_UTTERANCES = 256  # validation utterances decoded at each epoch end for val_cer


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


def transcribe_all(
    model,
    info: SpeechToTextInfo,
    audio,
    beam_width: int,
    batch: int = 64,
    lexicon: bool = True,
    member: int | None = None,
):
    """Transcribe every utterance with the in-graph decoder (``model.make_transcribe``; of
    an ensemble, only its member ``member`` when given), in batches of similar length."""
    transcribe = make_transcribe(model, info, beam_width, lexicon, member)
    return transcribe_batches(transcribe, audio, info.max_samples, batch)


def rescore_all(
    candidates, audio, max_samples: int, language_model: WordNgramModel, weight: float
) -> list[str]:
    """The beam candidates of every utterance (``model.make_candidates``) rescored with the
    language model (shallow fusion of ``weight``), in batches of similar length."""
    out: list[str] = [""] * len(audio)
    for rows, padded in _length_batches(audio, max_samples, 64):
        texts, scores, _ = candidates(tf.constant(padded))
        for row, options, values in zip(rows, texts.numpy(), scores.numpy(), strict=True):
            options = [o.decode("utf-8") for o in options]
            out[row] = rescore(options, values.tolist(), language_model, weight)
    return out


def _length_batches(audio, max_samples: int, batch: int):
    """``(rows, padded audio)`` of batches of similar length padded to the bucket lengths."""
    order = np.argsort([len(a) for a in audio])
    starts = range(0, len(order), batch)
    for start in progress.bar(starts, description="decoding", unit=" batches"):
        rows = order[start : start + batch]
        length = padded_length(len(audio[rows[-1]]), max_samples)
        yield rows, pad_batch([audio[i] for i in rows], length)


def transcribe_batches(transcribe, audio, max_samples: int, batch: int = 64) -> list[str]:
    """``transcribe`` (``model.make_transcribe``) over every utterance, in batches of similar
    length padded to the bucket lengths."""
    out: list[str] = [""] * len(audio)
    for rows, padded in _length_batches(audio, max_samples, batch):
        for row, text in zip(rows, transcribe(tf.constant(padded)).numpy(), strict=True):
            out[row] = text.decode("utf-8")
    return out


class ValidationCER(keras.callbacks.Callback):
    """Adds ``val_cer`` to the epoch logs: the character error rate of greedy decoding on
    the validation split (a fixed sample of at most ``MAX_CER_UTTERANCES``), so that early
    stopping, the history and a search (``tuning.objective: val_cer``) can read it."""

    def __init__(self, splits: Splits, batch_size: int = 64):
        super().__init__()
        inputs = splits.validation[0]
        keep = sample_indices(len(inputs["audio"]), MAX_CER_UTTERANCES, seed=0)
        self.audio = [inputs["audio"][i] for i in keep]
        self.references = [str(inputs["transcript"][i]) for i in keep]
        self.info: SpeechToTextInfo = splits.info
        self.batch_size = batch_size
        self._transcribe = None

    def set_model(self, model):
        """Point the callback at ``model``; its decoder is traced at the first epoch end."""
        super().set_model(model)
        self._transcribe = None

    def on_epoch_end(self, epoch, logs=None):
        """Decode the sample greedily and write ``logs["val_cer"]``."""
        if logs is None:
            return
        if self._transcribe is None:
            self._transcribe = make_transcribe(self.model, self.info, 1)
        texts = transcribe_batches(
            self._transcribe, self.audio, self.info.max_samples, self.batch_size
        )
        logs["val_cer"] = float(jiwer.cer(self.references, texts))


def most_frequent_baseline(train_transcripts, count: int) -> list[str]:
    """The most frequent training transcript, for every test utterance."""
    commonest = collections.Counter(train_transcripts).most_common(1)[0][0]
    return [commonest] * count


def evaluate(model, splits: Splits, config: SpeechToTextConfig, out_dir: Path) -> Evaluation:
    """The export's decoder (``test``: beam search constrained to the lexicon, or plain beam
    search without one) beside greedy decoding, plain beam search, language-model rescoring
    of the beam candidates and two trivial baselines; a spectrogram."""
    info = splits.info
    audio = list(splits.test[0]["audio"])
    references = [str(t) for t in splits.test[0]["transcript"]]
    train_transcripts = [str(t) for t in splits.train[0]["transcript"]]
    started = time.perf_counter()
    decoded = transcribe_all(model, info, audio, config.beam_width)
    seconds = time.perf_counter() - started
    log(f"transcribed {len(audio)} test utterances (the export's decoder: {seconds:.1f} s)")
    greedy = transcribe_all(model, info, audio, 1)
    beam = transcribe_all(model, info, audio, config.beam_width, lexicon=False)
    test = speech_metrics(decoded, references)
    baselines = {"greedy_decoding": speech_metrics(greedy, references)}
    if info.lexicon:
        baselines["beam_search"] = speech_metrics(beam, references)
    if config.ensemble_members > 1:
        alone = transcribe_all(model, info, audio, config.beam_width, member=0)
        baselines["first_member_alone"] = speech_metrics(alone, references)
    rescored = None
    if config.lm_weight > 0:
        language_model = WordNgramModel.from_transcripts(train_transcripts, config.lm_order)
        candidates = make_candidates(model, info, config.beam_width)
        rescored = rescore_all(
            candidates, audio, info.max_samples, language_model, config.lm_weight
        )
        baselines["language_model_rescoring"] = speech_metrics(rescored, references)
    baselines |= {
        "empty_transcript": speech_metrics([""] * len(references), references),
        "most_frequent_transcript": speech_metrics(
            most_frequent_baseline(train_transcripts, len(references)), references
        ),
    }
    test, baselines = strict_json.defined_evaluation(test, baselines)
    plot_spectrogram(model, audio[0], references[0], decoded[0], out_dir / "spectrogram.png")
    columns = {"greedy": greedy, "beam": beam}
    if info.lexicon:
        columns["lexicon beam"] = decoded
    if rescored is not None:
        columns["LM rescored"] = rescored
    return Evaluation(
        test=test,
        baselines=baselines,
        plots={"Log-mel spectrogram of a test utterance with its transcripts": "spectrogram.png"},
        report=_report(config, info, references, columns, decoded),
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


def _report(config, info: SpeechToTextInfo, references, columns: dict, decoded) -> str:
    """The report's section: what was measured, on which voices or speakers, and samples of
    each decoder's transcripts (``columns``: name -> transcripts)."""
    lines = ["## Speech to text", "", *_data_notes(config, info)]
    lines += ["", "| reference | " + " | ".join(columns) + " | |"]
    lines.append("| --- " * (len(columns) + 2) + "|")
    for i in range(min(12, len(references))):
        cells = [references[i], *(texts[i] for texts in columns.values())]
        mark = "ok" if decoded[i] == references[i] else "x"
        lines.append(
            "| " + " | ".join(c.replace("|", "\\|") or "(empty)" for c in cells) + f" | {mark} |"
        )
    return "\n".join(lines) + "\n"


def _data_notes(config, info: SpeechToTextInfo) -> list[str]:
    """Paragraphs on the audio, the metrics and the held-out voices or speakers."""
    left_out = ", ".join(f"{part} {count}" for part, count in info.over_length.items())
    upper = info.mel_upper_hz or info.sample_rate // 2
    how = (
        "max_frequency" if config.max_frequency else "the measured bandwidth of the training audio"
    )
    lines = [
        f"Audio at {info.sample_rate} Hz; {info.n_mels} log-mel bands from 20 to {upper} Hz "
        f"({how}). Utterances over max_seconds={config.max_seconds} "
        f"(or with an empty transcript), left out: {left_out}.",
        _decoder_note(config, info),
        "`greedy_decoding` is the same model decoded greedily; "
        "`empty_transcript` outputs nothing (WER and CER 1.0 by definition); "
        "`most_frequent_transcript` outputs the commonest training transcript. WER and CER "
        "are jiwer corpus rates on normalised text (a-z, space, apostrophe).",
    ]
    voices = info.voices
    if voices:
        lines.append(
            f"Test voices (espeak-ng variants, never heard in training): "
            f"{', '.join(voices['test'])}; as spoken with accents: "
            f"{', '.join(info.test_voices_used[:24])}. Validation voices: "
            f"{', '.join(voices['validation'])}. Training voices: {', '.join(voices['train'])}."
        )
    speakers = info.speakers
    if speakers:
        lines.append(
            f"FSDD: the utterances are concatenations of single-digit clips of one speaker "
            f"with 50-200 ms gaps (not natural continuous speech). Test speaker(s) "
            f"{', '.join(speakers['test'])}, held out whole; training speakers "
            f"{', '.join(speakers['train'])}."
        )
    return lines


def _decoder_note(config, info: SpeechToTextInfo) -> str:
    """What ``test`` and the decoding baselines are."""
    width = config.beam_width
    if not info.lexicon:
        note = f"`test` is CTC beam search (width {width}), the decoder inside the export. "
    else:
        source = "the training transcripts" if config.lexicon == "train" else config.lexicon
        note = (
            f"`test` is CTC beam search (width {width}) constrained to a lexicon of "
            f"{len(info.lexicon):,} words ({source}), the decoder inside the export: the "
            "candidate of the highest exact CTC probability whose words are all in the "
            "lexicon (the beam paths"
            + (
                ", those paths respelled with the nearest lexicon words, every single word"
                if len(info.lexicon) <= MAX_SPELLED_LEXICON
                else ""
            )
            + "), else the best beam path; `beam_search` is plain beam search. "
        )
    if config.ensemble_members > 1:
        note += (
            f"The model is an ensemble of {config.ensemble_members} acoustic models trained "
            "side by side: every decoder scores the members' paths (greedy, beam, and for "
            "the lexicon decoder its candidates) by their mean CTC log-probability, and "
            "`first_member_alone` is the lexicon decoder on the first member only. "
        )
    if config.lm_weight > 0:
        note += (
            f"`language_model_rescoring` rescores the same candidates with a word "
            f"{config.lm_order}-gram model (interpolated Kneser-Ney) of the training "
            f"transcripts, weight {config.lm_weight:g}"
            + (" (also used by prediction over files)" if info.language_model else "")
            + ". "
        )
    return note
