"""The speech-to-text pipeline: smoke run, serving export equal to the Python decoder, loaders,
and the bad audio inputs that must each end in one clear error."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

from pipelines.errors import UserError
from tests.helpers import run_cli, run_python_without_project, shared_data, smoke_run_dir

METRIC_KEYS = {"wer", "cer", "exact_match"}
RATE = 16000


def _tone_words(seconds: float, rate: int = RATE, seed: int = 0) -> np.ndarray:
    """Speech-like test audio: a few noisy harmonic bursts (not silent, not clipped)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    envelope = (np.sin(2 * np.pi * 2.5 * t) > 0).astype(np.float32)
    audio = envelope * (np.sin(2 * np.pi * 180 * t) + 0.5 * np.sin(2 * np.pi * 900 * t))
    return (0.3 * audio + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


def _write_wav(path: Path, audio: np.ndarray, rate: int = RATE) -> Path:
    import soundfile

    soundfile.write(str(path), audio, rate, subtype="PCM_16")
    return path


def _info(max_seconds: float = 3.0):
    """A data record for models built without loading data."""
    from pipelines.speech_to_text import data

    return data.SpeechToTextInfo(
        name="tones",
        source="test tones",
        sample_rate=RATE,
        vocabulary=data.VOCABULARY,
        max_seconds=max_seconds,
        max_samples=int(max_seconds * RATE),
        beam_width=4,
        n_mels=16,
    )


def _manifest(directory: Path, count: int = 12) -> Path:
    """A manifest CSV of ``count`` short recordings with digit transcripts."""
    rows = ["path,transcript"]
    for i in range(count):
        _write_wav(directory / f"clip_{i}.wav", _tone_words(0.4 + 0.05 * (i % 4), seed=i))
        rows.append(f"clip_{i}.wav,{i}")
    manifest = directory / "manifest.csv"
    manifest.write_text("\n".join(rows) + "\n")
    return manifest


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory) -> Path:
    """One smoke run of the built-in data through the command line."""
    return smoke_run_dir(tmp_path_factory, "speech-to-text", "--seed", "1")


def test_run_directory_and_metrics_beside_baselines(smoke_run):
    for name in (
        "config.json",
        "metrics.json",
        "history.csv",
        "report.md",
        "model.keras",
        "spectrogram.png",
        "saved_model",
        "data_info.json",
    ):
        assert (smoke_run / name).exists(), name
    metrics = json.loads((smoke_run / "metrics.json").read_text())
    assert metrics["pipeline"] == "speech-to-text"
    assert set(metrics["test"]) == METRIC_KEYS
    assert set(metrics["baselines"]) == {
        "greedy_decoding",
        "beam_search",
        "language_model_rescoring",
        "empty_transcript",
        "most_frequent_transcript",
    }
    for baseline in metrics["baselines"].values():
        assert set(baseline) == METRIC_KEYS
    assert metrics["baselines"]["empty_transcript"]["cer"] == 1.0
    assert metrics["baselines"]["empty_transcript"]["wer"] == 1.0
    header = (smoke_run / "history.csv").read_text().splitlines()[0].split(",")
    assert "val_cer" in header  # the epoch callback's value, beside val_loss
    report = (smoke_run / "report.md").read_text()
    assert "| reference | greedy | beam | lexicon beam | LM rescored |" in report
    assert "constrained to a lexicon of" in report
    assert "never heard in training" in report


def test_saved_model_equals_the_python_decoder_in_a_fresh_process(smoke_run, tmp_path):
    import keras
    import tensorflow as tf

    import layers  # noqa: F401  (registers the cells)
    from pipelines.speech_to_text import evaluate, model
    from pipelines.speech_to_text.data import SpeechToTextInfo

    info = SpeechToTextInfo.from_json(json.loads((smoke_run / "data_info.json").read_text()))
    assert info.sample_rate == RATE
    assert "three" in info.lexicon and not info.language_model  # closed vocabulary: no LM
    written = smoke_run / "saved_model" / "assets.extra" / "lexicon.txt"
    assert written.read_text().split() == info.lexicon
    keras_model = keras.models.load_model(smoke_run / "model.keras")
    audio = evaluate.pad_batch([_tone_words(1.0), _tone_words(0.6, seed=1)])
    transcribe = model.make_transcribe(keras_model, info, info.beam_width)
    expected = [t.decode() for t in transcribe(tf.constant(audio)).numpy()]
    np.save(tmp_path / "audio.npy", audio)
    too_long = info.max_samples + 1
    # The child blocks the project's packages: the export must need none of our code.
    child = textwrap.dedent(f"""
        import sys, json
        for name in ("layers", "pipelines", "tuning"):
            sys.modules[name] = None
        import numpy as np
        import tensorflow as tf
        serve = tf.saved_model.load({str(smoke_run / "saved_model")!r}).signatures[
            "serving_default"]
        out = serve(audio=tf.constant(np.load("audio.npy")))["transcript"].numpy()
        errors = []
        for bad in (np.zeros((1, {too_long}), np.float32), np.zeros((2, 100), np.float32)):
            try:
                serve(audio=tf.constant(bad))
                errors.append("no error")
            except tf.errors.InvalidArgumentError as err:
                errors.append(err.message)
        json.dump({{"out": [t.decode() for t in out], "errors": errors}}, open("out.json", "w"))
    """)
    result = run_python_without_project(child, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    served = json.loads((tmp_path / "out.json").read_text())
    assert served["out"] == expected
    # Lexicon decoding: a small lexicon always has candidates made of its words.
    assert all(set(text.split()) <= set(info.lexicon) for text in served["out"])
    from pipelines.speech_to_text import files

    in_process = files.transcribe_recordings(
        keras_model, [_tone_words(1.0), _tone_words(0.6, seed=1)], info
    )
    assert in_process == expected
    assert "longer than" in served["errors"][0]
    assert "shorter than" in served["errors"][1]


def test_predict_prints_a_transcript_per_file_at_any_rate(smoke_run, tmp_path):
    first = _write_wav(tmp_path / "a.wav", _tone_words(0.8, 8000), 8000)
    second = _write_wav(tmp_path / "b.wav", _tone_words(0.8, 22050), 22050)
    result = run_cli("predict", str(smoke_run), str(first), str(second))
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.rstrip("\n").splitlines()[-2:]
    assert [line.split("\t")[1] for line in lines] == [str(first), str(second)]
    silent = _write_wav(tmp_path / "silent.wav", np.zeros(8000, np.float32))
    result = run_cli("predict", str(smoke_run), str(silent))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "silent.wav: the audio is silent" in result.stderr


# === Bad inputs: one error naming the file or row ===


def _bad_files(directory: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, what the error must say)."""
    good = _write_wav(directory / "good.wav", _tone_words(0.5))
    data = good.read_bytes()
    truncated = directory / "truncated.wav"
    truncated.write_bytes(data[: len(data) // 2])
    not_audio = directory / "notes.wav"
    not_audio.write_text("this is a text file named .wav\n" * 20)
    empty = directory / "empty.wav"
    empty.write_bytes(b"")
    silent = _write_wav(directory / "silent.wav", np.zeros(RATE // 2, np.float32))
    low_rate = _write_wav(directory / "low_rate.wav", _tone_words(0.5, 4000), 4000)
    return {
        "truncated": (truncated, "truncated WAV file"),
        "not_audio": (not_audio, "cannot decode audio"),
        "empty": (empty, "is empty"),
        "silent": (silent, "is silent"),
        "low_rate": (low_rate, "sample rate 4000 Hz is below 8000 Hz"),
        "missing": (directory / "missing.wav", "audio file not found"),
    }


@pytest.mark.parametrize(
    "kind", ["truncated", "not_audio", "empty", "silent", "low_rate", "missing"]
)
def test_bad_audio_in_a_manifest_names_the_row_and_the_file(tmp_path, kind):
    from pipelines.speech_to_text import data
    from pipelines.speech_to_text.config import SpeechToTextConfig

    bad, message = _bad_files(tmp_path)[kind]
    manifest = tmp_path / "manifest.csv"
    rows = ["path,transcript", *(f"good.wav,one two {i}" for i in range(6))]
    rows.insert(2, f"{bad.name},three four")  # row 3 of the file
    manifest.write_text("\n".join(rows) + "\n")
    with pytest.raises(UserError, match=rf"manifest.csv, line 3: .*{bad.name}.*{message}"):
        data.load_manifest(SpeechToTextConfig(), str(manifest), seed=0)


def test_manifest_with_missing_or_extra_columns(tmp_path):
    from pipelines.speech_to_text import data
    from pipelines.speech_to_text.config import SpeechToTextConfig

    _write_wav(tmp_path / "good.wav", _tone_words(0.5))
    config = SpeechToTextConfig()
    no_transcript = tmp_path / "no_transcript.csv"
    no_transcript.write_text("path,text\ngood.wav,one\n")
    with pytest.raises(UserError, match=r"no_transcript.csv: no column 'transcript'"):
        data.read_manifest(no_transcript, config)
    extra = tmp_path / "extra.csv"
    extra.write_text("path,transcript\ngood.wav,one\ngood.wav,two,three\n")
    with pytest.raises(UserError, match=r"extra.csv, line 3: 3 field\(s\) where the header has 2"):
        data.read_manifest(extra, config)
    short = tmp_path / "short.csv"
    short.write_text("path,transcript\ngood.wav\n")
    with pytest.raises(UserError, match=r"short.csv, line 2: 1 field\(s\)"):
        data.read_manifest(short, config)
    no_rows = tmp_path / "no_rows.csv"
    no_rows.write_text("path,transcript\n")
    with pytest.raises(UserError, match=r"no_rows.csv: the manifest has a header but no rows"):
        data.read_manifest(no_rows, config)


@pytest.mark.parametrize("kind", ["truncated", "missing", "not_audio", "low_rate", "silent"])
def test_bad_input_on_the_command_line_is_one_error_line_and_no_run_directory(tmp_path, kind):
    bad, message = _bad_files(tmp_path)[kind]
    manifest = tmp_path / "manifest.csv"
    rows = ["path,transcript", *(f"good.wav,one two {i}" for i in range(6)), f"{bad.name},six"]
    manifest.write_text("\n".join(rows) + "\n")
    result = run_cli(
        "run", "speech-to-text", "--preset", "smoke", "--data", f"manifest:{manifest}", cwd=tmp_path
    )
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "line 8" in last and bad.name in last and message in last
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()


# === Data ===


def test_builtin_test_voices_are_disjoint_from_training():
    from pipelines.speech_to_text import data
    from pipelines.speech_to_text.config import SpeechToTextConfig

    voices = data.builtin_voices(SpeechToTextConfig())
    train, validation, test = (set(voices[p]) for p in ("train", "validation", "test"))
    assert not train & test and not train & validation and not validation & test
    assert len(train) >= 30
    engine = data.espeak()
    samples = engine.synthesize("three one four", "en-us+m3", 175, 50)
    assert engine.sample_rate == 22050 and 0.5 < len(samples) / 22050 < 2.5
    with pytest.raises(UserError, match="unknown espeak-ng voice"):
        data.builtin_voices(SpeechToTextConfig(builtin_test_voices=("nobody",)))


def test_transcripts_are_normalised_and_encoded():
    from pipelines.speech_to_text import data

    assert (
        data.normalize_transcript("Call 911, it's Bob’s!")
        == "call nine hundred and eleven it's bob's"
    )
    ids = data.encode_transcripts(["ab", "a b'"])
    assert ids.shape == (2, 4) and ids[0, 2:].tolist() == [0, 0]
    assert data.decode_ids(ids[1]) == "a b'"


def test_fsdd_holds_out_whole_speakers():
    from pipelines.speech_to_text import data
    from pipelines.speech_to_text.config import SpeechToTextConfig

    directory = shared_data("fsdd/recordings")
    config = SpeechToTextConfig.from_preset("smoke")
    splits = data.load_fsdd(config, str(directory), seed=0)
    assert splits.info.speakers["test"] == ["theo"]
    assert "theo" not in splits.info.speakers["train"]
    words = {w for t in splits.test[0]["transcript"] for w in t.split()}
    assert words <= set(data.DIGITS)
    assert all(a.dtype == np.float32 for a in splits.train[0]["audio"])
    assert "concatenating" in splits.info.source


def test_ljspeech_layout_is_read_and_resampled(tmp_path):
    from pipelines.speech_to_text import data
    from pipelines.speech_to_text.config import SpeechToTextConfig

    (tmp_path / "wavs").mkdir()
    lines = []
    for i in range(8):
        _write_wav(tmp_path / "wavs" / f"LJ001-{i:04d}.wav", _tone_words(0.4, 22050, i), 22050)
        lines.append(f"LJ001-{i:04d}|Chapter {i + 1}.|Chapter {['one', 'two'][i % 2]}.")
    (tmp_path / "metadata.csv").write_text("\n".join(lines) + "\n")
    splits = data.load_ljspeech(SpeechToTextConfig(), str(tmp_path), seed=0)
    assert sum(splits.sizes().values()) == 8
    assert set(splits.train[0]["transcript"]) <= {"chapter one", "chapter two"}
    assert abs(len(splits.train[0]["audio"][0]) - int(0.4 * RATE)) <= 1
    (tmp_path / "metadata.csv").write_text("LJ001-0000 only one field\n")
    with pytest.raises(UserError, match=r"metadata.csv, line 1: expected id\|text"):
        data.load_ljspeech(SpeechToTextConfig(), str(tmp_path), seed=0)


@pytest.mark.parametrize("name", ["speech_commands", "librispeech"])
def test_tfds_loaders_offline_with_mock_data(name):
    tfds = pytest.importorskip("tensorflow_datasets")
    from pipelines.speech_to_text import data
    from pipelines.speech_to_text.config import SpeechToTextConfig

    config = SpeechToTextConfig(max_seconds=60.0)
    with tfds.testing.mock_data(num_examples=6):
        splits = data.load_tfds(config, name, seed=0)
    assert sum(splits.sizes().values()) > 0
    assert splits.info.source.startswith(f"tfds:{name}")


# === Model ===


def test_untrained_model_decodes_in_graph_and_ignores_trailing_padding():
    import tensorflow as tf

    from pipelines.speech_to_text import evaluate, model
    from pipelines.speech_to_text.config import SpeechToTextConfig

    config = SpeechToTextConfig.from_preset("smoke").with_settings({"cell": "lstm", "depth": 2})
    info = _info(max_seconds=3.0)
    keras_model = model.build_model(config, info)
    short, long = _tone_words(0.5), _tone_words(1.2, seed=2)
    for width in (1, 3):
        transcribe = model.make_transcribe(keras_model, info, width)
        alone = transcribe(tf.constant(short[None, :])).numpy()[0]
        batched = transcribe(tf.constant(evaluate.pad_batch([short, long]))).numpy()
        assert batched[0] == alone
    steps = len(keras_model(short[None, :]).numpy()[0])
    np.testing.assert_allclose(
        keras_model(evaluate.pad_batch([short, long])).numpy()[0, :steps],
        keras_model(short[None, :]).numpy()[0],
        atol=1e-4,
    )
    features = model.LogMelFeatures(config.n_mels)
    padded = features(tf.constant(evaluate.pad_batch([short, long])))[0].numpy()
    own = features(tf.constant(short[None, :]))[0].numpy()
    np.testing.assert_allclose(padded[: len(own)], own, atol=1e-4)
    assert not padded[len(own) :].any()


def test_ensemble_of_equal_members_decodes_as_its_member_and_round_trips(tmp_path):
    import dataclasses

    import keras
    import tensorflow as tf

    from pipelines.speech_to_text import evaluate, model
    from pipelines.speech_to_text.config import SpeechToTextConfig

    config = SpeechToTextConfig.from_preset("smoke").with_settings({"ensemble_members": 2})
    info = _info(max_seconds=3.0)
    ensemble = model.build_model(config, info)
    suffix = model.member_suffix(1)
    copied = 0
    for layer in ensemble.layers:
        if suffix in layer.name and layer.weights:
            source = ensemble.get_layer(layer.name.replace(suffix, ""))
            layer.set_weights(source.get_weights())
            copied += 1
    assert copied >= 4  # the convolutions, the recurrent stack and the head
    audio = tf.constant(evaluate.pad_batch([_tone_words(0.6), _tone_words(1.1, seed=3)]))
    members = model.member_log_probs(ensemble(audio))
    assert len(members) == 2
    np.testing.assert_allclose(members[0].numpy(), members[1].numpy(), atol=1e-5)
    labels = tf.constant([[5, 6, 0], [7, 0, 0]])
    np.testing.assert_allclose(
        model.ctc_loss(labels, ensemble(audio)).numpy(),
        model.ctc_loss(labels, members[0]).numpy(),
        rtol=1e-4,
    )
    with_lexicon = dataclasses.replace(info, lexicon=["one", "two", "zero"])
    for width, record in ((1, info), (4, with_lexicon)):
        whole = model.make_transcribe(ensemble, record, width)(audio).numpy()
        alone = model.make_transcribe(ensemble, record, width, member=0)(audio).numpy()
        assert list(whole) == list(alone)
    ensemble.save(tmp_path / "ensemble.keras")
    loaded = keras.models.load_model(tmp_path / "ensemble.keras", compile=False, safe_mode=True)
    np.testing.assert_allclose(loaded(audio).numpy(), ensemble(audio).numpy(), atol=1e-5)


def test_audio_bandwidth_finds_narrow_band_audio_resampled_to_the_model_rate():
    from pipelines.speech_to_text import data, model

    rng = np.random.default_rng(0)
    narrow = [data.resample(rng.normal(0, 0.1, 8000).astype(np.float32), 8000) for _ in range(4)]
    assert 4000 <= data.audio_bandwidth(narrow) <= 5000  # the resampler's transition band
    wide = [rng.normal(0, 0.1, 16000).astype(np.float32) for _ in range(4)]
    assert data.audio_bandwidth(wide) == data.SAMPLE_RATE // 2
    assert data.audio_bandwidth([np.zeros(16000, np.float32)]) == data.SAMPLE_RATE // 2
    # The features of narrow-band audio then hold no band made of resampling residue alone.
    top = model.LogMelFeatures(16, upper_hz=4000).mel_matrix.numpy().nonzero()[0].max()
    assert top * data.SAMPLE_RATE / (2 * (model.FFT_LENGTH // 2)) <= 4000


def test_ctc_decoding_of_known_log_probabilities():
    import tensorflow as tf

    from pipelines.speech_to_text import data, model

    vocabulary = tf.constant(data.VOCABULARY)
    path = [data.VOCABULARY.index(c) for c in "aa'b b"]  # "'" stands for the blank here
    path[2] = 0
    log_probs = np.log(np.full((1, len(path), len(data.VOCABULARY)), 1e-3, np.float32))
    log_probs[0, np.arange(len(path)), path] = np.log(0.97)
    for width in (1, 4):
        text = model.decode(tf.constant(log_probs), tf.constant([len(path)]), vocabulary, width)
        assert text.numpy()[0].decode() == "ab b"


# === The declared contract: settings, sources, record, val_cer ===


def test_presets_validate_and_cross_field_rules_name_the_settings():
    from pipelines.speech_to_text.config import SpeechToTextConfig

    for preset in ("smoke", "default", "full"):
        config = SpeechToTextConfig.from_preset(preset)
        assert config.sequence_steps() == int(np.ceil(config.max_seconds * 100 / 3))
    smoke = SpeechToTextConfig.from_preset("smoke")
    for pairs, message in (
        (["builtin_snr_db=30,8"], "'builtin_snr_db' must be LOW,HIGH"),
        (["builtin_validation_voices=m3"], "'builtin_test_voices' and 'builtin_validation"),
        (["n_mels=4"], "'freq_mask_bands' \\(6\\) must be below setting 'n_mels'"),
        (["fsdd_test_speakers="], "setting 'fsdd_test_speakers'"),
        (["max_seconds=600"], "setting 'max_seconds'"),
        (["max_frequency=500"], "setting 'max_frequency' must be 0 \\(measured\\) or 1000"),
        (["max_frequency=9000"], "setting 'max_frequency'"),
        (["ensemble_members=0"], "setting 'ensemble_members'"),
        (["max_trials=3"], "unknown setting 'max_trials'"),
    ):
        with pytest.raises(UserError, match=message):
            smoke.with_overrides(pairs)
    assert smoke.with_overrides(["n_mels=4", "spec_augment=false"]).n_mels == 4


def test_data_sources_parse_and_refuse_with_one_line():
    from pipelines.speech_to_text.config import DATA_SOURCES

    assert {s.kind for s in DATA_SOURCES} == {"builtin", "fsdd", "manifest", "ljspeech", "tfds"}
    assert DATA_SOURCES.parse("tfds:librispeech").argument == "librispeech"
    for spec, message in (
        ("tfds:imagenet", "'imagenet' is not one of librispeech, speech_commands"),
        ("builtin:extra", "write it as builtin"),
        ("fsdd", "needs its argument"),
        ("wav:x", "unknown kind 'wav'"),
    ):
        with pytest.raises(UserError, match=message):
            DATA_SOURCES.parse(spec)


def test_evaluate_data_reads_a_manifest_and_refuses_builtin(tmp_path):
    from pipelines.speech_to_text.config import SpeechToTextConfig
    from pipelines.speech_to_text.pipeline import PIPELINE

    manifest = _manifest(tmp_path, count=4)
    config, info = SpeechToTextConfig(), _info(max_seconds=0.5)
    inputs, ids = PIPELINE.load_test_data(config, f"manifest:{manifest}", info)
    assert len(ids) == 3  # the clip of 0.55 s is over max_seconds
    assert list(inputs["transcript"]) == ["zero", "one", "two"]
    with pytest.raises(UserError, match="cannot evaluate on builtin data"):
        PIPELINE.load_test_data(config, "builtin", info)


def test_record_round_trips_through_json(tmp_path):
    from pipelines.speech_to_text import data
    from pipelines.speech_to_text.config import SpeechToTextConfig

    splits = data.load_manifest(SpeechToTextConfig(), str(_manifest(tmp_path)), seed=0)
    info = splits.info
    assert (info.sample_rate, info.max_samples, info.vocabulary) == (
        RATE,
        6 * RATE,
        data.VOCABULARY,
    )
    assert sum(splits.sizes().values()) == 12 and info.over_length == dict.fromkeys(
        ("train", "validation", "test"), 0
    )
    assert data.SpeechToTextInfo.from_json(json.loads(json.dumps(info.to_json()))) == info
    # Open-vocabulary data: a lexicon and a language model of the training transcripts.
    assert info.lexicon and set(info.lexicon) <= {*data.DIGITS, "ten", "eleven"}
    assert info.language_model["order"] == 3 and info.lm_weight == 0.5


def test_validation_cer_is_written_to_the_epoch_logs(tmp_path):
    from pipelines.speech_to_text import data, evaluate
    from pipelines.speech_to_text.config import SpeechToTextConfig
    from pipelines.speech_to_text.pipeline import PIPELINE

    config = SpeechToTextConfig.from_preset("smoke")
    splits = data.load_manifest(config, str(_manifest(tmp_path)), seed=0)
    keras_model = PIPELINE.build_model(config, splits.info)
    (callback,) = PIPELINE.epoch_callbacks(splits, config)
    assert isinstance(callback, evaluate.ValidationCER)
    history = keras_model.fit(
        PIPELINE.make_dataset(splits.train, 4, shuffle=True),
        validation_data=PIPELINE.make_dataset(splits.validation, 4),
        epochs=2,
        callbacks=[callback],
        shuffle=False,
        verbose=0,
    )
    assert len(history.history["val_cer"]) == 2
    assert all(value >= 0.0 for value in history.history["val_cer"])
    logs = {}
    callback.on_epoch_end(0, logs)
    texts = evaluate.transcribe_all(keras_model, splits.info, callback.audio, 1)
    assert logs["val_cer"] == pytest.approx(
        evaluate.speech_metrics(texts, callback.references)["cer"], abs=1e-4
    )
    # Prediction over files rescores the beam candidates with the run's language model.
    from pipelines.speech_to_text import files

    rescored = files.transcribe_recordings(keras_model, callback.audio, splits.info)
    assert len(rescored) == len(callback.audio) and all(isinstance(t, str) for t in rescored)


def test_a_search_can_minimise_val_cer(tmp_path):
    import pandas as pd

    from pipelines.speech_to_text import data
    from pipelines.speech_to_text.config import SpeechToTextConfig
    from pipelines.speech_to_text.pipeline import PIPELINE
    from tuning.hypermodel import PipelineHyperModel
    from tuning.search import run_search
    from tuning.space import Dimension, Objective

    config = SpeechToTextConfig.from_preset("smoke").with_settings({"batch_size": 4})
    splits = data.load_manifest(config, str(_manifest(tmp_path)), seed=0)
    hypermodel = PipelineHyperModel(PIPELINE, config, splits, {"units": Dimension(choices=[4, 8])})
    best = run_search(
        hypermodel,
        tuner_name="random",
        max_trials=2,
        epochs=1,
        objective=Objective(name="val_cer", direction="min"),
        directory=tmp_path / "tuning",
        seed=0,
    )
    assert best["units"] in (4, 8)
    trials = pd.read_csv(tmp_path / "tuning" / "trials.csv")
    assert trials["score"].between(0, 10).all() and trials["score"].is_monotonic_increasing
