"""Translation: SentencePiece subwords segmented in-graph, detokenized cased output, the
Tatoeba protocol (split by source sentence, multi-reference scoring), the learning curve."""

from __future__ import annotations

import re

import pytest

from tests.helpers import shared_data

TRAINING = [
    "Je suis là.",
    "Ça n'a pas d'importance !",
    "L'élève a réussi l'examen, à Noël.",
    "Où est la gare ? Je ne la trouve pas.",
    "Tom et Marie sont allés à Zürich.",
    "« Bonjour », dit-il.",
    "As-tu un stylo\u202f? Va\xa0!",  # no-break spaces are characters, not separators
] * 5


WORDS = len({w for t in TRAINING for w in t.split(" ")})  # no-break spaces do not split


def _pieces(budget=WORDS - 1):
    from pipelines.translation import subwords

    return subwords.learn_pieces(TRAINING, budget)


def _segment(texts, max_pieces=64, budget=WORDS - 1):
    import tensorflow as tf

    from pipelines.translation import subwords

    layer = subwords.SubwordIds(_pieces(budget), max_pieces)
    ids, counts = layer.segment(tf.constant(texts))
    return layer, ids.numpy(), counts.numpy()


def test_whole_words_are_the_pieces_only_where_every_word_fits_the_budget():
    from pipelines.translation.subwords import MARKER

    closed = ["walk twice", "I_TURN_RIGHT I_WALK", "walk"] * 3  # a SCAN-like language
    assert _pieces_of(closed, 8)[:4] == [
        f"{MARKER}walk",
        f"{MARKER}twice",
        f"{MARKER}I_TURN_RIGHT",
        f"{MARKER}I_WALK",
    ]
    words = {f"{MARKER}{w}" for t in TRAINING for w in t.split(" ")}
    assert set(_pieces(WORDS)) >= words
    assert not set(_pieces(WORDS - 1)) >= words  # BPE: some words are split


@pytest.mark.parametrize("budget", [8, WORDS - 1])
def test_a_budget_below_the_characters_still_covers_every_character(budget):
    characters = {c for t in TRAINING for c in t if c != " "}
    assert set(_pieces(budget)) >= characters


def _pieces_of(texts, budget):
    from pipelines.translation import subwords

    return subwords.learn_pieces(texts, budget)


@pytest.mark.parametrize("budget", [WORDS - 1, WORDS])
def test_segmentation_round_trips_case_punctuation_and_accents(budget):
    import tensorflow as tf

    from pipelines.translation import subwords

    texts = [
        "Je suis là.",
        "  L'élève   a réussi !  ",
        "Marie, où est Tom ? « Là. »",
        "Noël à Zürich",
        "Tu as un stylo\u202f?",
    ]
    layer, ids, counts = _segment(texts, budget=budget)
    vocabulary = tf.constant(["", "[UNK]", *layer.pieces])
    pieces = tf.ragged.boolean_mask(tf.gather(vocabulary, ids), ids > 0)
    assert counts.tolist() == [int(sum(row > 0)) for row in ids]
    assert (counts > 0).all() and not (ids == 1).any()  # every character is covered
    joined = [t.decode() for t in subwords.detokenize(pieces).numpy()]
    # Runs of ASCII whitespace become one space; everything else comes back as written.
    assert joined == [re.sub(r"[\t\n\f\r ]+", " ", t).strip() for t in texts]


def test_unknown_characters_and_over_long_texts_are_marked():
    _, ids, counts = _segment(["Je ☃ là", "", "là " * 3000], max_pieces=8)
    assert 1 in ids[0].tolist()  # the snowman is no piece
    assert counts[1] == 0  # an empty text has no pieces
    assert counts[2] == 9  # counted up to max_pieces + 1: over the limit shows
    assert ids.shape == (3, 8)


def test_decoder_output_is_detokenized_cased_text():
    import tensorflow as tf

    from pipelines.translation import data, model
    from pipelines.translation.subwords import MARKER

    target = [f"{MARKER}Je", f"{MARKER}suis", f"{MARKER}l", "à", ".", "!"]
    decoder = object.__new__(model.Decoder)  # to_text needs only the vocabulary
    decoder.vocabulary = tf.constant(data.RESERVED + target)
    first = len(data.RESERVED)
    ids = tf.constant([[first, first + 1, first + 2, first + 3, first + 4, model.END_ID, first]])
    assert [t.decode() for t in decoder.to_text(ids).numpy()] == ["Je suis là."]


def test_multi_reference_scores_use_every_reference():
    from pipelines.translation.evaluate import reference_streams, translation_metrics

    references = [("Je suis là.", "J'y suis."), ("Il est parti.",)]
    assert reference_streams(references) == [["Je suis là.", "Il est parti."], ["J'y suis.", None]]
    metrics = translation_metrics(["J'y suis.", "Il est parti."], references)
    assert metrics["exact_match"] == 1.0 and metrics["bleu"] == 100.0
    lower = translation_metrics(["j'y suis.", "il est parti."], references)
    assert lower["bleu"] < 100.0 and lower["bleu_lowercase"] == 100.0


def test_tatoeba_is_split_by_source_sentence_and_scored_on_all_references():
    from pipelines.translation import data
    from pipelines.translation.config import TranslationConfig

    path = shared_data("tatoeba/fra.txt")
    splits = data.load_tatoeba(TranslationConfig(), str(path), seed=0)
    train_sources = set(splits.train[0]["source"]) | set(splits.validation[0]["source"])
    test_sources = list(splits.test[0]["source"])
    assert not train_sources & set(test_sources)
    assert len(test_sources) == len(set(test_sources))
    references = splits.test[0]["references"]
    assert max(len(refs) for refs in references) > 1
    pairs = data.read_pairs(path, allow_truncated_last=True)
    by_source = {}
    for source, target in pairs:
        by_source.setdefault(source, []).append(target)
    row = next(i for i, refs in enumerate(references) if len(refs) > 1)
    assert list(references[row]) == by_source[test_sources[row]]  # as written, every one
    # The targets the model learns are the same graph's pieces of the original text.
    assert any(c.isupper() for c in splits.info.target_vocabulary[len(data.RESERVED) :][0:200])


def test_learning_curve_trains_on_fractions_of_the_training_pairs(monkeypatch):
    from pipelines.translation import data, evaluate
    from pipelines.translation.config import TranslationConfig

    monkeypatch.setattr(evaluate, "LEARNING_CURVE_PERCENTS", (25,))  # one training is enough

    config = TranslationConfig.from_preset("smoke").with_settings({"learning_curve": True})
    splits = data.load_builtin(config, "", seed=0)
    sources = list(splits.test[0]["source"][:20])
    references = evaluate.references_of(splits.test)[:20]
    curve = evaluate.learning_curve(splits, config, sources, references)
    assert sorted(curve) == list(evaluate.LEARNING_CURVE_PERCENTS)
    assert all(0.0 <= bleu <= 100.0 for bleu in curve.values())


@pytest.mark.parametrize("text", ["", "   "])
def test_blank_input_is_refused_by_predict_checks(text):
    from pipelines.translation import data
    from pipelines.translation.config import TranslationConfig

    splits = data.load_builtin(TranslationConfig.from_preset("smoke"), "", seed=0)
    assert data.input_problem(text, splits.info) == "is empty"
