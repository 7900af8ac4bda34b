"""Music metrics: held-out likelihood beside two baselines, and generated-piece statistics.

Token model: per-event negative log-likelihood (nats) and accuracy of the next token, on every
token of the held-out pieces after their first step (the first step is context for all three).
Frame model (``jsb:``): frame-level NLL per time step (Bernoulli NLL summed over the 88 keys,
averaged over every time step of the test pieces, the first predicted from silence) and Bay et
al.'s frame accuracy TP / (TP + FP + FN) at threshold 0.5.

Baselines, same metrics, same events:
- ``unigram``: the training pieces' token (per-key) frequencies, add-one smoothed.
- ``repeat``: repeat the previous event (the same voice slot one step earlier; the previous
  frame), smoothed so its NLL is finite: ``(1 - lam) * repeat + lam * unigram``, ``lam`` the
  value of 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5 with the lowest validation NLL.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipelines import progress, strict_json
from pipelines.base import Evaluation, Splits
from pipelines.music import data
from pipelines.music.config import MusicConfig
from pipelines.music.data import MusicInfo
from pipelines.music.model import sampler
from pipelines.plotting import plt
from pipelines.progress import log

LAMBDAS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5)
PUBLISHED_JSB = {"RNN (Boulanger-Lewandowski 2012)": 8.71, "GRU (Chung et al. 2014)": 8.54}
EPS = 1e-7


def evaluate(model, splits: Splits, config: MusicConfig, out_dir: Path) -> Evaluation:
    """Likelihood metrics beside the baselines; generated pieces, their files and statistics."""
    info = splits.info
    if info.kind == "frame":
        test, baselines, lam = _frame_metrics(model, splits)
    else:
        test, baselines, lam = _token_metrics(model, splits)
    report = [_baseline_text(info, lam)]
    if info.kind == "frame":
        report.append(_published_text(test, baselines))
    pieces = list(splits.test[1])
    plots, generation_text = generate_pieces(model, pieces, info, config, out_dir)
    report.append(generation_text)
    test, baselines = strict_json.defined_evaluation(test, baselines)
    return Evaluation(test=test, baselines=baselines, plots=plots, report="\n".join(report))


# === Likelihood ===


def _padded(sequences: list[np.ndarray]) -> np.ndarray:
    longest = max(len(s) for s in sequences)
    out = np.zeros((len(sequences), longest, *sequences[0].shape[1:]), sequences[0].dtype)
    for i, s in enumerate(sequences):
        out[i, : len(s)] = s
    return out


def _predict(model, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Causal predictions of whole pieces: right-padding leaves earlier outputs unchanged."""
    outputs = model.predict(_padded(inputs), batch_size=16, verbose=progress.keras_verbose())
    strict_json.require_finite_outputs(outputs)
    return [out[: len(x)] for out, x in zip(outputs, inputs, strict=True)]


def _token_metrics(model, splits: Splits):
    voices = splits.info.voices
    unigram = token_unigram(splits.train[1])
    lam = fit_repeat_lambda_tokens(splits.validation, unigram, voices)
    pieces = [p for p in splits.test[1] if len(p) > voices]
    predicted = _predict(model, [p[:-1] for p in pieces])
    rows = {"model": [], "unigram": [], "repeat": []}
    for piece, probabilities in zip(pieces, predicted, strict=True):
        targets = piece[voices:]  # every token after the first step
        model_p = probabilities[voices - 1 :]
        rows["model"].append(model_p)
        rows["unigram"].append(np.broadcast_to(unigram, model_p.shape))
        rows["repeat"].append(repeat_distribution(piece[:-voices], unigram, lam))
        rows.setdefault("targets", []).append(targets)
    targets = np.concatenate(rows.pop("targets"))
    scores = {name: token_scores(np.concatenate(p), targets) for name, p in rows.items()}
    test = scores.pop("model")
    return test, scores, lam


def token_unigram(train_targets: np.ndarray) -> np.ndarray:
    """Add-one smoothed token frequencies of the training windows' targets."""
    counts = np.bincount(np.asarray(train_targets).reshape(-1), minlength=data.VOCAB) + 1.0
    return counts / counts.sum()


def repeat_distribution(previous: np.ndarray, unigram: np.ndarray, lam: float) -> np.ndarray:
    """``(1 - lam) * one_hot(previous) + lam * unigram`` for each previous token."""
    out = np.tile(lam * unigram, (len(previous), 1))
    out[np.arange(len(previous)), previous] += 1.0 - lam
    return out


def token_scores(probabilities: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """Mean NLL (nats per event) and accuracy of next-token distributions."""
    chosen = probabilities[np.arange(len(targets)), targets]
    return {
        "nll": float(-np.mean(np.log(np.maximum(chosen, EPS)))),
        "accuracy": float(np.mean(probabilities.argmax(axis=-1) == targets)),
        "events": int(len(targets)),
    }


def fit_repeat_lambda_tokens(validation, unigram: np.ndarray, voices: int) -> float:
    """The smoothing weight of the repeat baseline with the lowest validation NLL."""
    inputs, targets = validation
    # target j of a window is token j + 1; the same voice one step earlier is input j - 3.
    previous = np.asarray(inputs)[:, : -voices + 1].reshape(-1)
    later = np.asarray(targets)[:, voices - 1 :].reshape(-1)
    hit = previous == later
    best = min(
        LAMBDAS,
        key=lambda lam: -np.mean(np.log(np.where(hit, 1 - lam, 0.0) + lam * unigram[later])),
    )
    return float(best)


def _frame_metrics(model, splits: Splits):
    train_inputs, train_targets = splits.train
    unigram = key_unigram(train_targets)
    lam = fit_repeat_lambda_frames(splits.validation, unigram)
    pieces = list(splits.test[1])
    predicted = _predict(model, [data.shifted_frames(p) for p in pieces])
    frames = np.concatenate(pieces)
    previous = np.concatenate([data.shifted_frames(p) for p in pieces])
    model_p = np.concatenate(predicted)
    test = frame_scores(model_p, frames)
    baselines = {
        "unigram": frame_scores(np.broadcast_to(unigram, frames.shape), frames),
        "repeat": frame_scores((1 - lam) * previous + lam * unigram, frames),
    }
    return test, baselines, lam


def key_unigram(train_targets: np.ndarray) -> np.ndarray:
    """Add-one smoothed probability of each key being on, over the training frames."""
    frames = np.asarray(train_targets).reshape(-1, data.KEYS)
    return (frames.sum(axis=0) + 1.0) / (len(frames) + 2.0)


def frame_nll(probabilities: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """Bernoulli NLL of each frame, summed over its keys (nats)."""
    p = np.clip(probabilities, EPS, 1 - EPS)
    return -(frames * np.log(p) + (1 - frames) * np.log(1 - p)).sum(axis=-1)


def frame_scores(probabilities: np.ndarray, frames: np.ndarray) -> dict[str, float]:
    """Frame-level NLL per time step and frame accuracy (Bay et al. 2009) at 0.5."""
    on = probabilities >= 0.5
    truth = frames > 0.5
    tp = np.sum(on & truth)
    wrong = np.sum(on & ~truth) + np.sum(~on & truth)
    return {
        "nll_per_step": float(frame_nll(probabilities, frames).mean()),
        "frame_accuracy": float(tp / max(tp + wrong, 1)),
        "steps": int(len(frames)),
    }


def fit_repeat_lambda_frames(validation, unigram: np.ndarray) -> float:
    """The smoothing weight of the repeat-frame baseline with the lowest validation NLL."""
    inputs, targets = (np.asarray(a).reshape(-1, data.KEYS) for a in validation)
    return float(
        min(LAMBDAS, key=lambda lam: frame_nll((1 - lam) * inputs + lam * unigram, targets).mean())
    )


def _baseline_text(info: MusicInfo, lam: float) -> str:
    if info.kind == "frame":
        what = (
            "Metrics: `nll_per_step` is the frame-level negative log-likelihood per time step "
            "(nats; Bernoulli NLL summed over the 88 keys, averaged over every time step of "
            "the test pieces, the first frame predicted from silence); `frame_accuracy` is "
            "TP / (TP + FP + FN) of keys at threshold 0.5."
        )
        repeat = "the previous frame (silence before the first)"
    else:
        what = (
            "Metrics: `nll` is the negative log-likelihood of the next token in nats per event, "
            "`accuracy` the share of tokens the most likely prediction gets right, both over "
            "every token of the held-out pieces after their first step; `events` counts them."
        )
        repeat = "the same voice slot's token one step earlier"
    return "\n".join(
        [
            "## Baselines",
            "",
            what,
            "",
            "- `unigram`: the training data's event frequencies (add-one smoothed).",
            f"- `repeat`: {repeat}, smoothed as (1 - λ) · repeat + λ · unigram with λ = {lam:g} "
            f"(of {', '.join(map(str, LAMBDAS))}, the lowest validation NLL).",
            "",
        ]
    )


def _published_text(test: dict[str, float], baselines: dict[str, dict[str, float]]) -> str:
    lines = [
        "## Beside the published JSB figures (frame-level NLL per time step)",
        "",
        "| model | NLL per time step |",
        "| --- | --- |",
        f"| this run's model | {test['nll_per_step']:.2f} |",
        *(f"| {name} | {value:.2f} |" for name, value in PUBLISHED_JSB.items()),
        f"| baseline: repeat | {baselines['repeat']['nll_per_step']:.2f} |",
        f"| baseline: unigram | {baselines['unigram']['nll_per_step']:.2f} |",
        "",
        "The published figures are on the quarter-note JSB split (jsb-chorales-quarter.json) "
        "with the same protocol; compare only on that file.",
        "",
    ]
    return "\n".join(lines)


# === Generation ===


def generate_pieces(model, pieces, info: MusicInfo, config: MusicConfig, out_dir: Path):
    """Continue the first ``primer_steps`` steps of each test piece long enough by
    ``generate_steps`` sampled steps; write MIDI, MusicXML and a piano roll for the first
    ``generate_pieces``; return plots and a statistics table beside the real continuations."""
    frame = info.kind == "frame"
    primer_steps, steps, spq = config.primer_steps, config.generate_steps, info.steps_per_quarter
    eligible = [p if frame else data.tokens_to_steps(p) for p in pieces]
    eligible = [p for p in eligible if len(p) > primer_steps]
    if not eligible or config.generate_pieces == 0:
        return {}, "## Generated pieces\n\nNone (no test piece is longer than the primer).\n"
    log(f"generating {steps} steps after {primer_steps}-step primers of {len(eligible)} pieces")
    primers = np.stack([p[:primer_steps] for p in eligible])
    sampled = sampler(model, info)(
        primers if frame else primers.reshape(len(eligible), -1),
        steps,
        config.temperature,
        config.top_k,
        config.sample_seed,
    )
    generated_dir = out_dir / "generated"
    generated_dir.mkdir(exist_ok=True)
    plots, stats_generated, stats_real = {}, [], []
    for i, (piece, events) in enumerate(zip(eligible, sampled, strict=True)):
        real = data.frames_to_steps(piece) if frame else piece
        new = data.frames_to_steps(events) if frame else data.tokens_to_steps(events)
        key = primer_key(data.steps_to_notes(real[:primer_steps], spq))
        stats_generated.append(piece_statistics(data.steps_to_notes(new, spq), key))
        real_next = real[primer_steps : primer_steps + steps]
        if len(real_next):
            stats_real.append(piece_statistics(data.steps_to_notes(real_next, spq), key))
        if i < config.generate_pieces:
            whole = np.concatenate([real[:primer_steps], new])
            plots.update(_write_piece(whole, i + 1, key, config, spq, generated_dir))
    text = _generation_text(stats_generated, stats_real, config, len(eligible))
    return plots, text


def _write_piece(steps: np.ndarray, number: int, key: str, config, spq: int, folder: Path):
    """``piece_N.mid``, ``piece_N.musicxml`` and ``piano_roll_N.png`` of a primed piece;
    returns its plot entry ``{title: file}``."""
    stem = folder / f"piece_{number}"
    data.write_midi(data.steps_to_notes(steps, spq), stem.with_suffix(".mid"))
    data.write_musicxml(stem.with_suffix(".mid"), stem.with_suffix(".musicxml"))
    plot_piano_roll(steps, config.primer_steps, spq, folder / f"piano_roll_{number}.png")
    return {
        f"Generated piece {number} (key of primer: {key})": f"generated/piano_roll_{number}.png"
    }


def primer_key(notes) -> str:
    """music21's key analysis (Krumhansl-Schmuckler) of the primer's notes, e.g. ``G major``."""
    import music21

    stream = music21.stream.Stream()
    for pitch, start, end in notes:
        stream.insert(start, music21.note.Note(pitch, quarterLength=max(end - start, 0.25)))
    key = stream.analyze("key")
    return f"{key.tonic.name} {key.mode}"


def piece_statistics(notes, key_name: str) -> dict[str, float]:
    """Pitch range, share of notes in ``key_name``'s scale, and rhythm statistics."""
    import music21

    if not notes:
        return {
            "notes": 0,
            "pitch_range": 0,
            "in_key": float("nan"),
            "mean_duration": float("nan"),
            "on_beat": float("nan"),
            "notes_per_quarter": 0.0,
        }
    tonic, mode = key_name.split(" ", 1)
    scale = {p.pitchClass for p in music21.key.Key(tonic, mode).pitches}
    pitches = np.array([n[0] for n in notes])
    starts = np.array([n[1] for n in notes])
    durations = np.array([n[2] - n[1] for n in notes])
    span = max(n[2] for n in notes) - min(starts)
    return {
        "notes": len(notes),
        "pitch_range": int(pitches.max() - pitches.min()),
        "in_key": float(np.mean([p % 12 in scale for p in pitches])),
        "mean_duration": float(durations.mean()),
        "on_beat": float(np.mean(np.isclose(starts, np.round(starts)))),
        "notes_per_quarter": float(len(notes) / max(span, 1e-9)),
    }


STAT_LABELS = {
    "pitch_range": "pitch range (semitones)",
    "in_key": "share of notes in the primer's key",
    "mean_duration": "mean note duration (quarters)",
    "on_beat": "share of notes starting on a beat",
    "notes_per_quarter": "notes per quarter note",
}


def summarize(stats: list[dict[str, float]]) -> dict[str, float]:
    """Mean of each statistic over pieces (NaN ignored)."""
    return {k: float(np.nanmean([s[k] for s in stats])) for k in STAT_LABELS} if stats else {}


def _generation_text(generated, real, config: MusicConfig, count: int) -> str:
    g, r = summarize(generated), summarize(real)
    lines = [
        "## Generated pieces beside the real test chorales",
        "",
        f"{count} test pieces: each one's first {config.primer_steps} steps as the primer, then "
        f"{config.generate_steps} steps sampled (temperature {config.temperature:g}, "
        f"top_k {config.top_k or 'off'}, seed {config.sample_seed}), beside the real next "
        f"{config.generate_steps} steps of the same pieces. Key: music21's analysis of the "
        "primer. Mean over pieces. The first "
        f"{min(config.generate_pieces, count)} are in generated/ (MIDI, MusicXML, piano roll).",
        "",
        "| statistic | generated | real |",
        "| --- | --- | --- |",
        *(
            f"| {label} | {g.get(k, float('nan')):.3f} | {r.get(k, float('nan')):.3f} |"
            for k, label in STAT_LABELS.items()
        ),
        "",
    ]
    return "\n".join(lines)


def plot_piano_roll(steps: np.ndarray, primer_steps: int, spq: int, path: Path) -> None:
    """A piano roll of ``[steps, 4]`` tokens, the primer shaded."""
    frames = data.steps_to_frames(steps)
    on = np.flatnonzero(frames.any(axis=0))
    low, high = (on.min(), on.max()) if on.size else (39, 60)
    figure, axis = plt.subplots(figsize=(10, 3.6))
    axis.imshow(
        frames[:, low : high + 1].T,
        origin="lower",
        aspect="auto",
        cmap="Greys",
        interpolation="nearest",
        extent=(0, len(frames) / spq, low + data.LOWEST - 0.5, high + data.LOWEST + 0.5),
    )
    axis.axvspan(0, primer_steps / spq, color="tab:blue", alpha=0.12, label="primer")
    axis.set_xlabel("quarter notes")
    axis.set_ylabel("MIDI pitch")
    axis.legend(loc="upper right")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
