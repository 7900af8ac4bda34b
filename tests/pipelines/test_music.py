"""The music pipeline: smoke run, generated files, serving export, JSB frame model, bad input."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import run_cli, run_python_without_project, shared_data, smoke_run_dir


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory) -> Path:
    """One smoke run of a few built-in chorales through the command line."""
    return smoke_run_dir(tmp_path_factory, "music", "--seed", "1")


def _midi_files(folder: Path, count: int = 4) -> list[Path]:
    """``count`` small four-voice MIDI files written with pretty_midi."""
    import pretty_midi

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        midi = pretty_midi.PrettyMIDI(initial_tempo=120)
        piano = pretty_midi.Instrument(program=0)
        for beat in range(40):
            for base in (72, 64, 55, 48):
                pitch = base + int(rng.integers(-3, 4))
                piano.notes.append(pretty_midi.Note(80, pitch, beat * 0.5, beat * 0.5 + 0.5))
        midi.instruments.append(piano)
        path = folder / f"piece_{i}.mid"
        midi.write(str(path))
        paths.append(path)
    return paths


def test_run_directory_holds_every_artifact(smoke_run):
    for name in (
        "config.json",
        "metrics.json",
        "report.md",
        "model.keras",
        "saved_model",
        "generated/piece_1.mid",
        "generated/piece_1.musicxml",
        "generated/piano_roll_1.png",
    ):
        assert (smoke_run / name).exists(), name
    assert not list(smoke_run.parent.glob("*.partial"))


def test_metrics_sit_beside_baselines_with_the_same_keys(smoke_run):
    metrics = json.loads((smoke_run / "metrics.json").read_text())
    assert metrics["pipeline"] == "music"
    assert set(metrics["baselines"]) == {"unigram", "repeat"}
    for baseline in metrics["baselines"].values():
        assert set(baseline) == set(metrics["test"]) == {"nll", "accuracy", "events"}
        assert np.isfinite(baseline["nll"]) and baseline["events"] == metrics["test"]["events"]
    report = (smoke_run / "report.md").read_text()
    assert "Generated pieces beside the real test chorales" in report


def test_generated_midi_reads_back_in_pretty_midi_and_music21(smoke_run):
    import music21
    import pretty_midi

    midi = pretty_midi.PrettyMIDI(str(smoke_run / "generated" / "piece_1.mid"))
    assert sum(len(i.notes) for i in midi.instruments) > 0
    score = music21.converter.parse(str(smoke_run / "generated" / "piece_1.mid"))
    assert len(score.flatten().notes) > 0
    xml = music21.converter.parse(str(smoke_run / "generated" / "piece_1.musicxml"))
    assert len(xml.flatten().notes) > 0


def test_saved_model_serves_and_generates_in_a_fresh_process(smoke_run, tmp_path):
    import keras

    import layers  # noqa: F401  (registers the cells)
    from pipelines.music import model as _  # noqa: F401  (registers VoiceSlot)

    primer = np.array([[50, 45, 38, 27] * 3, [52, 47, 40, 28] * 3], dtype=np.int32)
    expected = keras.models.load_model(smoke_run / "model.keras").predict(primer, verbose=0)
    child = textwrap.dedent(f"""
        import sys
        for name in ("layers", "pipelines", "tuning"):
            sys.modules[name] = None
        import numpy as np, tensorflow as tf
        export = tf.saved_model.load({str(smoke_run / "saved_model")!r})
        primer = tf.constant(np.array({primer.tolist()!r}, dtype=np.int32))
        out = export.signatures["serving_default"](primer=primer)
        np.save("probabilities.npy", out["probabilities"].numpy())
        generate = export.signatures["generate"]
        runs = [
            generate(primer=primer, steps=tf.constant(6), temperature=tf.constant(0.9),
                     top_k=tf.constant(k), seed=tf.constant(s, tf.int32))["tokens"].numpy()
            for s, k in (([1, 2], 0), ([1, 2], 0), ([3, 4], 0), ([1, 2], 5))
        ]
        np.save("tokens.npy", np.stack(runs))
    """)
    result = run_python_without_project(child, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    np.testing.assert_allclose(np.load(tmp_path / "probabilities.npy"), expected[:, -1], atol=1e-5)
    tokens = np.load(tmp_path / "tokens.npy")
    assert tokens.shape == (4, 2, 6 * 4)
    assert ((tokens >= 0) & (tokens <= 88)).all()
    np.testing.assert_array_equal(tokens[0], tokens[1])  # same seed, same music
    assert not np.array_equal(tokens[0], tokens[2])  # another seed, other music


def test_evaluate_on_midi_folder_and_predict(smoke_run, tmp_path):
    paths = _midi_files(tmp_path / "midi", count=3)
    result = run_cli("evaluate", str(smoke_run), "--data", f"midi:{tmp_path / 'midi'}")
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads(next((smoke_run / "evaluations").glob("*/metrics.json")).read_text())
    assert metrics["dataset"]["splits"]["test"] == 3
    result = run_cli("predict", str(smoke_run), str(paths[0]))
    assert result.returncode == 0, result.stderr[-3000:]
    import pretty_midi

    continued = paths[0].with_name("piece_0.continued.mid")
    assert len(pretty_midi.PrettyMIDI(str(continued)).instruments[0].notes) > 0


def test_midi_folder_loads_and_splits_by_piece(tmp_path):
    from pipelines.music.config import MusicConfig
    from pipelines.music.data import VOCAB, MusicInfo, load_midi

    paths = _midi_files(tmp_path / "midi", count=6)
    config = MusicConfig.from_preset("smoke").with_settings({"transpose": 1})
    splits = load_midi(config, str(tmp_path / "midi"), seed=0)
    info = splits.info
    assert isinstance(info, MusicInfo) and info.kind == "token"
    assert info.pieces == {"train": 4, "validation": 1, "test": 1}
    assert info.test_pieces[0] in {p.name for p in paths}
    inputs, targets = splits.train
    assert inputs.shape[1] == config.window_steps * 4
    np.testing.assert_array_equal(inputs[:, 1:], targets[:, :-1])  # targets one event ahead
    assert inputs.max() < VOCAB and inputs.min() >= 0
    assert len(splits.test[1]) == 1
    # The record survives data_info.json, and the split is the seed's.
    assert MusicInfo.from_json(info.to_json()) == info
    again = load_midi(config, str(tmp_path / "midi"), seed=0)
    assert again.info.test_pieces == info.test_pieces


def test_every_declared_source_has_its_loaders():
    from pipelines.music import data
    from pipelines.music.config import DATA_SOURCES

    kinds = {source.kind for source in DATA_SOURCES}
    assert kinds == {"builtin", "midi", "musicxml", "jsb"}
    for source in DATA_SOURCES:
        assert callable(getattr(data, source.loader)), source.loader
        assert callable(getattr(data, source.test_loader)), source.test_loader
    assert "jsb:PATH" in DATA_SOURCES.help_text()


def test_a_token_run_refuses_jsb_test_data_and_a_frame_run_midi(tmp_path):
    from pipelines.errors import UserError
    from pipelines.music.config import MusicConfig
    from pipelines.music.data import load_midi, load_test_jsb, load_test_midi

    folder = str(tmp_path / "midi")
    _midi_files(tmp_path / "midi", count=3)
    config = MusicConfig.from_preset("smoke")
    info = load_midi(config, folder, seed=0).info
    test, targets = load_test_midi(config, folder, info)
    assert len(test) == len(targets) == 3 and test[0].ndim == 1  # flat token streams
    with pytest.raises(UserError, match="token model evaluates builtin, midi:DIR or musicxml"):
        load_test_jsb(config, str(tmp_path / "none.json"), info)
    with pytest.raises(UserError, match="frame model evaluates jsb:PATH"):
        load_test_midi(config, folder, info.replace(kind="frame"))


def test_events_round_trip_through_midi(tmp_path):
    from pipelines.music import data

    rng = np.random.default_rng(0)
    frames = rng.random((40, data.KEYS)) < 0.03
    frames[[0, -1], 30] = True  # sound at both ends: a MIDI file has no leading/trailing rests
    steps = data.frames_to_steps(frames)
    for steps_per_quarter in (1, 2, 4):
        notes = data.steps_to_notes(steps, steps_per_quarter)
        data.write_midi(notes, tmp_path / "round.mid")
        back = data.notes_to_steps(data.read_midi(tmp_path / "round.mid"), steps_per_quarter)
        np.testing.assert_array_equal(back, steps)
    # A real chorale: notes -> tokens -> MIDI -> tokens.
    _, (chorale,) = data.read_chorales(max_pieces=1)
    steps = data.notes_to_steps(chorale, 4)
    data.write_midi(data.steps_to_notes(steps, 4), tmp_path / "chorale.mid")
    back = data.notes_to_steps(data.read_midi(tmp_path / "chorale.mid"), 4)
    np.testing.assert_array_equal(back, steps)
    assert steps.shape[1] == 4 and (steps[:, 0] > steps[:, 1]).mean() > 0.9  # highest first


def _tiny_jsb(tmp_path: Path) -> Path:
    full = json.loads(shared_data("jsb_chorales/jsb-chorales-quarter.json").read_text())
    tiny = {split: pieces[:4] for split, pieces in full.items()}
    path = tmp_path / "jsb-chorales-quarter.json"
    path.write_text(json.dumps(tiny))
    return path


def test_jsb_loader_and_frame_level_nll(tmp_path):
    from pipelines.music.config import MusicConfig
    from pipelines.music.data import KEYS, load_jsb, shifted_frames
    from pipelines.music.evaluate import frame_scores, key_unigram

    path = _tiny_jsb(tmp_path)
    config = MusicConfig.from_preset("smoke").with_settings({"window_steps": 12})
    splits = load_jsb(config, str(path), seed=0)
    assert splits.info.kind == "frame" and splits.info.pieces["test"] == 4
    assert splits.info.steps_per_quarter == 1  # the quarter-note file
    inputs, targets = splits.train
    assert inputs.shape[1:] == (12, KEYS) and set(np.unique(targets)) <= {0.0, 1.0}
    first = json.loads(path.read_text())["test"][0]
    piece = splits.test[1][0]
    assert len(piece) == len(first)
    assert sorted(np.flatnonzero(piece[0]) + 21) == sorted(first[0])
    np.testing.assert_array_equal(shifted_frames(piece)[1:], piece[:-1])
    # The protocol by hand: Bernoulli NLL summed over the 88 keys, averaged over time steps.
    p = np.full(piece.shape, 0.1)
    expected = -(piece * np.log(0.1) + (1 - piece) * np.log(0.9)).sum(axis=1).mean()
    scores = frame_scores(p, piece)
    assert scores["nll_per_step"] == pytest.approx(expected)
    assert scores["frame_accuracy"] == 0.0  # nothing reaches 0.5
    assert key_unigram(targets).min() > 0 and key_unigram(targets).max() < 1


def test_jsb_frame_model_runs_end_to_end_and_exports(tmp_path):
    from pipelines import run

    path = _tiny_jsb(tmp_path)
    result = run(
        {
            "pipeline": "music",
            "preset": "smoke",
            "data": f"jsb:{path}",
            "settings": {"window_steps": 12, "primer_steps": 4, "generate_steps": 4},
            "out": str(tmp_path / "run"),
        }
    )
    final, metrics = result.run_dir, result.metrics
    keys = {"nll_per_step", "frame_accuracy", "steps"}
    assert set(metrics["test"]) == keys
    assert all(set(b) == keys for b in metrics["baselines"].values())
    assert "8.71" in (final / "report.md").read_text()
    import tensorflow as tf

    export = tf.saved_model.load(str(final / "saved_model"))
    primer = tf.zeros([1, 3, 88])
    probabilities = export.signatures["serving_default"](primer=primer)["probabilities"]
    assert probabilities.shape == (1, 88)
    frames = export.signatures["generate"](
        primer=primer,
        steps=tf.constant(5),
        temperature=tf.constant(1.0),
        top_k=tf.constant(4),
        seed=tf.constant([0, 1]),
    )["frames"]
    assert frames.shape == (1, 5, 88) and float(tf.reduce_max(tf.reduce_sum(frames, -1))) <= 4


def _assert_one_error_line(result, path: Path, expected: str, cwd: Path):
    assert result.returncode == 2, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert str(path) in lines[0] and expected in lines[0], lines[0]
    assert not (cwd / "runs").exists()


@pytest.mark.parametrize(
    ("kind", "name", "content", "expected"),
    [
        ("midi", "broken.mid", b"MThd\x00\x00\x00\x06garbage", "not a readable MIDI file"),
        ("midi", "empty.mid", b"", "not a readable MIDI file"),
        ("musicxml", "broken.musicxml", b"<score-partwise><part", "not a readable MusicXML"),
    ],
)
def test_corrupt_files_end_in_one_error_line(tmp_path, kind, name, content, expected):
    folder = tmp_path / "music"
    if kind == "midi":
        _midi_files(folder, count=3)
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_bytes(content)
    spec = f"{kind}:{folder}"
    result = run_cli("run", "music", "--preset", "smoke", "--data", spec, cwd=tmp_path)
    _assert_one_error_line(result, path, expected, tmp_path)


def test_midi_without_notes_and_empty_folder_are_errors(tmp_path):
    import pretty_midi

    folder = tmp_path / "silent"
    folder.mkdir()
    silent = folder / "silent.mid"
    pretty_midi.PrettyMIDI().write(str(silent))
    result = run_cli("run", "music", "--preset", "smoke", "--data", f"midi:{folder}", cwd=tmp_path)
    _assert_one_error_line(result, silent, "has no notes", tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_cli("run", "music", "--preset", "smoke", "--data", f"midi:{empty}", cwd=tmp_path)
    _assert_one_error_line(result, empty, "no MIDI files", tmp_path)


def test_config_refuses_a_bidirectional_generator_and_sizes_past_the_caps():
    from pipelines.errors import UserError
    from pipelines.music.config import MAX_PRIMER_STEPS, MusicConfig

    smoke = MusicConfig.from_preset("smoke")
    with pytest.raises(UserError, match="setting 'bidirectional' = true: input should be False"):
        smoke.with_overrides(["bidirectional=true"])
    for key, value in (
        ("steps_per_quarter", 25),
        ("transpose", 13),
        ("primer_steps", MAX_PRIMER_STEPS + 1),
        ("sample_seed", 2**31),
        ("window_steps", 0),
    ):
        with pytest.raises(UserError, match=f"setting '{key}' = "):
            smoke.with_settings({key: value})
    assert smoke.sequence_steps() == smoke.window_steps * 4  # tokens of a training window
