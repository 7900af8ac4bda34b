"""Music over files: a folder of MIDI or MusicXML primers in, one continued MIDI file per
primer out in the output folder (``python -m pipelines predict RUN_DIR --input FOLDER
--output FOLDER``).

As ``predict`` does: a file's first ``PRIMER_STEPS`` steps are the primer and
``CONTINUATION_STEPS`` steps are sampled after it (seed 0, temperature 1), with the same
generation code. Each primer is continued alone, so that its continuation is the same
whatever else is in the folder and whatever the batch size.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.errors import UserError
from pipelines.file_inputs import TracedOnce, input_files, reason_of
from pipelines.music import data, model
from pipelines.music import pipeline as music  # PRIMER_STEPS, CONTINUATION_STEPS
from pipelines.music.config import MusicConfig
from pipelines.music.data import MusicInfo
from pipelines.predict_files import BadItem, Item

OUTPUT = "folder"
PRIMER_SUFFIXES = data.MIDI_SUFFIXES + data.MUSICXML_SUFFIXES
CONTINUED_SUFFIX = ".continued.mid"  # replaces a primer's suffix in its output file's name
# The output folder is flat: a primer in a subfolder is written as SUBFOLDER__NAME.continued.mid.
FOLDER_JOIN = "__"

_sampler = TracedOnce(model.sampler)


@dataclasses.dataclass(frozen=True)
class Primer:
    """A primer's first steps (int32 ``[steps, voices]`` tokens) and its output file's name."""

    file_name: str
    steps: np.ndarray


def read_items(path: Path, config: MusicConfig, info: MusicInfo) -> Iterator[Item | BadItem]:
    """The primers of a folder, walked in sorted order, or of one file (key: the path).

    An output file is named after its primer's path in the folder, subfolders joined with
    ``__``, the suffix replaced by ``.continued.mid`` (kept before it where two primers
    differ only by suffix)."""
    if info.kind == "frame":
        raise UserError("predict works with token-model runs (builtin, midi:, musicxml:)")
    root = path if path.is_dir() else path.parent
    names: set[str] = set()
    for file, reason in input_files(path, PRIMER_SUFFIXES, "MIDI or MusicXML files"):
        if reason:
            yield BadItem(str(file), reason)
            continue
        try:
            steps = read_primer(file, info)
        except UserError as err:
            yield BadItem(str(file), reason_of(err, file))
            continue
        yield Item(str(file), Primer(_output_name(file.relative_to(root), names), steps), {})


def predict_items(
    keras_model, items: list[Item], config: MusicConfig, info: MusicInfo
) -> list[dict[str, Any]]:
    """``{"file_name", "content"}`` per primer: the primer and its sampled continuation as
    the bytes of a MIDI file."""
    sample = _sampler(keras_model, info)
    out = []
    for item in items:
        primer = item.value.steps
        tokens = sample(primer.reshape(1, -1), music.CONTINUATION_STEPS)[0]
        whole = np.concatenate([primer, data.tokens_to_steps(tokens)])
        out.append({"file_name": item.value.file_name, "content": midi_bytes(whole, info)})
    return out


def read_primer(path: Path, info: MusicInfo) -> np.ndarray:
    """The first ``music.PRIMER_STEPS`` steps of a MIDI or MusicXML file; UserError naming it."""
    steps = data.notes_to_steps(data.read_notes(path), info.steps_per_quarter, str(path))
    if not len(steps):
        raise UserError(f"{path}: no notes on the piano's {info.keys} keys")
    return steps[: music.PRIMER_STEPS]


def midi_bytes(steps: np.ndarray, info: MusicInfo) -> bytes:
    """``[steps, voices]`` tokens as a MIDI file's bytes (``data.write_midi``)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "piece.mid"
        data.write_midi(data.steps_to_notes(steps, info.steps_per_quarter), path)
        return path.read_bytes()


def _output_name(relative: Path, taken: set[str]) -> str:
    """A flat file name for the primer at ``relative``: its folders and name joined by
    ``FOLDER_JOIN``, the suffix replaced by ``CONTINUED_SUFFIX``; where ``taken`` holds that
    name, the suffix is kept before it (and a number added, if need be). The name is added
    to ``taken``."""
    name = FOLDER_JOIN.join(relative.with_suffix("").parts) + CONTINUED_SUFFIX
    number = 1
    while name in taken:
        number += 1
        whole = FOLDER_JOIN.join(relative.parts)
        name = whole + ("" if number == 2 else f"-{number}") + CONTINUED_SUFFIX
    taken.add(name)
    return name
