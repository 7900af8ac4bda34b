"""Speech-to-text decoding: the lexicon-constrained beam search of the export on constructed
CTC outputs, the lexicon setting and its errors, and the word n-gram language model."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipelines.errors import UserError
from tests.helpers import run_cli


def _log_probs(rows: list[dict[str, float]]) -> np.ndarray:
    """``[1, steps, characters]`` log-probabilities: each step's given characters ("" is the
    blank) with their probabilities, the rest nearly impossible."""
    from pipelines.speech_to_text.data import VOCABULARY

    out = np.full((len(rows), len(VOCABULARY)), 1e-4, np.float32)
    for step, probabilities in enumerate(rows):
        for character, probability in probabilities.items():
            out[step, VOCABULARY.index(character)] = probability
    return np.log(out / out.sum(axis=1, keepdims=True))[None]


# The best path spells "nne two"; "nine two" is a weaker path, "one two" weaker still.
NNE_TWO = [
    {"n": 0.9},
    {"": 0.6, "i": 0.4},
    {"n": 0.9},
    {"e": 0.9},
    {"": 0.9},
    {" ": 0.9},
    {"t": 0.9},
    {"w": 0.5, "o": 0.4},
    {"o": 0.9},
]


def _decode(words, rows, beam_width=8, lexicon=True):
    import tensorflow as tf

    from pipelines.speech_to_text.data import VOCABULARY
    from pipelines.speech_to_text.decoding import LexiconDecoder
    from pipelines.speech_to_text.model import decode

    log_probs = tf.constant(_log_probs(rows))
    lengths = tf.constant([len(rows)])
    if not lexicon:
        return decode(log_probs, lengths, tf.constant(VOCABULARY), beam_width).numpy()[0].decode()
    decoder = LexiconDecoder(sorted(words), VOCABULARY)
    return decoder.decode(log_probs, lengths, beam_width).numpy()[0].decode()


def test_ctc_scores_of_repeated_candidates_and_of_an_ensemble():
    import tensorflow as tf

    from pipelines.speech_to_text.data import DIGITS, VOCABULARY
    from pipelines.speech_to_text.decoding import LexiconDecoder

    decoder = LexiconDecoder(DIGITS, VOCABULARY)
    first = tf.constant(np.concatenate([_log_probs(NNE_TWO)] * 2))
    second = tf.constant(np.concatenate([_log_probs(NNE_TWO[::-1])] * 2))
    lengths = tf.constant([len(NNE_TWO), len(NNE_TWO) - 2])
    texts = tf.constant([["nine two", "one two", "nine two", ""], ["two", "two", "x", "two"]])
    scores = decoder.ctc_log_probs(texts, first, lengths).numpy()
    for row in range(2):
        for column in range(4):
            alone = decoder.ctc_log_probs(
                texts[row : row + 1, column : column + 1],
                first[row : row + 1],
                lengths[row : row + 1],
            ).numpy()[0, 0]
            np.testing.assert_allclose(scores[row, column], alone, rtol=1e-5)
    assert scores[0, 0] == scores[0, 2] > scores[0, 1]
    mean = decoder.ctc_log_probs(texts, [first, second], lengths).numpy()
    other = decoder.ctc_log_probs(texts, second, lengths).numpy()
    np.testing.assert_allclose(mean, (scores + other) / 2, rtol=1e-5)


def test_lexicon_beam_search_keeps_the_best_candidate_made_of_known_words():
    from pipelines.speech_to_text.data import DIGITS

    assert _decode(DIGITS, NNE_TWO, lexicon=False) == "nne two"
    assert _decode(DIGITS, NNE_TWO) == "nine two"
    # A large lexicon is not respelled: the beam paths are filtered, and "nine two" is one.
    many = [*DIGITS, *(f"w{'x' * i}" for i in range(100))]
    assert _decode(many, NNE_TWO) == "nine two"
    # No candidate in the lexicon: the best beam path.
    assert _decode(["w" * 20 + "z", *(f"q{'y' * i}" for i in range(80))], NNE_TWO) == "nne two"


def test_respelling_and_membership_in_the_graph():
    import tensorflow as tf

    from pipelines.speech_to_text.data import DIGITS, VOCABULARY
    from pipelines.speech_to_text.decoding import LexiconDecoder

    decoder = LexiconDecoder(sorted(DIGITS), VOCABULARY)
    known = decoder.all_in_lexicon(tf.constant(["", "one two", "nne", "zero  nine"]))
    assert known.numpy().tolist() == [True, True, False, True]
    respelled = decoder.respell(tf.constant(["sevn tto", "", "three"])).numpy().tolist()
    assert respelled == [b"seven two", b"", b"three"]
    assert not LexiconDecoder([], VOCABULARY).in_lexicon(tf.constant(["one"])).numpy().any()


def test_the_lexicon_setting_reads_a_word_list_and_names_a_bad_file(tmp_path, monkeypatch):
    from pipelines.speech_to_text import decoding

    words = tmp_path / "words.txt"
    words.write_text("One two\nthree, FOUR 5\n\n")
    assert decoding.lexicon_words(str(words), []) == ["five", "four", "one", "three", "two"]
    assert decoding.lexicon_words("train", ["b a", "a c"]) == ["a", "b", "c"]
    assert decoding.lexicon_words("none", ["b a"]) == []
    empty = tmp_path / "empty.txt"
    empty.write_text(" \n,\n")
    latin = tmp_path / "latin.txt"
    latin.write_bytes("caf\xe9\n".encode("latin-1"))
    for path, message in (
        (tmp_path / "missing.txt", "missing.txt: no such file"),
        (empty, "empty.txt: no words"),
        (latin, "latin.txt"),
    ):
        with pytest.raises(UserError, match=message):
            decoding.lexicon_words(str(path), [])
    monkeypatch.setattr(decoding, "MAX_LEXICON_BYTES", 10)
    with pytest.raises(UserError, match=r"words.txt: 23 bytes, over the 10"):
        decoding.lexicon_words(str(words), [])
    monkeypatch.setattr(decoding, "MAX_LEXICON_BYTES", 1000)
    monkeypatch.setattr(decoding, "MAX_LEXICON_WORDS", 3)
    with pytest.raises(UserError, match=r"words.txt, line 2: over 3 distinct words"):
        decoding.lexicon_words(str(words), [])
    with pytest.raises(UserError, match="training transcripts hold 4 distinct words"):
        decoding.lexicon_words("train", ["a b c d"])


def test_a_bad_lexicon_file_is_one_error_line_and_no_run(tmp_path):
    from tests.pipelines.test_speech_to_text import _manifest

    manifest = _manifest(tmp_path)
    result = run_cli(
        "run",
        "speech-to-text",
        "--preset",
        "smoke",
        "--data",
        f"manifest:{manifest}",
        "--set",
        f"lexicon={tmp_path / 'nowhere.txt'}",
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: setting 'lexicon': {tmp_path / 'nowhere.txt'}: no such file"
    )
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()


# === The word n-gram language model ===


def test_kneser_ney_probabilities_sum_to_one_and_round_trip():
    from pipelines.speech_to_text.language_model import END, WordNgramModel

    transcripts = ["the cat sat", "the dog sat", "a cat ran", "the cat ran away"]
    for order in (1, 2, 3):
        model = WordNgramModel.from_transcripts(transcripts, order)
        words = sorted(model.vocabulary)
        for history in [(), ("the",), ("<s>", "the"), ("cat", "sat"), ("zebra",)]:
            total = sum(model.probability(w, history) for w in words)
            total += model.probability("unknown-word", history)
            assert total == pytest.approx(1.0, abs=1e-9), (order, history)
        again = WordNgramModel.from_json(model.to_json())
        assert again.log_prob("the cat sat") == model.log_prob("the cat sat")
        assert END in model.vocabulary


def test_language_model_rescoring_prefers_an_in_vocabulary_sequence():
    from pipelines.speech_to_text.language_model import WordNgramModel, rescore

    model = WordNgramModel.from_transcripts(
        ["the cat sat on the mat", "the dog sat on the rug", "a cat sat down"], 3
    )
    assert model.log_prob("the cat sat") > model.log_prob("the cat sta")
    assert model.log_prob("the cat sat") > model.log_prob("cat the sat")
    candidates, scores = ["the cat sta", "the cat sat"], [-1.0, -1.5]
    assert rescore(candidates, scores, model, weight=0.0) == "the cat sta"
    assert rescore(candidates, scores, model, weight=0.5) == "the cat sat"
    assert math.isfinite(model.log_prob(""))
