"""Prediction over files: a finished run's model over a file or a folder, streamed in batches.

Each pipeline package has a ``files`` module that says how its inputs are read and its
predictions written:

- ``OUTPUT``: ``"table"`` (rows, written as CSV or JSON Lines by the output's extension) or
  ``"folder"`` (one output file per input item).
- ``read_items(path, config, info)``: the input as a stream of ``Item`` and ``BadItem``,
  holding in memory only what is being read (never the whole file). A module that declares
  ``OPTIONS`` (names of pipeline-specific flags, e.g. forecasting's ``rolling``) gets them as
  keyword arguments.
- ``predict_items(model, items, config, info)``: one batch's predictions, one per item: for a
  table, the row of the prediction's columns (or a list of rows, where one item gives several,
  e.g. a forecast's steps); for a folder, ``{"file_name": str, "content": bytes}``. It raises
  UserError for an item the model cannot take.

A bad item either stops the prediction with an error naming its row or path
(``on_error="fail"``) or is skipped and listed in ``OUTPUT.skipped.csv`` (``on_error="skip"``).
Everything is written under a hidden temporary name beside the output and renamed into place
at the end, so an interrupted prediction leaves no output that looks complete.
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import json
import math
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from pipelines import progress, rundir
from pipelines.errors import UserError
from pipelines.progress import log
from pipelines.tables import MAX_FIELD_CHARS

ON_ERROR = ("fail", "skip")  # stop at the first bad item, or skip it and go on
MAX_BATCH_SIZE = 8192  # items per batch: the bound on what is held in memory at once
MAX_LINE_BYTES = 1_000_000  # one line of a line-based input (JSON Lines, texts)
TABLE_FORMATS = {".csv": "csv", ".jsonl": "jsonl"}  # a table output's extension -> format
SKIPPED_SUFFIX = ".skipped.csv"  # OUTPUT + this: the side file listing skipped items
KEPT_PREFIX = "input_"  # put before a kept input column named like a prediction column
# The lone surrogates that stand for bytes that are not UTF-8 (``errors="surrogateescape"``).
_UNDECODABLE = re.compile("[\udc80-\udcff]")


@dataclasses.dataclass
class Item:
    """One input to predict.

    Attributes:
        key: where it is in the input: a row (``line 17``) or a file's path.
        value: what the model takes (a text, a window of values, decoded audio).
        kept: the input's columns written back beside the prediction (table outputs).
    """

    key: str
    value: Any
    kept: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class BadItem:
    """An input that cannot be predicted: its row or path, and why."""

    key: str
    reason: str


class _ItemWriteError(Exception):
    """A prediction that cannot be written (a name taken twice, a column the table lacks)."""


def predict_files(
    run_dir: str | Path,
    input_path: str | Path,
    output_path: str | Path,
    *,
    on_error: str = "fail",
    overwrite: bool = False,
    batch_size: int = 256,
    options: dict[str, Any] | None = None,
    settings: list[str] | None = None,
) -> dict[str, Any]:
    """Predict every item of ``input_path`` with a finished run's model into ``output_path``.

    Args:
        run_dir: a finished run directory (a ``.partial`` one is refused).
        input_path: the file or folder to predict over, in the pipeline's input format.
        output_path: where the predictions go: a ``.csv`` or ``.jsonl`` file for a table,
            a folder for a folder output. An existing one is refused unless ``overwrite``.
        on_error: ``fail`` stops at the first bad item with an error naming it; ``skip``
            goes on and lists skipped items (key, reason) in ``OUTPUT.skipped.csv``.
        overwrite: replace an existing output (and its list of skipped items).
        batch_size: items predicted together; memory is bounded by it, not by the input.
        options: pipeline-specific flags (forecasting: ``rolling``, ``anomalies``); a flag
            that is set and that the pipeline does not take is an error. A pipeline's
            ``files`` module may name files it writes beside the output for a flag
            (``extra_outputs``, e.g. the anomaly plot); those are refused like the output
            when they exist, and written after it (``write_extra_outputs``).
        settings: ``KEY=VALUE`` settings over the run's for reading the input (e.g.
            ``text_column=review``).

    Returns:
        ``{"predicted": items predicted, "skipped": items skipped, "output": path,
        "skipped_file": path or None}``.
    """
    _check_arguments(on_error, batch_size)
    run = rundir.finished_run(Path(run_dir))
    from pipelines import registry, runner

    pipeline = registry.load_pipeline(runner.resolved_from_run(run).name)
    files = pipeline.files
    if files is None:
        raise UserError(f"{pipeline.name} has no prediction over files")
    chosen = _chosen_options(files, options or {}, pipeline.name)
    source, target = Path(input_path), Path(output_path)
    output_format = _check_paths(source, target, files.OUTPUT, overwrite)
    extra_outputs = getattr(files, "extra_outputs", lambda target, **chosen: [])(target, **chosen)
    for path in extra_outputs:
        if (path.exists() or path.is_symlink()) and not overwrite:
            raise UserError(f"{path} already exists; add --overwrite to replace it")
    _, resolved, info, model = runner.load_run(str(run))
    config = resolved.config.with_overrides(settings) if settings else resolved.config

    def predict(items: list[Item]) -> list[Any]:
        return files.predict_items(model, items, config, info)

    items = files.read_items(source, config, info, **chosen)
    counts = _predict_into(
        items, predict, source, target, output_format, on_error, batch_size, pipeline.name
    )
    if extra_outputs:
        files.write_extra_outputs(target, output_format, info, **chosen)
    skipped_file = skipped_path(target) if counts["skipped"] else None
    log(
        f"predicted {counts['predicted']:,} item(s) into {target}"
        + (f"; skipped {counts['skipped']:,}, listed in {skipped_file}" if skipped_file else "")
    )
    return {**counts, "output": str(target), "skipped_file": skipped_file and str(skipped_file)}


def skipped_path(output: Path) -> Path:
    """The side file that lists the items a prediction into ``output`` skipped."""
    return output.with_name(output.name + SKIPPED_SUFFIX)


def _check_arguments(on_error: str, batch_size: int) -> None:
    if on_error not in ON_ERROR:
        raise UserError(f"--on-error must be one of {', '.join(ON_ERROR)}, got {on_error!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int):
        raise UserError(f"--batch-size must be a whole number, got {batch_size!r}")
    if not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise UserError(f"--batch-size must be from 1 to {MAX_BATCH_SIZE:,}, got {batch_size}")


def _chosen_options(files, options: dict[str, Any], pipeline: str) -> dict[str, Any]:
    """The options the pipeline's ``files`` module declares; UserError for one set that it
    does not take (unset ones are ignored: the command line passes every flag)."""
    declared = tuple(getattr(files, "OPTIONS", ()))
    for name, value in options.items():
        if name not in declared and value:
            raise UserError(f"--{name.replace('_', '-')} is not an option of {pipeline}")
    return {name: options[name] for name in declared if name in options}


def _check_paths(source: Path, target: Path, output: str, overwrite: bool) -> str | None:
    """Check the input exists and the output may be written; the table format (or None)."""
    if not (source.is_file() or source.is_dir()):
        raise UserError(f"input not found: {source}")
    output_format = None
    if output == "table":
        output_format = TABLE_FORMATS.get(target.suffix.lower())
        if output_format is None:
            raise UserError(
                f"output {target}: name it {' or '.join('*' + s for s in TABLE_FORMATS)} "
                "(CSV or JSON Lines)"
            )
    if target.resolve() == source.resolve():
        raise UserError(f"output {target} is the input; choose another path")
    if source.is_dir() and target.resolve().is_relative_to(source.resolve()):
        raise UserError(f"output {target} is inside the input folder {source}; choose another")
    for path in (target, skipped_path(target)):
        if (path.exists() or path.is_symlink()) and not overwrite:
            raise UserError(f"{path} already exists; add --overwrite to replace it")
    if target.parent.exists() and not target.parent.is_dir():
        raise UserError(f"output {target}: {target.parent} is not a folder")
    return output_format


def _predict_into(
    items: Iterable[Item | BadItem],
    predict: Callable[[list[Item]], list[Any]],
    source: Path,
    target: Path,
    output_format: str | None,
    on_error: str,
    batch_size: int,
    name: str,
) -> dict[str, int]:
    """Stream ``items`` through ``predict`` in batches into temporary outputs, then move them
    into place; on any error or interruption the temporary outputs are removed."""
    target.parent.mkdir(parents=True, exist_ok=True)
    writer = _FolderWriter(target) if output_format is None else _TableWriter(target, output_format)
    skipped = _SkippedList(skipped_path(target))
    bar = progress.bar(description=f"{name}: predicting")
    try:
        with bar:
            stream = _Stream(predict, writer, skipped, on_error, source, bar)
            stream.run(items, batch_size)
        if stream.predicted + skipped.count == 0:
            raise UserError(f"{source}: nothing to predict (no rows or files)")
        writer.close()
        skipped.close()
        writer.commit()
        skipped.commit()
    except BaseException:
        writer.discard()
        skipped.discard()
        raise
    return {"predicted": stream.predicted, "skipped": skipped.count}


@dataclasses.dataclass
class _Stream:
    """Batches items, predicts them, writes the predictions and deals with bad items."""

    predict: Callable[[list[Item]], list[Any]]
    writer: _TableWriter | _FolderWriter
    skipped: _SkippedList
    on_error: str
    source: Path
    bar: tqdm
    predicted: int = 0

    def run(self, items: Iterable[Item | BadItem], batch_size: int) -> None:
        """Predict every item, ``batch_size`` at a time."""
        batch: list[Item] = []
        for item in items:
            if isinstance(item, BadItem):
                self.bad(item.key, item.reason)
                continue
            batch.append(item)
            if len(batch) == batch_size:
                self.predict_batch(batch)
                batch = []
        if batch:
            self.predict_batch(batch)

    def predict_batch(self, batch: list[Item]) -> None:
        """Predict and write one batch; a batch the model refuses is predicted item by item,
        to find the bad one(s)."""
        try:
            predictions = self.predict(batch)
        except UserError as error:
            if len(batch) == 1:
                self.bad(batch[0].key, str(error))
                return
            for item in batch:
                self.predict_batch([item])
            return
        if len(predictions) != len(batch):
            raise RuntimeError(f"predict_items gave {len(predictions)} for {len(batch)} items")
        for item, prediction in zip(batch, predictions, strict=True):
            try:
                self.writer.write(item, prediction)
            except _ItemWriteError as problem:
                self.bad(item.key, str(problem))
                continue
            self.predicted += 1
            self.bar.update(1)

    def bad(self, key: str, reason: str) -> None:
        """Stop with an error naming the item, or list it as skipped."""
        if self.on_error == "fail":
            raise UserError(
                f"{where(self.source, key)}: {reason} (--on-error skip skips it and goes on)"
            )
        self.skipped.add(key, reason)
        self.bar.update(1)


def where(source: Path, key: str) -> str:
    """How a message names an item: its path, or the input file and its row."""
    return key if key.startswith(str(source)) else f"{source}, {key}"


# === Writing ===


def _temporary_beside(target: Path, what: str) -> Path:
    """A hidden name beside ``target`` that no one else uses."""
    return target.with_name(f".{target.name}.{what}-{os.getpid()}-{secrets.token_hex(4)}")


def _move_into_place(temporary: Path, target: Path) -> None:
    """Rename ``temporary`` to ``target``, replacing what is there (a file or a folder)."""
    if target.is_dir() and not target.is_symlink():
        old = _temporary_beside(target, "old")
        os.rename(target, old)
        os.rename(temporary, target)
        shutil.rmtree(old)
        return
    if temporary.is_dir() and (target.exists() or target.is_symlink()):
        target.unlink()
    os.replace(temporary, target)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


class _TableWriter:
    """Rows into a temporary CSV or JSON Lines file beside the output.

    A row is the item's kept columns, then the prediction's columns; a kept column named
    like a prediction column is written as ``input_NAME``. A CSV has the first row's
    columns: a later row with another column is a bad item (JSON Lines takes any)."""

    def __init__(self, target: Path, output_format: str):
        self.target, self.format = target, output_format
        self.temporary = _temporary_beside(target, "partial")
        self.stream = self.temporary.open("x", encoding="utf-8", newline="")
        self.csv = csv.writer(self.stream) if output_format == "csv" else None
        self.columns: list[str] | None = None

    def write(self, item: Item, prediction: dict[str, Any] | list[dict[str, Any]]) -> None:
        """Write the row(s) of one item's prediction."""
        predicted = prediction if isinstance(prediction, list) else [prediction]
        rows = [_with_kept(item.kept, row) for row in predicted]
        if self.csv is None:
            text = "".join(_json_line(row) + "\n" for row in rows)
        else:
            text = "".join(self._csv_line(row) for row in rows)
        self.stream.write(text)

    def _csv_line(self, row: dict[str, Any]) -> str:
        if self.columns is None:
            self.columns = list(row)
            self.csv.writerow(self.columns)
        extra = [column for column in row if column not in self.columns]
        if extra:
            raise _ItemWriteError(
                f"has column {extra[0]!r} that the first row has not (a CSV output has the "
                "first row's columns; a .jsonl output takes any)"
            )
        line = _LineBuffer()
        csv.writer(line).writerow([_cell(row.get(column)) for column in self.columns])
        return line.text

    def close(self) -> None:
        """Flush and close the temporary file."""
        self.stream.close()

    def commit(self) -> None:
        """Move the finished file into place."""
        _move_into_place(self.temporary, self.target)

    def discard(self) -> None:
        """Remove the temporary file."""
        self.stream.close()
        _remove(self.temporary)


class _LineBuffer:
    """What ``csv.writer`` writes, kept as text (to write a row or nothing at all)."""

    def __init__(self):
        self.text = ""

    def write(self, text: str) -> None:
        self.text += text


class _FolderWriter:
    """One file per item into a temporary folder beside the output."""

    def __init__(self, target: Path):
        self.target = target
        self.temporary = _temporary_beside(target, "partial")
        self.temporary.mkdir()
        self.names: set[str] = set()

    def write(self, item: Item, prediction: dict[str, Any]) -> None:
        """Write one item's output file; a name that is no plain file name, or one another
        item already wrote, is a bad item."""
        name, content = prediction["file_name"], prediction["content"]
        if not isinstance(content, bytes):
            raise TypeError(f"predict_items gave {type(content).__name__} content, not bytes")
        if not name or name in (".", "..") or name.startswith(".") or set(name) & set("/\\\0"):
            raise _ItemWriteError(f"cannot write an output file named {name!r}")
        if name in self.names:
            raise _ItemWriteError(f"another input already gave the output file {name!r}")
        (self.temporary / name).write_bytes(content)
        self.names.add(name)

    def close(self) -> None:
        """Nothing is left open."""

    def commit(self) -> None:
        """Move the finished folder into place."""
        _move_into_place(self.temporary, self.target)

    def discard(self) -> None:
        """Remove the temporary folder."""
        _remove(self.temporary)


class _SkippedList:
    """The skipped items (key, reason), streamed into a temporary CSV beside the side file.

    The side file is written only when an item was skipped; a stale one (from an output
    replaced with overwrite) is removed when the new output is in place."""

    def __init__(self, path: Path):
        self.path = path
        self.temporary = _temporary_beside(path, "partial")
        self.stream = None
        self.count = 0

    def add(self, key: str, reason: str) -> None:
        """List one skipped item."""
        if self.stream is None:
            self.stream = self.temporary.open("x", encoding="utf-8", newline="")
            self.writer = csv.writer(self.stream)
            self.writer.writerow(["key", "reason"])
        self.writer.writerow([key, reason])
        self.count += 1

    def close(self) -> None:
        """Flush and close the temporary file."""
        if self.stream is not None:
            self.stream.close()

    def commit(self) -> None:
        """Move the list into place, or remove a stale one when nothing was skipped."""
        if self.count:
            _move_into_place(self.temporary, self.path)
        elif self.path.is_file() or self.path.is_symlink():
            self.path.unlink()

    def discard(self) -> None:
        """Remove the temporary file."""
        self.close()
        _remove(self.temporary)


def _with_kept(kept: dict[str, Any], prediction: dict[str, Any]) -> dict[str, Any]:
    """The kept input columns, then the prediction's; a kept column named like a prediction
    column gets ``KEPT_PREFIX`` (as often as it takes to be unique)."""
    taken = set(kept) | set(prediction)
    row: dict[str, Any] = {}
    for name, value in kept.items():
        if name in prediction:
            renamed = KEPT_PREFIX + name
            while renamed in taken:
                renamed = KEPT_PREFIX + renamed
            taken.add(renamed)
            name = renamed
        row[name] = value
    row.update(prediction)
    return row


def _cell(value: Any) -> str:
    """A value as a CSV cell: text as it is, numbers plainly, other values as JSON."""
    value = _plain(value)
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | dict | list):
        return json.dumps(value, ensure_ascii=False, allow_nan=False)
    return str(value)


def _json_line(row: dict[str, Any]) -> str:
    return json.dumps(row, ensure_ascii=False, allow_nan=False, default=_plain)


def _plain(value: Any) -> Any:
    """numpy values as Python ones (JSON and CSV take those)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def printed_float(value: Any) -> float:
    """A float32 result as the Python float that prints as its shortest decimal."""
    value = np.float32(value)
    return float(str(value)) if math.isfinite(value) else float(value)


# === Reading, for the pipelines' ``read_items`` ===


def read_lines(
    path: Path, max_bytes: int = MAX_LINE_BYTES, encoding: str = "utf-8"
) -> Iterator[tuple[int, str] | BadItem]:
    """Each line of a text file as ``(line number, text without the line end)``, or a BadItem
    for a line that is longer than ``max_bytes``, not text in ``encoding`` (UTF-8 unless the
    run's ``encoding`` setting says otherwise) or holds a NUL byte.

    Reads one line at a time and never more than ``max_bytes`` of one. Line breaks are found
    in the bytes, so ``encoding`` must be one that keeps ``\\n`` a single byte (every choice
    of the ``encoding`` setting but UTF-16, which is refused here)."""
    _check_line_encoding(path, encoding)
    with path.open("rb") as stream:
        number = 0
        while True:
            raw = stream.readline(max_bytes + 2)
            if not raw:
                return
            number += 1
            if number == 1:
                raw = raw.removeprefix(codecs.BOM_UTF8)
            whole = raw.endswith(b"\n") or len(raw) < max_bytes + 2
            line = raw.removesuffix(b"\n").removesuffix(b"\r")
            if not whole:
                _skip_rest_of_line(stream, max_bytes)
            if not whole or len(line) > max_bytes:
                yield BadItem(f"line {number}", f"longer than {max_bytes:,} bytes")
                continue
            try:
                text = line.decode(encoding)
            except UnicodeDecodeError as error:
                yield BadItem(
                    f"line {number}",
                    f"not {encoding} text (byte {error.start} of the line); "
                    "set --set encoding=... to its encoding",
                )
                continue
            if "\x00" in text:
                yield BadItem(f"line {number}", "holds a NUL byte (not text)")
                continue
            yield number, text


def _check_line_encoding(path: Path, encoding: str) -> None:
    if "\n".encode(encoding) != b"\n":
        raise UserError(
            f"{path}: encoding {encoding!r} is not read line by line here; "
            "convert the file to UTF-8 (iconv -f UTF-16 -t UTF-8)"
        )


def _skip_rest_of_line(stream, chunk: int) -> None:
    """Read past the end of an over-long line, a chunk at a time."""
    while True:
        rest = stream.readline(chunk)
        if not rest or rest.endswith(b"\n"):
            return


def read_json_lines(
    path: Path, max_bytes: int = MAX_LINE_BYTES, encoding: str = "utf-8"
) -> Iterator[tuple[int, dict[str, Any]] | BadItem]:
    """Each non-blank line of a JSON Lines file as ``(line number, object)``, or a BadItem for
    a line that is not one JSON object (``NaN`` and ``Infinity`` are not JSON)."""
    for entry in read_lines(path, max_bytes, encoding):
        if isinstance(entry, BadItem):
            yield entry
            continue
        number, text = entry
        if not text.strip():
            continue
        try:
            value = json.loads(text, parse_constant=_not_json)
        except (ValueError, RecursionError) as error:
            reason = "too deeply nested" if isinstance(error, RecursionError) else str(error)
            yield BadItem(f"line {number}", f"not valid JSON ({reason})")
            continue
        if not isinstance(value, dict):
            yield BadItem(f"line {number}", f"a JSON {type(value).__name__}, not an object")
            continue
        yield number, value


def _not_json(name: str):
    raise ValueError(f"{name} is not a JSON value")


def read_table_rows(
    path: Path, delimiter: str, encoding: str = "utf-8"
) -> tuple[list[str], Iterator[tuple[int, dict[str, str]] | BadItem]]:
    """A CSV/TSV file's header, and its rows one at a time as ``(line, {column: text})``.

    The rules of ``pipelines.tables`` (``encoding``, UTF-8 by default; a header of distinct
    names; blank lines ignored), but streamed: a row with the wrong number of fields, bytes
    that are not in the encoding, a NUL byte or a cell that cannot be parsed is a BadItem
    naming its line, and reading goes on at the next line. UserError for a missing or empty file."""
    rows = _table_rows(path, delimiter, encoding)
    header = next(rows)
    return header, rows


def _table_rows(path: Path, delimiter: str, encoding: str):
    """The header, then each row or BadItem (see ``read_table_rows``)."""
    kind = "TSV" if delimiter == "\t" else "CSV"
    codec = "utf-8-sig" if encoding == "utf-8" else encoding
    with path.open(encoding=codec, errors="surrogateescape", newline="") as stream:
        reader = csv.reader(
            stream,
            delimiter=delimiter,
            quoting=csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL,
            strict=delimiter != "\t",
        )
        header: list[str] | None = None
        start = 1
        previous_limit = csv.field_size_limit(MAX_FIELD_CHARS)
        try:
            while True:
                try:
                    fields = next(reader)
                except StopIteration:
                    break
                except csv.Error as error:
                    line, start = start, reader.line_num + 1
                    if header is None:
                        raise UserError(
                            f"{path}, line {line}: cannot parse as {kind}: {_csv_reason(error)}"
                        ) from None
                    yield BadItem(f"line {line}", f"cannot parse as {kind}: {_csv_reason(error)}")
                    continue
                line, start = start, reader.line_num + 1
                if not fields or (len(fields) == 1 and not fields[0].strip()):
                    continue  # a blank line
                if header is None:
                    header = _header(fields, path, kind, encoding)
                    yield header
                    continue
                yield _row(header, fields, line, encoding)
        finally:
            csv.field_size_limit(previous_limit)
    if header is None:
        raise UserError(f"{path}: the file is empty")


def _header(fields: list[str], path: Path, kind: str, encoding: str) -> list[str]:
    if any(_undecodable(field) or "\x00" in field for field in fields):
        raise UserError(
            f"{path}, line 1: the header is not {encoding} {kind} text; "
            "set --set encoding=... to the file's encoding"
        )
    names = [field.strip() or f"Unnamed: {i}" for i, field in enumerate(fields)]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise UserError(f"{path}, line 1: the header names column {twice[0]!r} twice")
    return names


def _row(
    header: list[str], fields: list[str], line: int, encoding: str
) -> tuple[int, dict[str, str]] | BadItem:
    if len(fields) != len(header):
        what = "a truncated or short row" if len(fields) < len(header) else "extra fields"
        return BadItem(
            f"line {line}", f"{len(fields)} field(s) where the header has {len(header)} ({what})"
        )
    if any(_undecodable(field) for field in fields):
        return BadItem(f"line {line}", f"not {encoding} text")
    if any("\x00" in field for field in fields):
        return BadItem(f"line {line}", "holds a NUL byte (not text)")
    return line, dict(zip(header, fields, strict=True))


def _undecodable(text: str) -> bool:
    return _UNDECODABLE.search(text) is not None


def _csv_reason(error: csv.Error) -> str:
    reason = str(error)
    if "field larger than field limit" in reason:
        return f"a cell longer than {MAX_FIELD_CHARS:,} characters"
    if "unexpected end of data" in reason:
        return "the file ends inside a quoted cell (truncated?)"
    return reason
