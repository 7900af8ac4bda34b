"""Data sources declared once per pipeline: ``--data`` parsing, its help and its docs.

A pipeline's ``config.py`` declares its sources as a ``DataSources`` of ``DataSource``
entries; each names the function of the pipeline's ``data`` module that loads it. The
``--data`` parser, the data section of ``run NAME --help`` and the reference page all
read that declaration. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path
from typing import Literal

from pipelines.errors import UserError

ArgumentKind = Literal["none", "file", "folder", "name", "choice"]


@dataclasses.dataclass(frozen=True)
class DataSource:
    """One kind of ``--data`` spec.

    Args:
        kind: the part before ``:`` (``builtin``, ``csv``, ``tfds``, ...).
        loader: the ``data`` module's function ``loader(config, argument, seed) -> Splits``.
        help: what the source is, where it comes from and whether it is real or generated.
        argument: what follows ``kind:``; ``none`` for no argument, ``file`` or ``folder``
            for a path that must exist, ``name`` for free text, ``choice`` for one of
            ``choices``.
        choices: the allowed arguments of a ``choice`` source.
        optional: whether the argument may be left out (``builtin`` and ``builtin:stock``).
        settings: settings that shape how the source is read (listed in the docs).
        test_loader: the ``data`` module's ``test_loader(config, argument, info)``
            giving every example as test data for ``evaluate --data``, if supported.
    """

    kind: str
    loader: str
    help: str
    argument: ArgumentKind = "none"
    choices: tuple[str, ...] = ()
    optional: bool = False
    settings: tuple[str, ...] = ()
    test_loader: str | None = None

    @property
    def form(self) -> str:
        """How the spec is written: ``csv:PATH``, ``builtin[:weather|stock]``."""
        placeholder = {
            "none": "",
            "file": "PATH",
            "folder": "DIR",
            "name": "NAME",
            "choice": "|".join(self.choices),
        }[self.argument]
        if not placeholder:
            return self.kind
        return f"{self.kind}[:{placeholder}]" if self.optional else f"{self.kind}:{placeholder}"


@dataclasses.dataclass(frozen=True)
class DataSpec:
    """A parsed ``--data`` value: its source and the argument after ``kind:``."""

    source: DataSource
    argument: str
    text: str


class DataSources:
    """The registry of one pipeline's data sources, with an optional note on all of them."""

    def __init__(self, pipeline: str, *sources: DataSource, note: str = ""):
        self.pipeline = pipeline
        self.sources = {source.kind: source for source in sources}
        self.note = note

    def __iter__(self):
        return iter(self.sources.values())

    def parse(self, text: str) -> DataSpec:
        """The source and argument of ``text``; UserError naming what is wrong."""
        kind, sep, argument = text.strip().partition(":")
        source = self.sources.get(kind)
        if source is None:
            raise UserError(
                f"--data {text!r}: unknown kind {kind!r} for {self.pipeline}; use one of "
                f"{', '.join(s.form for s in self)}"
            )
        if not argument and not source.optional and source.argument != "none":
            raise UserError(f"--data {text!r}: {source.form} needs its argument after ':'")
        if argument and source.argument == "none" or sep and not argument:
            raise UserError(f"--data {text!r}: write it as {source.form}")
        if argument and source.argument == "choice" and argument not in source.choices:
            raise UserError(
                f"--data {text!r}: {argument!r} is not one of {', '.join(source.choices)}"
            )
        if argument and source.argument in ("file", "folder"):
            _check_path(text, Path(argument), source.argument)
        return DataSpec(source, argument, text)

    def help_text(self) -> str:
        """The data section of ``run NAME --help``."""
        lines = ["data (--data SPEC):"]
        for source in self:
            body = source.help
            if source.settings:
                body += f" Settings: {', '.join(source.settings)}."
            wrapped = textwrap.wrap(body, 76)
            form = source.form
            if len(form) < 18:
                lines.append(f"  {form:<18}{wrapped[0]}")
                wrapped = wrapped[1:]
            else:
                lines.append(f"  {form}")
            lines += [f"  {'':<18}{line}" for line in wrapped]
        lines += textwrap.wrap(self.note, 94, initial_indent="  ", subsequent_indent="  ")
        return "\n".join(lines)

    def markdown(self) -> str:
        """A Markdown table of the sources, for the reference page."""
        rows = ["| `--data` | what | settings |", "| --- | --- | --- |"]
        for source in self:
            settings = ", ".join(f"`{s}`" for s in source.settings)
            rows.append(markdown_row([f"`{source.form}`", source.help, settings]))
        return "\n".join(rows) + (f"\n\n{self.note}" if self.note else "")


def markdown_row(cells: list[str]) -> str:
    """A Markdown table row, with ``|`` and ``<`` in the cells escaped."""
    escaped = (cell.replace("|", "\\|").replace("<", "&lt;") for cell in cells)
    return "| " + " | ".join(escaped) + " |"


def _check_path(text: str, path: Path, expected: str) -> None:
    if not path.exists():
        raise UserError(f"--data {text!r}: {path} does not exist")
    if expected == "file" and not path.is_file():
        raise UserError(f"--data {text!r}: {path} is not a file")
    if expected == "folder" and not path.is_dir():
        raise UserError(f"--data {text!r}: {path} is not a folder")
