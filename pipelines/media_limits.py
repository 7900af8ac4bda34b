"""Bounds a media file's header is checked against before its contents are decoded.

A file of a few kilobytes may declare sizes (a sample rate, a channel count, a length, a
resolution, a MIDI resolution or tick count) that would make a decoder allocate gigabytes.
Each loader reads the declared sizes first, with the functions here, and refuses a file over
one of its pipeline's declared limits with a message naming the file, the size and the
limit: ``FILE: <what> <value> exceeds the limit <limit> (setting 'NAME')``.
"""

from __future__ import annotations

import dataclasses
import zipfile
from pathlib import Path

from pipelines.errors import UserError


def over_limit(
    path: Path | str, what: str, value: float, limit: float, setting: str, unit: str = ""
) -> UserError:
    """The error for ``what`` of ``path`` declared as ``value``, over ``limit`` of ``setting``
    (a setting's key, or the upper-case name of the module constant that declares it)."""
    declared = f"setting '{setting}'" if setting.islower() else f"the project's limit {setting}"
    return UserError(
        f"{path}: {what} {_number(value)}{unit} exceeds the limit {_number(limit)}{unit} "
        f"({declared})"
    )


def check_at_most(
    path: Path | str, what: str, value: float, limit: float, setting: str, unit: str = ""
) -> None:
    """``over_limit`` raised when ``value`` is above ``limit``."""
    if value > limit:
        raise over_limit(path, what, value, limit, setting, unit)


def _number(value: float) -> str:
    """``value`` with thousands separators: whole, or to a tenth."""
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,.1f}"


def check_file_bytes(path: Path, limit: int, setting: str) -> None:
    """UserError for a missing file, or one larger than ``limit`` bytes (read before it is
    parsed)."""
    if not path.is_file():
        raise UserError(f"file not found: {path}")
    check_at_most(path, "file size", path.stat().st_size, limit, setting, " bytes")


def check_unzipped_bytes(path: Path, limit: int, setting: str) -> None:
    """UserError for a zip archive (a compressed MusicXML ``.mxl``) whose members declare
    more than ``limit`` bytes unpacked; a file that is not a zip archive passes."""
    if not zipfile.is_zipfile(path):
        return
    try:
        with zipfile.ZipFile(path) as archive:
            unpacked = sum(member.file_size for member in archive.infolist())
    except zipfile.BadZipFile:
        return  # the parser then says what is wrong with it
    check_at_most(path, "unpacked size", unpacked, limit, setting, " bytes")


# === Audio ===


@dataclasses.dataclass(frozen=True)
class AudioLimits:
    """What one audio file may declare, each with the setting that declares it."""

    max_seconds: float
    max_sample_rate: int
    max_channels: int
    seconds_setting: str = "max_seconds"
    rate_setting: str = "max_sample_rate"
    channels_setting: str = "max_channels"


@dataclasses.dataclass(frozen=True)
class AudioHeader:
    """The sizes an audio file's header declares (libsndfile's reading of it)."""

    sample_rate: int
    channels: int
    frames: int

    @property
    def seconds(self) -> float:
        """The declared duration."""
        return self.frames / self.sample_rate if self.sample_rate > 0 else 0.0


def audio_header(path: Path) -> AudioHeader | None:
    """The header of a regular audio file; None when libsndfile reads none (the decoder then
    says what is wrong). Never opens what is not a regular file (a FIFO would block)."""
    import soundfile

    if not path.is_file():
        return None
    try:
        info = soundfile.info(str(path))
    except Exception:  # libsndfile: not audio, truncated, unknown format
        return None
    return AudioHeader(int(info.samplerate), int(info.channels), int(info.frames))


def check_audio_format(path: Path, header: AudioHeader, limits: AudioLimits) -> None:
    """UserError for a sample rate or a channel count over ``limits``."""
    check_at_most(
        path, "sample rate", header.sample_rate, limits.max_sample_rate, limits.rate_setting, " Hz"
    )
    check_at_most(path, "channels", header.channels, limits.max_channels, limits.channels_setting)


def check_audio_duration(path: Path, header: AudioHeader, limits: AudioLimits) -> None:
    """UserError for a declared duration over ``limits.max_seconds``."""
    check_at_most(
        path, "duration", header.seconds, limits.max_seconds, limits.seconds_setting, " s"
    )
