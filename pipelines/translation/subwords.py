"""Subword pieces: learned with SentencePiece, applied with standard TensorFlow ops.

SentencePiece (BPE) learns each side's vocabulary of pieces from the training sentences
(or, where every distinct word fits the budget, the pieces are the whole words); the model
then segments with its own deterministic rule, written in standard TensorFlow ops
so that a stock TensorFlow Serving runs the export: whitespace collapsed, every word marked
with a leading ``MARKER``, then greedy longest match over the pieces, left to right (a
character that no piece covers becomes the unknown id). Training data is segmented by the
same graph code, so training and serving agree. Joining the pieces and turning the markers
back into spaces gives the text again, case, punctuation and accents included.
"""

from __future__ import annotations

import collections
import io
import re

import keras
import tensorflow as tf

MARKER = "\u2581"  # SentencePiece's word-start mark
# SentencePiece's own bound on a piece's length in characters; the greedy match looks
# this many characters ahead.
MAX_PIECE_CHARS = 16


def learn_pieces(texts: list[str], vocabulary_size: int) -> list[str]:
    """About ``vocabulary_size`` pieces for ``texts`` (a soft limit: small data gives fewer),
    most useful first, every character of ``texts`` and the bare marker included.

    Subwords exist to cover an open vocabulary within a budget: where every distinct word
    fits the budget (a closed, synthetic language such as SCAN's actions), the pieces are the
    whole words, which keeps sequences as short as the sentences; otherwise they are a BPE
    vocabulary learned by SentencePiece.
    """
    # Collapse only what ``prepare`` collapses (RE2's \s): a no-break space stays a character.
    texts = [re.sub(r"[\t\n\f\r ]+", " ", t).strip(" ") for t in texts]
    texts = [t for t in texts if t]
    words = collections.Counter(MARKER + w for t in texts for w in t.split(" "))
    fits = len(words) <= vocabulary_size and all(len(w) <= MAX_PIECE_CHARS for w in words)
    characters = sorted({c for t in texts for c in t if c != " "} | {MARKER})
    if fits:
        pieces = [w for w, _ in words.most_common()]
    else:
        # SentencePiece refuses a budget below its characters plus the unknown id.
        pieces = _bpe_pieces(texts, max(vocabulary_size, len(characters) + 1))
    known = set(pieces)
    return pieces + [c for c in characters if c not in known]


def _bpe_pieces(texts: list[str], vocabulary_size: int) -> list[str]:
    """SentencePiece BPE pieces of ``texts``, most useful first, without its special ids."""
    import sentencepiece

    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(texts),
        model_writer=model,
        model_type="bpe",
        vocab_size=vocabulary_size,
        hard_vocab_limit=False,
        character_coverage=1.0,
        normalization_rule_name="identity",
        max_sentencepiece_length=MAX_PIECE_CHARS,
        num_threads=1,
        bos_id=-1,
        eos_id=-1,
        minloglevel=2,
    )
    processor = sentencepiece.SentencePieceProcessor(model_proto=model.getvalue())
    return [
        processor.id_to_piece(i)
        for i in range(processor.get_piece_size())
        if not (processor.is_unknown(i) or processor.is_control(i))
    ]


def prepare(text):
    """tf: whitespace collapsed and stripped, each word prefixed with ``MARKER``."""
    text = tf.strings.strip(tf.strings.regex_replace(text, r"\s+", " "))
    marked = tf.strings.regex_replace(tf.strings.join([" ", text]), " ", MARKER)
    return tf.where(tf.equal(text, ""), text, marked)


def detokenize(pieces):
    """tf: ragged pieces [batch, (n)] -> text [batch]: joined, markers back to spaces."""
    text = tf.strings.reduce_join(pieces, axis=-1)
    return tf.strings.strip(tf.strings.regex_replace(text, MARKER, " "))


def piece_table(pieces: list[str], first_id: int) -> tf.lookup.StaticHashTable:
    """piece -> ``first_id + its index``; -1 for a string that is no piece."""
    return tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant(pieces, tf.string),
            tf.range(first_id, first_id + len(pieces), dtype=tf.int64),
        ),
        default_value=-1,
    )


def segment(text, table, max_piece_chars: int, max_pieces: int, unknown_id: int):
    """tf: texts [batch] -> (ids [batch, max_pieces] int64, 0 after the last piece; the
    number of pieces [batch], counted up to ``max_pieces + 1`` so that a longer text shows).

    Greedy longest match: at each step every row looks ``max_piece_chars`` characters ahead
    and takes the longest prefix that is a piece (else one character as ``unknown_id``).
    """
    # The first max_pieces + 1 pieces and their look-ahead lie within this many characters
    # (of at most 4 bytes each): the rest of a long text is cut off before it is split.
    kept_bytes = 4 * (max_pieces + 2) * max_piece_chars
    text = tf.strings.substr(prepare(text), 0, kept_bytes, unit="BYTE")
    chars = tf.strings.unicode_split(text, "UTF-8")
    lengths = tf.cast(chars.row_lengths(), tf.int32)
    dense = tf.pad(chars.to_tensor(default_value=""), [[0, 0], [0, max_piece_chars]])
    ahead = tf.range(max_piece_chars)
    batch = tf.shape(dense)[0]

    def step(i, position, ids):
        window = tf.gather(dense, position[:, None] + ahead[None, :], batch_dims=1)
        prefixes = [window[:, 0]]
        for column in range(1, max_piece_chars):
            prefixes.append(tf.strings.join([prefixes[-1], window[:, column]]))
        found = table.lookup(tf.stack(prefixes, axis=1))
        fits = position[:, None] + ahead[None, :] < lengths[:, None]
        size = tf.reduce_max(tf.where(fits & (found >= 0), ahead[None, :] + 1, 0), axis=1)
        chosen = tf.gather(found, tf.maximum(size - 1, 0), batch_dims=1)
        chosen = tf.where(size > 0, chosen, tf.cast(unknown_id, tf.int64))
        active = position < lengths
        ids = ids.write(i, tf.where(active, chosen, tf.zeros_like(chosen)))
        return i + 1, position + tf.where(active, tf.maximum(size, 1), 0), ids

    def more(i, position, ids):
        # At least one step, so that the stack of ids has a column even for blank texts.
        return (i <= max_pieces) & ((i == 0) | tf.reduce_any(position < lengths))

    ids = tf.TensorArray(tf.int64, size=0, dynamic_size=True, element_shape=[None])
    _, _, ids = tf.while_loop(more, step, (tf.constant(0), tf.zeros([batch], tf.int32), ids))
    ids = tf.reshape(tf.transpose(ids.stack()), [batch, -1])
    counts = tf.reduce_sum(tf.cast(ids > 0, tf.int32), axis=1)
    width = tf.shape(ids)[1]
    ids = tf.pad(ids, [[0, 0], [0, tf.maximum(max_pieces - width, 0)]])[:, :max_pieces]
    return ids, counts


@keras.saving.register_keras_serializable(package="rnn_suite")
class SubwordIds(keras.layers.Layer):
    """Strings [batch] -> piece ids [batch, max_pieces] (0 pads, 1 is an unknown character,
    ``pieces[i]`` is ``i + 2``), by ``segment``."""

    def __init__(self, pieces: list[str], max_pieces: int, **kwargs):
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        self.pieces = list(pieces)
        self.max_pieces = max_pieces
        self.max_piece_chars = min(MAX_PIECE_CHARS, max(len(p) for p in self.pieces))
        self.table = piece_table(self.pieces, 2)

    def vocabulary_size(self) -> int:
        """Pieces plus padding and unknown."""
        return len(self.pieces) + 2

    def segment(self, text):
        """(ids [batch, max_pieces] int64, piece counts [batch]) of ``text``."""
        return segment(text, self.table, self.max_piece_chars, self.max_pieces, 1)

    def call(self, text):
        """Piece ids of a batch of strings."""
        return self.segment(text)[0]

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.max_pieces)

    def compute_output_spec(self, text):
        return keras.KerasTensor((*text.shape, self.max_pieces), dtype="int64")

    def get_config(self):
        return {**super().get_config(), "pieces": self.pieces, "max_pieces": self.max_pieces}
