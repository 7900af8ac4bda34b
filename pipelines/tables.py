"""Reading a user's CSV/TSV file, with an ``error:`` for every way it can be wrong."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd

from pipelines.errors import UserError


def read_table(path: Path, delimiter: str) -> pd.DataFrame:
    """Read a user's CSV/TSV as strings; UserError naming the file for every way it can fail."""
    if not path.is_file():
        raise UserError(f"data file not found: {path}")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise UserError(f"{path}: not UTF-8 text (bad byte at line {line})") from None
    if not text.strip():
        raise UserError(f"{path}: the file is empty")
    try:
        return pd.read_csv(
            io.StringIO(text),
            sep=delimiter,
            dtype=str,
            keep_default_na=False,
            quoting=csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL,
        )
    except pd.errors.ParserError as err:
        raise UserError(
            f"{path}: cannot parse as {'TSV' if delimiter == chr(9) else 'CSV'}: {str(err).strip()}"
        ) from None
