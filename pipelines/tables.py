"""Reading a user's CSV/TSV file, with an ``error:`` for every way it can be wrong.

The rules every pipeline shares: the file is text in the pipeline's ``encoding`` (UTF-8
unless set; a BOM is allowed); the first line is a header of distinct column names; every
other non-blank line has exactly as many fields as the header (a row cut short, e.g. a
truncated file, or a row with an extra field is an error naming its line); columns that the
settings do not name are ignored. The file is read a bounded line at a time
(``pipelines.text_files``), and a table over ``MAX_COLUMNS`` columns or ``MAX_CELLS`` cells
is refused when the reader reaches the limit, before more of it is held.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

from pipelines import progress
from pipelines.errors import UserError
from pipelines.text_files import DEFAULT_ENCODING, bounded_lines

MAX_FIELD_CHARS = 1_000_000  # one cell; a longer one is refused, not read into memory
MAX_COLUMNS = 1_000  # columns of a table's header
# Cells (rows times columns) a table may hold: the rows a reader keeps, as text, before the
# pipeline picks its columns. Enough for a few million rows of a few columns.
MAX_CELLS = 10_000_000


def read_table(path: Path, delimiter: str, encoding: str = DEFAULT_ENCODING) -> pd.DataFrame:
    """Read a user's CSV/TSV as strings; UserError naming the file (and line) for every way
    it can fail. Row ``i`` of the result is line ``i + 2`` of the file when the file has no
    blank lines or multi-line cells; ``line_numbers`` gives the exact line of each row."""
    return read_table_with_lines(path, delimiter, encoding)[0]


def read_text(path: Path, what: str = "a text file", encoding: str = DEFAULT_ENCODING) -> str:
    """A text file's whole text, in ``encoding``; UserError naming the line (and byte offset)
    of a byte that is not in the encoding, a NUL, or an over-long line."""
    return "".join(bounded_lines(path, encoding, what))


def read_table_with_lines(
    path: Path, delimiter: str, encoding: str = DEFAULT_ENCODING
) -> tuple[pd.DataFrame, list[int]]:
    """``read_table`` and, for each row, the line of the file where it starts."""
    kind = "TSV" if delimiter == "\t" else "CSV"
    if not path.is_file():
        raise UserError(f"data file not found: {path}")
    read = progress.bar(
        description=f"reading {path.name}", total=path.stat().st_size, unit="B", scaled=True
    )
    reader = csv.reader(
        _counted(bounded_lines(path, encoding, f"a {kind} text file"), read),
        delimiter=delimiter,
        quoting=csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL,
        strict=delimiter != "\t",
    )
    previous_limit = csv.field_size_limit(MAX_FIELD_CHARS)
    try:
        header, rows, lines = _read_rows(reader, path, kind)
    finally:
        csv.field_size_limit(previous_limit)
        read.close()
    if header is None:
        raise UserError(f"{path}: the file is empty")
    return pd.DataFrame(rows, columns=header, dtype=str), lines


def _counted(lines, bar):
    """``lines``, each one's length in characters (about its bytes) added to ``bar``."""
    for line in lines:
        bar.update(len(line))
        yield line


def _read_rows(reader, path: Path, kind: str):
    """``(header, rows, start line of each row)`` of a csv reader, checked row by row."""
    header: list[str] | None = None
    rows: list[list[str]] = []
    lines: list[int] = []
    start = 1
    while True:
        try:
            fields = next(reader, None)
        except csv.Error as error:
            raise _parse_error(error, path, start, kind) from None
        if fields is None:
            break
        here, start = start, reader.line_num + 1
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            continue  # a blank line
        if header is None:
            header = _header(fields, path)
            max_rows = MAX_CELLS // len(header)
            continue
        if len(fields) != len(header):
            what = "a truncated or short row" if len(fields) < len(header) else "extra fields"
            raise UserError(
                f"{path}, line {here}: {len(fields)} field(s) where the header has "
                f"{len(header)} ({what}; columns: {', '.join(header)})"
            )
        if len(rows) == max_rows:
            raise UserError(
                f"{path}, line {here}: more than {max_rows:,} data rows of {len(header)} "
                f"column(s); a {kind} file may hold {MAX_CELLS:,} cells"
            )
        rows.append(fields)
        lines.append(here)
    return header, rows, lines


def _parse_error(error: csv.Error, path: Path, line: int, kind: str) -> UserError:
    """The error for a record the csv module cannot parse, starting at ``line``."""
    reason = str(error)
    if "field larger than field limit" in reason:
        reason = f"a cell longer than {MAX_FIELD_CHARS:,} characters"
    elif "unexpected end of data" in reason:
        reason = "the file ends inside a quoted cell (truncated?)"
    return UserError(f"{path}, line {line}: cannot parse as {kind}: {reason}")


def _header(fields: list[str], path: Path) -> list[str]:
    if len(fields) > MAX_COLUMNS:
        raise UserError(
            f"{path}, line 1: the header has {len(fields):,} columns; a table may have "
            f"{MAX_COLUMNS:,}"
        )
    names = [f.strip() or f"Unnamed: {i}" for i, f in enumerate(fields)]
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise UserError(f"{path}, line 1: the header names column {name!r} twice")
        seen.add(name)
    return names
