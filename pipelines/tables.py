"""Reading a user's CSV/TSV file, with an ``error:`` for every way it can be wrong.

The rules every pipeline shares: the file is UTF-8 text (a BOM is allowed); the first
line is a header of distinct column names; every other non-blank line has exactly as many
fields as the header (a row cut short, e.g. a truncated file, or a row with an extra field
is an error naming its line); columns that the settings do not name are ignored.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd

from pipelines.errors import UserError

MAX_FIELD_CHARS = 1_000_000  # one cell; a longer one is refused, not read into memory


def read_table(path: Path, delimiter: str) -> pd.DataFrame:
    """Read a user's CSV/TSV as strings; UserError naming the file (and line) for every way
    it can fail. Row ``i`` of the result is line ``i + 2`` of the file when the file has no
    blank lines or multi-line cells; ``line_numbers`` gives the exact line of each row."""
    return read_table_with_lines(path, delimiter)[0]


def read_text(path: Path, what: str = "a text file") -> str:
    """A UTF-8 file's text; UserError naming the line of a byte that is not UTF-8 or a NUL."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise UserError(f"{path}: not UTF-8 text (bad byte at line {line})") from None
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise UserError(f"{path}: not {what} (NUL byte at line {line})")
    return text


def read_table_with_lines(path: Path, delimiter: str) -> tuple[pd.DataFrame, list[int]]:
    """``read_table`` and, for each row, the line of the file where it starts."""
    kind = "TSV" if delimiter == "\t" else "CSV"
    if not path.is_file():
        raise UserError(f"data file not found: {path}")
    text = read_text(path, f"a {kind} text file")
    if not text.strip():
        raise UserError(f"{path}: the file is empty")
    reader = csv.reader(
        io.StringIO(text, newline=""),
        delimiter=delimiter,
        quoting=csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL,
        strict=delimiter != "\t",
    )
    header: list[str] | None = None
    rows: list[list[str]] = []
    lines: list[int] = []
    start = 1
    previous_limit = csv.field_size_limit(MAX_FIELD_CHARS)
    try:
        for fields in reader:
            here, start = start, reader.line_num + 1
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                continue  # a blank line
            if header is None:
                header = _header(fields, path)
                continue
            if len(fields) != len(header):
                what = "a truncated or short row" if len(fields) < len(header) else "extra fields"
                raise UserError(
                    f"{path}, line {here}: {len(fields)} field(s) where the header has "
                    f"{len(header)} ({what}; columns: {', '.join(header)})"
                )
            rows.append(fields)
            lines.append(here)
    except csv.Error as err:
        reason = str(err)
        if "field larger than field limit" in reason:
            reason = f"a cell longer than {MAX_FIELD_CHARS:,} characters"
        elif "unexpected end of data" in reason:
            reason = "the file ends inside a quoted cell (truncated?)"
        raise UserError(f"{path}, line {start}: cannot parse as {kind}: {reason}") from None
    finally:
        csv.field_size_limit(previous_limit)
    if header is None:
        raise UserError(f"{path}: the file is empty")
    return pd.DataFrame(rows, columns=header, dtype=str), lines


def _header(fields: list[str], path: Path) -> list[str]:
    names = [f.strip() or f"Unnamed: {i}" for i, f in enumerate(fields)]
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise UserError(f"{path}, line 1: the header names column {name!r} twice")
        seen.add(name)
    return names
