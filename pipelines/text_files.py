"""Reading a user's text file a bounded line at a time, in a declared encoding.

Every text input of the loaders (CSV/TSV tables, sentence pairs, metadata) goes through
``bounded_lines``: the file is decoded as it is read (UTF-8 unless the pipeline's
``encoding`` setting says otherwise; a UTF-8 byte-order mark is dropped), a line longer
than ``MAX_LINE_CHARS`` is refused before it is read whole, and a byte that is not valid in
the encoding, or a NUL, is an error naming the file, the line and the byte offset.

Imports no TensorFlow.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from pathlib import Path
from typing import Literal, get_args

from pipelines.errors import UserError

# Encodings the pipelines' `encoding` setting accepts (Python codec names).
TextEncoding = Literal["utf-8", "utf-16", "latin-1", "cp1252", "ascii"]
ENCODINGS = get_args(TextEncoding)
DEFAULT_ENCODING = "utf-8"
# One line of a text file, in characters: a longer one (a file with no line breaks, say)
# is refused after reading this much of it, never read whole.
MAX_LINE_CHARS = 4_000_000
READ_CHUNK_BYTES = 1 << 16
ENCODING_HINT = "pass --set encoding=latin-1 if that is its encoding"


def bounded_lines(
    path: Path,
    encoding: str = DEFAULT_ENCODING,
    what: str = "a text file",
    hint: str = ENCODING_HINT,
) -> Iterator[str]:
    """The lines of ``path`` with their line endings (``\\n``, ``\\r\\n`` or ``\\r``).

    UserError naming the file and line for an over-long line, a NUL byte, or a byte that is
    not ``encoding`` (with its offset and ``hint``).
    """
    number = 0
    with path.open(encoding=_codec(encoding), errors="strict", newline="") as stream:
        while True:
            try:
                line = stream.readline(MAX_LINE_CHARS + 1)
            except UnicodeDecodeError:
                raise undecodable(path, encoding, hint) from None
            if not line:
                return
            number += 1
            if len(line) > MAX_LINE_CHARS:
                raise UserError(
                    f"{path}, line {number}: longer than {MAX_LINE_CHARS:,} characters; "
                    f"not read further (is it {what}?)"
                )
            if "\x00" in line:
                raise UserError(f"{path}: not {what} (NUL byte at line {number})")
            yield line


def read_text(
    path: Path, encoding: str = DEFAULT_ENCODING, what: str = "a text file", max_chars: int = 0
) -> str:
    """The whole text of ``path`` (see ``bounded_lines``); ``max_chars`` > 0 bounds it."""
    parts: list[str] = []
    size = 0
    for line in bounded_lines(path, encoding, what):
        size += len(line)
        if max_chars and size > max_chars:
            raise UserError(f"{path}: more than {max_chars:,} characters; not read further")
        parts.append(line)
    return "".join(parts)


def undecodable(path: Path, encoding: str, hint: str = ENCODING_HINT) -> UserError:
    """The error for a file that is not ``encoding``: its first bad byte's line and offset."""
    offset, line, byte = first_bad_byte(path, encoding)
    name = "UTF-8" if _codec(encoding) == "utf-8-sig" else encoding
    shown = f" (0x{byte:02x})" if byte is not None else ""
    tip = f"; {hint}" if hint and name == "UTF-8" else ""
    if tip and _starts_with_utf16_mark(path):
        tip = "; it starts with a UTF-16 byte-order mark: pass --set encoding=utf-16"
    return UserError(
        f"{path}: not {name} text (bad byte at line {line}): byte offset {offset:,}{shown}{tip}"
    )


def first_bad_byte(path: Path, encoding: str) -> tuple[int, int, int | None]:
    """``(offset, line, byte)`` of the first byte of ``path`` that ``encoding`` rejects,
    found a chunk at a time; the file's length when it only ends mid-character."""
    codec = _codec(encoding)
    # A UTF-8 byte-order mark is valid UTF-8: scanning as plain UTF-8 keeps offsets exact.
    decoder = codecs.getincrementaldecoder("utf-8" if codec == "utf-8-sig" else codec)()
    offset, lines = 0, 0
    with path.open("rb") as stream:
        while chunk := stream.read(READ_CHUNK_BYTES):
            pending = len(decoder.getstate()[0])
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as error:
                start = max(error.start - pending, 0)
                lines += chunk[:start].count(b"\n")
                return offset + start, lines + 1, chunk[start] if start < len(chunk) else None
            offset += len(chunk)
            lines += chunk.count(b"\n")
    unfinished = decoder.getstate()[0]  # the file ends inside a character
    return offset - len(unfinished), lines + 1, unfinished[0] if unfinished else None


def _starts_with_utf16_mark(path: Path) -> bool:
    with path.open("rb") as stream:
        return stream.read(2) in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def _codec(encoding: str) -> str:
    """The codec that reads ``encoding``: UTF-8 accepts (and drops) a byte-order mark."""
    name = codecs.lookup(encoding).name
    return "utf-8-sig" if name in ("utf-8", "utf-8-sig") else name
