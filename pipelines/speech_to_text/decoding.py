"""CTC decoding constrained to a word list (the lexicon), in the graph with standard ops only.

The candidates of an utterance are the ``beam_width`` best paths of CTC beam search (of each
member's output, for an ensemble of acoustic models); when the lexicon is small
(``MAX_SPELLED_LEXICON`` words) also each candidate with every unknown word replaced by its
nearest lexicon word (edit distance), and every single lexicon word. Each candidate is scored
exactly by its CTC log-probability under the model's output (``tf.nn.ctc_loss``; for an
ensemble the members' mean, which needs no alignment between the members' outputs); the
transcript is the best candidate whose words are all in the lexicon, or the best beam path
when none is. Lexicon membership is a search in the sorted 64-bit fingerprints of its words
(graph constants), so that the export holds no lookup table resource and serves in a stock
TensorFlow Serving.

The lexicon is the training transcripts' words, or the words of a file (``lexicon=PATH``).
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from pipelines.errors import UserError
from pipelines.text_files import bounded_lines

MAX_LEXICON_WORDS = 200_000  # distinct words of a lexicon (graph constants of the export)
MAX_LEXICON_BYTES = 8 * 2**20  # size of a lexicon file, checked before it is read
MAX_SPELLED_LEXICON = 64  # up to this many words, unknown words are respelled (see above)
LEXICON_CHOICES = ("train", "none")  # the ``lexicon`` values that are not a file
_FINGERPRINT_BUCKETS = 2**63 - 1  # tf.strings.to_hash_bucket_fast: the whole 64-bit range


# === The lexicon ===


def lexicon_words(setting: str, transcripts) -> list[str]:
    """The sorted lexicon of the ``lexicon`` setting: ``train`` (the words of
    ``transcripts``), ``none`` (no lexicon: plain beam search) or a word list file."""
    if setting == "none":
        return []
    if setting == "train":
        words = sorted({w for text in transcripts for w in str(text).split()})
        if len(words) > MAX_LEXICON_WORDS:
            raise UserError(
                f"the training transcripts hold {len(words):,} distinct words, over the "
                f"{MAX_LEXICON_WORDS:,} of a lexicon; set lexicon=none or lexicon=PATH"
            )
        return words
    return read_lexicon(Path(setting))


def read_lexicon(path: Path) -> list[str]:
    """The sorted distinct words of a UTF-8 word list (words separated by spaces or lines,
    normalised as transcripts are); UserError naming the file for a missing, too large,
    undecodable or empty file or one with more than ``MAX_LEXICON_WORDS`` words."""
    from pipelines.speech_to_text.data import normalize_transcript

    if not path.is_file():
        raise UserError(f"setting 'lexicon': {path}: no such file")
    size = path.stat().st_size
    if size > MAX_LEXICON_BYTES:
        raise UserError(
            f"setting 'lexicon': {path}: {size:,} bytes, over the {MAX_LEXICON_BYTES:,} a "
            "lexicon file may hold"
        )
    words: set[str] = set()
    for number, line in enumerate(bounded_lines(path, what="a word list"), 1):
        words.update(normalize_transcript(line).split())
        if len(words) > MAX_LEXICON_WORDS:
            raise UserError(
                f"setting 'lexicon': {path}, line {number}: over {MAX_LEXICON_WORDS:,} "
                "distinct words"
            )
    if not words:
        raise UserError(f"setting 'lexicon': {path}: no words (one or more a line)")
    return sorted(words)


# === In the graph ===


def ids_to_text(ids, vocabulary):
    """Character ids ``[batch, length]`` (0 and negative ids skipped) -> normalised strings."""
    characters = tf.ragged.boolean_mask(tf.gather(vocabulary, tf.maximum(ids, 0)), ids > 0)
    text = tf.strings.reduce_join(characters, axis=-1)
    return tf.strings.strip(tf.strings.regex_replace(text, " +", " "))


class LexiconDecoder:
    """Lexicon-constrained decoding of CTC log-probabilities (see the module's docstring).

    Args:
        words: the lexicon (distinct words over the characters of ``vocabulary``); none:
            only the candidates and their scores are of use (for a language model).
        vocabulary: the output characters in id order; id 0 is the CTC blank.
    """

    def __init__(self, words: list[str], vocabulary: list[str]):
        self.words = list(words)
        self.vocabulary = tf.constant(vocabulary)
        prints = tf.strings.to_hash_bucket_fast(
            tf.constant(self.words, tf.string), _FINGERPRINT_BUCKETS
        )
        self.fingerprints = tf.constant(np.unique(prints.numpy()))
        byte_ids = np.zeros(256, np.int32)
        for index, character in enumerate(vocabulary):
            if character:
                byte_ids[ord(character)] = index
        self.byte_ids = tf.constant(byte_ids)
        self.spelled = 0 < len(self.words) <= MAX_SPELLED_LEXICON
        self.lexicon = tf.constant(self.words)

    def in_lexicon(self, words):
        """bool, per word of a 1-D string tensor: whether the lexicon holds it."""
        if not self.words:
            return tf.fill(tf.shape(words), False)
        prints = tf.strings.to_hash_bucket_fast(words, _FINGERPRINT_BUCKETS)
        position = tf.searchsorted(self.fingerprints, prints)
        position = tf.minimum(position, tf.size(self.fingerprints) - 1)
        return tf.equal(tf.gather(self.fingerprints, position), prints)

    def all_in_lexicon(self, texts):
        """bool, per string of a 1-D tensor: whether every word is in the lexicon."""
        words = tf.strings.split(texts)
        known = words.with_flat_values(self.in_lexicon(words.flat_values))
        return tf.reduce_all(known, axis=1)

    def respell(self, texts):
        """Each string of a 1-D tensor with its unknown words replaced by the nearest
        lexicon word (character edit distance; the first in lexicon order on a tie)."""
        words = tf.strings.split(texts)
        flat = words.flat_values
        count, size = tf.size(flat), tf.size(self.lexicon)
        hypotheses = tf.gather(tf.strings.bytes_split(flat), tf.repeat(tf.range(count), size))
        truths = tf.gather(tf.strings.bytes_split(self.lexicon), tf.tile(tf.range(size), [count]))
        distance = tf.edit_distance(hypotheses.to_sparse(), truths.to_sparse(), normalize=False)
        nearest = tf.gather(self.lexicon, tf.argmin(tf.reshape(distance, [count, size]), axis=1))
        respelled = tf.where(self.in_lexicon(flat), flat, nearest)
        return tf.strings.reduce_join(words.with_flat_values(respelled), axis=1, separator=" ")

    def ctc_log_probs(self, texts, log_probs, lengths):
        """CTC log-probability ``[batch, candidates]`` of each candidate ``texts[b, c]`` under
        ``log_probs[b]`` ``[batch, steps, characters]`` over its first ``lengths[b]`` steps
        (-inf for one that cannot fit in them); ``log_probs`` may be a list of the members of
        an ensemble, whose mean log-probability is given."""
        members = log_probs if isinstance(log_probs, list | tuple) else [log_probs]
        candidates = tf.shape(texts)[1]
        rows = tf.repeat(tf.range(tf.shape(texts)[0]), candidates)
        flat = tf.reshape(texts, [-1])
        # Beam paths, their respellings and the single words overlap (the more so across the
        # members of an ensemble): each distinct text of an utterance is scored once.
        keys = tf.strings.join([tf.strings.as_string(rows), flat], separator="\n")
        distinct, index = tf.unique(keys)
        first = tf.math.unsorted_segment_min(tf.range(tf.size(keys)), index, tf.size(distinct))
        texts, rows = tf.gather(flat, first), tf.gather(rows, first)
        scores = tf.add_n([self._ctc_scores(texts, rows, m, lengths) for m in members])
        return tf.reshape(tf.gather(scores / len(members), index), [-1, candidates])

    def _ctc_scores(self, texts, rows, log_probs, lengths):
        """CTC log-probability of each of the strings ``texts`` under ``log_probs[rows]``
        over its first ``lengths[rows]`` steps (-inf for one that cannot fit in them)."""
        steps = tf.gather(lengths, rows)
        ids = tf.gather(
            self.byte_ids, tf.clip_by_value(tf.strings.unicode_decode(texts, "UTF-8"), 0, 255)
        )
        dense = ids.to_tensor()
        repeats = tf.reduce_sum(
            tf.cast((dense[:, 1:] == dense[:, :-1]) & (dense[:, 1:] > 0), tf.int32), 1
        )
        label_length = tf.cast(ids.row_lengths(), tf.int32)
        scored = (label_length > 0) & (label_length + repeats <= steps)
        # The CTC op needs a label that fits: the others are scored with a placeholder.
        placeholder = tf.fill(tf.shape(texts), " ")
        safe = tf.gather(
            self.byte_ids, tf.strings.unicode_decode(tf.where(scored, texts, placeholder), "UTF-8")
        )
        loss = tf.nn.ctc_loss(
            labels=tf.cast(safe.to_sparse(), tf.int32),
            logits=tf.gather(log_probs, rows),
            label_length=None,
            logit_length=tf.maximum(steps, 1),
            logits_time_major=False,
            blank_index=0,
        )
        valid_steps = tf.sequence_mask(lengths, tf.shape(log_probs)[1], log_probs.dtype)
        all_blank = tf.gather(tf.reduce_sum(log_probs[:, :, 0] * valid_steps, axis=1), rows)
        return tf.where(scored, -loss, tf.where(label_length == 0, all_blank, -np.inf))

    def candidates(self, members, lengths, beam_width: int):
        """``(texts, scores, allowed)``, each ``[batch, candidates]``: the beam paths (best
        first) of each of ``members`` (log-probabilities ``[batch, steps, characters]``: a
        tensor, or a list of them for an ensemble), then the respelled paths and single words
        when the lexicon is small; their exact CTC log-probabilities (the members' mean);
        whether all their words are in the lexicon."""
        members = members if isinstance(members, list | tuple) else [members]
        texts = tf.concat([self._beam_paths(m, lengths, beam_width) for m in members], axis=1)
        if self.spelled:
            batch = tf.shape(texts)[0]
            respelled = tf.reshape(self.respell(tf.reshape(texts, [-1])), [batch, -1])
            singles = tf.tile(self.lexicon[None, :], [batch, 1])
            texts = tf.concat([texts, respelled, singles], axis=1)
        scores = self.ctc_log_probs(texts, members, lengths)
        allowed = tf.reshape(self.all_in_lexicon(tf.reshape(texts, [-1])), tf.shape(texts))
        return texts, scores, allowed & tf.math.is_finite(scores)

    def _beam_paths(self, log_probs, lengths, beam_width: int):
        """The ``beam_width`` best CTC beam paths (1: the greedy path), ``[batch, beam_width]``
        strings."""
        if beam_width > 1:
            ids, _ = keras.ops.ctc_decode(
                log_probs,
                lengths,
                strategy="beam_search",
                beam_width=beam_width,
                top_paths=beam_width,
                mask_index=0,
            )
        else:
            ids, _ = keras.ops.ctc_decode(log_probs, lengths, strategy="greedy", mask_index=0)
        ids = tf.transpose(ids, [1, 0, 2])  # [batch, beam_width, steps]
        batch = tf.shape(ids)[0]
        flat = ids_to_text(tf.reshape(ids, [batch * beam_width, -1]), self.vocabulary)
        return tf.reshape(flat, [batch, beam_width])

    def decode(self, members, lengths, beam_width: int):
        """The transcripts ``[batch]``: the best candidate in the lexicon, else the best
        beam path (``members``: as ``candidates`` takes them)."""
        members = members if isinstance(members, list | tuple) else [members]
        texts, scores, allowed = self.candidates(members, lengths, beam_width)
        constrained = tf.argmax(tf.where(allowed, scores, -np.inf), axis=1, output_type=tf.int32)
        paths = beam_width * len(members)
        unconstrained = tf.argmax(scores[:, :paths], axis=1, output_type=tf.int32)
        choice = tf.where(tf.reduce_any(allowed, axis=1), constrained, unconstrained)
        return tf.gather(texts, choice, batch_dims=1)
