"""The command-line cases of the hostile corpus, generated as class x pipeline x variant.

A case writes its files into an empty case folder and returns a ``Call``: the arguments of
``python -m pipelines``, the texts its error line must name, and the outputs a success may
write. Classes (``CLASSES``) follow the issue's list, then the bad inputs the project already
tested (``tests/pipelines/test_bad_inputs.py``'s ``CORPUS``) and command-line misuse.
"""

from __future__ import annotations

import atexit
import dataclasses
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from tests.hostile import files
from tests.pipelines import test_bad_inputs

PIPELINES = ("sentiment", "forecasting", "music", "translation", "speech-to-text", "video-activity")
PORTABLE = ("sentiment", "forecasting")  # the pipelines `export` supports

HUGE = "1 huge declared size"
TWO_RUNS = "2 two runs, one folder"
OVERWRITE = "3 overwrite"
PARTIAL = "4 unfinished run read"
OUTPUT_PATH = "5 output path"
NUMBERS = "6 numbers at the edges"
ENCODING = "6 encoding"
BAD_INPUT = "bad input (existing corpus)"
MISUSE = "command-line misuse"
CLASSES = (HUGE, TWO_RUNS, OVERWRITE, PARTIAL, OUTPUT_PATH, NUMBERS, ENCODING, BAD_INPUT, MISUSE)
SLUGS = dict(
    zip(
        CLASSES,
        (
            "huge",
            "two-runs",
            "overwrite",
            "partial",
            "output-path",
            "numbers",
            "encoding",
            "bad-input",
            "misuse",
        ),
        strict=True,
    )
)

ERROR, SUCCESS, EITHER = "error", "success", "either"
IN_PROCESS, MEMORY_CHILD, LOCK_CHILD = "in-process", "memory child", "lock child"


@dataclasses.dataclass
class Call:
    """What a case runs: ``argv``; ``named``: texts its error line must hold; ``outputs``:
    paths a success may create or change."""

    argv: list[str]
    named: tuple[str, ...] = ()
    outputs: tuple[Path, ...] = ()
    others: tuple[Path, ...] = ()  # written by another process of the case (a first run)


@dataclasses.dataclass(frozen=True)
class CliCase:
    """One hostile command line. ``build(folder, runs)`` writes the case's files into
    ``folder`` (``runs.copy(pipeline, dest)`` puts a finished run there) and returns its Call."""

    pipeline: str
    kind: str
    name: str
    build: Callable[[Path, object], Call]
    outcome: str = ERROR
    where: str = IN_PROCESS

    @property
    def key(self) -> str:
        """A unique id: pipeline/class/variant."""
        return f"{self.pipeline}/{SLUGS[self.kind]}/{self.name}"


# === Good tiny data and inputs per pipeline ===


def good_settings(pipeline: str) -> list[str]:
    """The --set pairs ``good_data`` needs."""
    return ["target_columns=temp"] if pipeline == "forecasting" else []


GOOD_DATA = {  # pipeline -> (data kind, the path under the data folder that --data names)
    "sentiment": ("csv", "reviews.csv"),
    "forecasting": ("csv", "series.csv"),
    "music": ("midi", ""),
    "translation": ("tsv", "pairs.tsv"),
    "speech-to-text": ("manifest", "manifest.csv"),
    "video-activity": ("folder", ""),
}
_GOOD_DATA_MADE: dict[str, Path] = {}


def good_data(pipeline: str, folder: Path) -> tuple[str, list[str]]:
    """Tiny good training data for ``pipeline`` copied into ``folder/data`` (made once per
    session, since video and audio are slow to write): (--data spec, --set pairs)."""
    if pipeline not in _GOOD_DATA_MADE:
        made = Path(tempfile.mkdtemp(prefix=f"hostile-{pipeline}-"))
        atexit.register(shutil.rmtree, made, True)
        _write_good_data(pipeline, made)
        _GOOD_DATA_MADE[pipeline] = made
    data = folder / "data"
    shutil.copytree(_GOOD_DATA_MADE[pipeline], data, dirs_exist_ok=True)
    kind, name = GOOD_DATA[pipeline]
    return f"{kind}:{data / name if name else data}", good_settings(pipeline)


def _write_good_data(pipeline: str, data: Path) -> None:
    if pipeline == "sentiment":
        (data / "reviews.csv").write_text("\n".join(files.sentiment_rows()) + "\n")
    elif pipeline == "forecasting":
        (data / "series.csv").write_text("\n".join(files.series_rows()) + "\n")
    elif pipeline == "music":
        for i in range(3):
            (data / f"piece_{i}.mid").write_bytes(files.midi_bytes())
    elif pipeline == "translation":
        (data / "pairs.tsv").write_text(files.translation_pairs())
    elif pipeline == "speech-to-text":
        files.speech_manifest(data)
    else:
        files.video_folder(data)


def run_argv(pipeline: str, folder: Path, out: Path, spec: str | None = None) -> list[str]:
    """``run PIPELINE --preset smoke`` on good tiny data (or ``spec``) into ``out``."""
    good, settings = good_data(pipeline, folder)
    argv = ["run", pipeline, "--preset", "smoke", "--data", spec or good, "--out", str(out)]
    return argv + (["--set", *settings] if settings else [])


def predict_inputs(pipeline: str, folder: Path) -> list[str]:
    """Good inputs for ``predict RUN INPUT...``."""
    if pipeline in ("sentiment", "translation"):
        return ["one two" if pipeline == "translation" else "a good film"]
    if pipeline == "forecasting":
        path = folder / "recent.csv"
        path.write_text("\n".join(files.series_rows(30)) + "\n")
        return [str(path)]
    if pipeline == "music":
        path = folder / "primer.mid"
        path.write_bytes(files.midi_bytes())
        return [str(path)]
    if pipeline == "speech-to-text":
        return [str(files.write_wav(folder / "say.wav", files.tone(0.5)))]
    return [str(files.write_video(folder / "clip.mp4", files.moving_square(1)))]


def predict_file_input(pipeline: str, folder: Path) -> tuple[Path, Path]:
    """A good ``--input`` for ``predict`` and a fresh ``--output`` path beside it."""
    if pipeline == "sentiment":
        path = folder / "texts.csv"
        path.write_text("text\na good film\na dull film\n")
    elif pipeline == "translation":
        path = folder / "lines.txt"
        path.write_text("one two\nthree\n")
    elif pipeline == "forecasting":
        path = folder / "recent.csv"
        path.write_text("\n".join(files.series_rows(30)) + "\n")
    elif pipeline == "music":
        path = folder / "primers"
        path.mkdir()
        (path / "a.mid").write_bytes(files.midi_bytes())
        return path, folder / "continued"
    elif pipeline == "speech-to-text":
        path = folder / "audio"
        path.mkdir()
        files.write_wav(path / "say.wav", files.tone(0.5))
    else:
        path = folder / "clips"
        path.mkdir()
        files.write_video(path / "clip.mp4", files.moving_square(1))
    return path, folder / "predictions.csv"


def _data_case(pipeline: str, make: Callable[[Path], tuple[str, Path]], settings=()) -> Callable:
    """A run on data written by ``make(folder) -> (spec, named path)``."""

    def build(folder: Path, runs) -> Call:
        spec, named = make(folder)
        argv = ["run", pipeline, "--preset", "smoke", "--data", spec, "--out", str(folder / "out")]
        pairs = [*good_settings(pipeline), *settings]
        argv += ["--set", *pairs] if pairs else []
        return Call(argv, (str(named),) if named else (), (folder / "out", folder / "runs"))

    return build


def _predict_case(pipeline: str, make: Callable[[Path], Path], output_name="out.csv") -> Callable:
    """``predict RUN --input X --output Y`` on an input written by ``make(folder)``."""

    def build(folder: Path, runs) -> Call:
        run = runs.copy(pipeline, folder / "run")
        source = make(folder)
        output = folder / output_name
        argv = ["predict", str(run), "--input", str(source), "--output", str(output)]
        return Call(argv, (str(source.name),), (output, Path(f"{output}.skipped.csv")))

    return build


# === 1. Small inputs that declare huge sizes (one child process, memory measured) ===


def _in_folder_of_good(pipeline: str, name: str, write: Callable[[Path], Path]) -> Callable:
    """The pipeline's good data folder with one hostile file ``name`` added (a speech
    manifest lists it on line 3)."""

    def make(folder: Path) -> tuple[str, Path]:
        spec, _ = good_data(pipeline, folder)
        data = folder / "data"
        if pipeline == "speech-to-text":
            bad = write(data / name)
            rows = (data / "manifest.csv").read_text().splitlines()
            rows.insert(2, f"{bad.name},two")
            (data / "manifest.csv").write_text("\n".join(rows) + "\n")
            return spec, bad
        return spec, write(data / "right" / name if pipeline == "video-activity" else data / name)

    return make


def _huge_cases() -> list[CliCase]:
    cases = []
    for what in ("frames", "rate", "channels", "seconds"):
        write = _bound(files.wav_declaring, what)
        make = _in_folder_of_good("speech-to-text", f"{what}.wav", write)
        cases.append(
            _huge("speech-to-text", f"wav_{what}_in_manifest", _data_case("speech-to-text", make))
        )
        cases.append(
            _huge(
                "speech-to-text",
                f"wav_{what}_predicted",
                _predict_case("speech-to-text", _folder_with(f"{what}.wav", write)),
            )
        )
    for what in ("duration", "tempo", "tracks", "chunk", "events"):
        write = _bound(files.midi_declaring, what)
        make = _in_folder_of_good("music", f"{what}.mid", write)
        cases.append(_huge("music", f"midi_{what}_in_folder", _data_case("music", make)))
        predicted = _predict_case("music", _folder_with(f"{what}.mid", write), "continued")
        cases.append(_huge("music", f"midi_{what}_predicted", predicted))
    videos = {
        "y4m_resolution": ("huge.mkv", files.y4m_declaring),
        "avi_resolution": ("huge.avi", _bound(files.avi_declaring, "resolution")),
        "avi_frame_count": ("long.avi", _bound(files.avi_declaring, "frames")),
    }
    for name, (file_name, write) in videos.items():
        make = _in_folder_of_good("video-activity", file_name, write)
        cases.append(
            _huge("video-activity", f"{name}_in_folder", _data_case("video-activity", make))
        )
        predicted = _predict_case("video-activity", _folder_with(file_name, write))
        cases.append(_huge("video-activity", f"{name}_predicted", predicted))
    tables = {
        "sentiment": ("reviews.csv", "csv", "text,label"),
        "forecasting": ("series.csv", "csv", "date,temp,wind"),
        "translation": ("pairs.tsv", "tsv", "a\tb"),
        "speech-to-text": ("manifest.csv", "manifest", "path,transcript"),
    }
    for pipeline, (name, kind, header) in tables.items():
        line = _file_spec(name, kind, lambda p, h=header: files.giant_line(p, h))
        cases.append(_huge(pipeline, "giant_line", _data_case(pipeline, line)))
        columns = _file_spec(name, kind, lambda p, h=header: files.giant_header(p, body=h + "\n"))
        cases.append(_huge(pipeline, "giant_header", _data_case(pipeline, columns)))
    for pipeline, name in (("sentiment", "texts.txt"), ("translation", "lines.txt")):
        line = _bound(files.giant_line, "a text")
        cases.append(
            _huge(pipeline, "giant_line_predicted", _predict_case(pipeline, _writer(name, line)))
        )
    for pipeline in PIPELINES:
        cases.append(
            _huge(pipeline, "yaml_deep", _config_case(pipeline, files.yaml_deep(pipeline)))
        )
        cases.append(
            _huge(pipeline, "yaml_huge_file", _config_file_case(pipeline, files.yaml_huge))
        )
    for pipeline in ("sentiment", "translation"):
        laughs = files.yaml_laughs(pipeline, levels=9)
        cases.append(_huge(pipeline, "yaml_billion_laughs", _config_case(pipeline, laughs)))
    return cases


def _huge(pipeline: str, name: str, build: Callable) -> CliCase:
    """A class-1 case: clean (accepted or refused) with memory under the bound."""
    return CliCase(pipeline, HUGE, name, build, EITHER, MEMORY_CHILD)


def _bound(function: Callable, *args) -> Callable[[Path], Path]:
    return lambda path: function(path, *args)


def _writer(name: str, write: Callable[[Path], Path]) -> Callable[[Path], Path]:
    return lambda folder: write(folder / name)


def _folder_with(name: str, write: Callable[[Path], Path]) -> Callable[[Path], Path]:
    """A folder holding one file ``name`` written by ``write``."""

    def make(folder: Path) -> Path:
        inputs = folder / "inputs"
        inputs.mkdir()
        write(inputs / name)
        return inputs

    return make


def _file_spec(name: str, kind: str, write: Callable[[Path], Path]) -> Callable:
    def make(folder: Path) -> tuple[str, Path]:
        path = write(folder / name)
        return f"{kind}:{path}", path

    return make


def _config_case(pipeline: str, text: str | bytes, extra_argv=()) -> Callable:
    """``run --config FILE`` of an experiment file holding ``text``."""

    def build(folder: Path, runs) -> Call:
        path = folder / "experiment.yaml"
        path.write_bytes(text.encode() if isinstance(text, str) else text)
        argv = ["run", "--config", str(path), "--out", str(folder / "out"), *extra_argv]
        return Call(argv, (path.name,), (folder / "out", folder / "runs"))

    return build


def _config_file_case(pipeline: str, write: Callable[[Path, str], Path]) -> Callable:
    def build(folder: Path, runs) -> Call:
        path = write(folder / "experiment.yaml", pipeline)
        argv = ["run", "--config", str(path), "--out", str(folder / "out")]
        return Call(argv, (path.name,), (folder / "out", folder / "runs"))

    return build


# === 2. Two runs on one folder (child processes) ===


def _lock_cases() -> list[CliCase]:
    cases = []
    for pipeline in ("sentiment", "forecasting"):
        for second in ("run", "resume"):
            cases.append(
                CliCase(
                    pipeline,
                    TWO_RUNS,
                    f"{second}_while_running",
                    _lock_build(pipeline, second),
                    ERROR,
                    LOCK_CHILD,
                )
            )
    cases.append(
        CliCase(
            "sentiment",
            TWO_RUNS,
            "resume_after_kill",
            _lock_build("sentiment", "after_kill"),
            SUCCESS,
            LOCK_CHILD,
        )
    )
    return cases


def _lock_build(pipeline: str, second: str) -> Callable:
    """The second command's Call; the test starts the first (``first_argv``) in a child."""

    def build(folder: Path, runs) -> Call:
        out = folder / "out"
        first = [*run_argv(pipeline, folder, out), "epochs=20"]
        if "--set" not in first:
            first.insert(-1, "--set")
        (folder / "first_argv").write_text("\n".join(first))
        argv = first if second == "run" else ["run", pipeline, "--resume", "--out", str(out)]
        owned = (out, Path(f"{out}.partial"), Path(f"{out}.lock"), Path(f"{out}.partial.lock"))
        return Call(argv, (out.name,), owned, owned)

    return build


# === 3. Overwriting what the user owns ===


def _overwrite_cases() -> list[CliCase]:
    cases = []
    for pipeline in PIPELINES:
        cases += [
            CliCase(pipeline, OVERWRITE, "predict_output_exists", _predict_over_existing(pipeline)),
            CliCase(pipeline, OVERWRITE, "run_out_is_a_user_file", _run_over(pipeline, "file")),
            CliCase(pipeline, OVERWRITE, "run_out_is_a_user_folder", _run_over(pipeline, "folder")),
            CliCase(pipeline, OVERWRITE, "run_out_is_a_finished_run", _run_over(pipeline, "run")),
            CliCase(pipeline, OVERWRITE, "publish_version_exists", _publish_over(pipeline)),
        ]
    for pipeline in ("sentiment", "translation", "forecasting"):
        cases.append(
            CliCase(
                pipeline, OVERWRITE, "predict_output_is_the_input", _predict_into_input(pipeline)
            )
        )
    for pipeline in PORTABLE:
        for form in ("tflite", "onnx"):
            cases.append(
                CliCase(pipeline, OVERWRITE, f"export_{form}_exists", _export_over(pipeline, form))
            )
    cases.append(
        CliCase("music", OVERWRITE, "predict_continuation_exists", _music_continuation_exists)
    )
    cases.append(CliCase("sentiment", OVERWRITE, "skipped_list_exists", _skipped_list_exists))
    return cases


def _predict_over_existing(pipeline: str) -> Callable:
    def build(folder: Path, runs) -> Call:
        run = runs.copy(pipeline, folder / "run")
        source, output = predict_file_input(pipeline, folder)
        if pipeline == "music":
            output.mkdir()
            (output / "a.continued.mid").write_text("the user's own file\n")
        else:
            output.write_text("the user's own predictions\n")
        argv = ["predict", str(run), "--input", str(source), "--output", str(output)]
        return Call(argv, (output.name,))

    return build


def _predict_into_input(pipeline: str) -> Callable:
    def build(folder: Path, runs) -> Call:
        run = runs.copy(pipeline, folder / "run")
        source, _ = predict_file_input(pipeline, folder)
        return Call(
            ["predict", str(run), "--input", str(source), "--output", str(source)], (source.name,)
        )

    return build


def _run_over(pipeline: str, what: str) -> Callable:
    def build(folder: Path, runs) -> Call:
        out = folder / "mine"
        if what == "file":
            out.write_text("the user's notes\n")
        elif what == "folder":
            out.mkdir()
            (out / "notes.txt").write_text("the user's notes\n")
        else:
            runs.copy(pipeline, out)
        return Call(run_argv(pipeline, folder, out), (out.name,))

    return build


def _publish_over(pipeline: str) -> Callable:
    def build(folder: Path, runs) -> Call:
        run = runs.copy(pipeline, folder / "run")
        models = folder / "models"
        version = models / "mine" / "1"
        version.mkdir(parents=True)
        (version / "saved_model.pb").write_text("the user's model\n")
        argv = ["publish", str(run), str(models), "--name", "mine", "--version", "1"]
        return Call(argv, ("1",))

    return build


def _export_over(pipeline: str, form: str) -> Callable:
    def build(folder: Path, runs) -> Call:
        run = runs.copy(pipeline, folder / "run")
        (run / "export").mkdir(exist_ok=True)
        target = run / "export" / f"model.{form}"
        target.write_text("the user's earlier export\n")
        return Call(["export", str(run), "--format", form], (target.name,))

    return build


def _music_continuation_exists(folder: Path, runs) -> Call:
    run = runs.copy("music", folder / "run")
    (primer,) = predict_inputs("music", folder)
    Path(primer).with_name("primer.continued.mid").write_text("the user's own file\n")
    return Call(["predict", str(run), primer], ("primer.continued.mid",))


def _skipped_list_exists(folder: Path, runs) -> Call:
    run = runs.copy("sentiment", folder / "run")
    source, output = predict_file_input("sentiment", folder)
    Path(f"{output}.skipped.csv").write_text("the user's own list\n")
    argv = [
        "predict",
        str(run),
        "--input",
        str(source),
        "--output",
        str(output),
        "--on-error",
        "skip",
    ]
    return Call(argv, ("skipped",), (output,))


# === 4. Reading what is not finished ===


def _partial_cases() -> list[CliCase]:
    cases = []
    for pipeline in PIPELINES:
        for command in ("predict", "predict_file", "evaluate", "publish", "predict_final_name"):
            cases.append(CliCase(pipeline, PARTIAL, command, _on_partial(pipeline, command)))
        if pipeline in PORTABLE:
            cases.append(CliCase(pipeline, PARTIAL, "export", _on_partial(pipeline, "export")))
    return cases


def _on_partial(pipeline: str, command: str) -> Callable:
    """``command`` given a run folder named ``*.partial`` (a finished run's contents under an
    unfinished name), or (``predict_final_name``) the final name of a run only its partial has."""

    def build(folder: Path, runs) -> Call:
        partial = runs.copy(pipeline, folder / "run.partial")
        target = folder / "run" if command == "predict_final_name" else partial
        if command in ("predict", "predict_final_name"):
            argv = ["predict", str(target), *predict_inputs(pipeline, folder)]
        elif command == "predict_file":
            source, output = predict_file_input(pipeline, folder)
            argv = ["predict", str(target), "--input", str(source), "--output", str(output)]
        elif command == "evaluate":
            argv = ["evaluate", str(target)]
        elif command == "publish":
            argv = ["publish", str(target), str(folder / "models")]
        else:
            argv = ["export", str(target), "--format", "tflite"]
        return Call(argv, ("run.partial",))

    return build


# === 5. Output paths that fail ===


def _output_path_cases() -> list[CliCase]:
    cases = []
    for pipeline in PIPELINES:
        for how in ("parent_is_a_file", "dangling_symlink", "read_only_filesystem"):
            cases.append(
                CliCase(pipeline, OUTPUT_PATH, f"run_out_{how}", _run_out_at(pipeline, how))
            )
            cases.append(
                CliCase(
                    pipeline,
                    OUTPUT_PATH,
                    f"predict_output_{how}",
                    _predict_output_at(pipeline, how),
                )
            )
        cases.append(
            CliCase(
                pipeline, OUTPUT_PATH, "publish_models_dir_is_a_file", _publish_into_file(pipeline)
            )
        )
    for pipeline in PORTABLE:
        cases.append(
            CliCase(
                pipeline, OUTPUT_PATH, "export_folder_is_a_file", _export_folder_is_a_file(pipeline)
            )
        )
    return cases


def bad_output_path(folder: Path, how: str) -> Path:
    """An output path that cannot be written: under a regular file, a symlink to nowhere, or
    on a read-only filesystem (so that it fails even for root, who ignores permissions)."""
    if how == "parent_is_a_file":
        (folder / "a_file").write_text("not a folder\n")
        return folder / "a_file" / "out"
    if how == "dangling_symlink":
        os.symlink(folder / "nowhere" / "gone", folder / "out_link")
        return folder / "out_link"
    return Path("/proc/hostile-corpus-out")


def _run_out_at(pipeline: str, how: str) -> Callable:
    def build(folder: Path, runs) -> Call:
        out = bad_output_path(folder, how)
        return Call(run_argv(pipeline, folder, out), (str(out),))

    return build


def _predict_output_at(pipeline: str, how: str) -> Callable:
    def build(folder: Path, runs) -> Call:
        run = runs.copy(pipeline, folder / "run")
        source, output = predict_file_input(pipeline, folder)
        target = bad_output_path(folder, how)
        if pipeline != "music" and how != "dangling_symlink":
            target = target / output.name
        argv = ["predict", str(run), "--input", str(source), "--output", str(target)]
        return Call(argv, (str(target.parent if how == "parent_is_a_file" else target),))

    return build


def _publish_into_file(pipeline: str) -> Callable:
    def build(folder: Path, runs) -> Call:
        run = runs.copy(pipeline, folder / "run")
        models = folder / "models"
        models.write_text("a file, not a folder\n")
        return Call(["publish", str(run), str(models)], ("models",))

    return build


def _export_folder_is_a_file(pipeline: str) -> Callable:
    def build(folder: Path, runs) -> Call:
        run = runs.copy(pipeline, folder / "run")
        shutil.rmtree(run / "export", ignore_errors=True)
        (run / "export").write_text("a file, not a folder\n")
        return Call(["export", str(run), "--format", "tflite"], ("export",))

    return build


# === 6. Numbers at the edges and encodings ===


def _text(name: str, kind: str, content: str | bytes) -> Callable:
    def make(folder: Path) -> tuple[str, Path]:
        path = folder / name
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        return f"{kind}:{path}", path

    return make


def _lines(rows: list[str]) -> str:
    return "\n".join(rows) + "\n"


def _number_cases() -> list[CliCase]:
    series = files.series_rows
    forecasting = {
        "constant_series": (_lines(series(value=lambda i: "7.5")), SUCCESS),
        "near_float32_max": (_lines(series(value=lambda i: f"{3.0e38 + i * 1e36:.6e}")), EITHER),
        "denormal_values": (_lines(series(value=lambda i: f"{1e-45 * (i % 3):.3e}")), EITHER),
        "huge_constant_offset": (_lines(series(value=lambda i: f"{1e30 + i:.6e}")), EITHER),
        "negative_zero": (_lines(series(value=lambda i: "-0.0" if i % 2 else "0.0")), EITHER),
        "nan_word_target": (_lines(series(value=lambda i: "nan" if i == 50 else "1.5")), EITHER),
        "text_label_target": (_lines(series(value=lambda i: "high" if i % 7 else "low")), ERROR),
        "hex_float": (_lines(series(value=lambda i: "0x1p3")), EITHER),
        "thousands_separator": (_lines(series(value=lambda i: '"1,000.5"')), ERROR),
    }
    cases = [
        CliCase(
            "forecasting",
            NUMBERS,
            name,
            _data_case("forecasting", _in_range(_text("s.csv", "csv", text), outcome)),
            outcome,
        )
        for name, (text, outcome) in forecasting.items()
    ]
    many_classes = ["text,label"] + [f"text number {i},class{i % 15}" for i in range(30)]
    one_each = ["text,label"] + [f"text number {i},{i}" for i in range(6)]
    float_labels = ["text,label"] + [f"text {i},{'1.0' if i % 2 else '0.0'}" for i in range(30)]
    sentiment = {
        "too_many_classes_for_split": (_lines(many_classes), ERROR),
        "one_row_per_class": (_lines(one_each), ERROR),
        "float_labels": (_lines(float_labels), EITHER),
    }
    cases += [
        CliCase(
            "sentiment",
            NUMBERS,
            name,
            _data_case("sentiment", _text("r.csv", "csv", text)),
            outcome,
        )
        for name, (text, outcome) in sentiment.items()
    ]
    for name, value in (
        ("nan_samples", float("nan")),
        ("inf_samples", float("inf")),
        ("huge_samples", 1e30),
    ):
        make = _in_folder_of_good("speech-to-text", f"{name}.wav", _bound(files.wav_with, value))
        outcome = EITHER if name == "huge_samples" else ERROR
        make = _in_range(make, outcome)
        cases.append(
            CliCase("speech-to-text", NUMBERS, name, _data_case("speech-to-text", make), outcome)
        )
    jsb = {
        "pitch_1e39": '{"train": [[[1e39]]], "valid": [], "test": []}',
        "negative_pitch": '{"train": [[[-60]]], "valid": [], "test": []}',
        "pitch_as_string": '{"train": [[["60"]]], "valid": [], "test": []}',
        "pitch_true": '{"train": [[[true]]], "valid": [], "test": []}',
    }
    cases += [
        CliCase("music", NUMBERS, name, _data_case("music", _text("j.json", "jsb", text)))
        for name, text in jsb.items()
    ]
    cases.append(
        CliCase(
            "translation",
            NUMBERS,
            "two_pairs_only",
            _data_case("translation", _text("p.tsv", "tsv", files.translation_pairs(2))),
        )
    )
    cases.append(
        CliCase(
            "video-activity",
            NUMBERS,
            "one_clip_per_class",
            _data_case("video-activity", _video_clips(1)),
        )
    )
    splits = (("validation_fraction=0.99", EITHER), ("test_fraction=0", EITHER))
    for pipeline in PIPELINES:
        trained = splits if pipeline in PORTABLE else ()  # a split accepted trains: a few only
        for pair, outcome in (*trained, ("learning_rate=1e39", ERROR)):
            name = "set_" + pair.replace("=", "_").replace(".", "p")
            cases.append(
                CliCase(
                    pipeline,
                    NUMBERS,
                    name,
                    _data_case(pipeline, _good_spec(pipeline), (pair,)),
                    outcome,
                )
            )
    cases.append(
        CliCase(
            "forecasting",
            NUMBERS,
            "predict_infinite_row",
            _predict_case(
                "forecasting",
                _writer(
                    "r.csv",
                    lambda p: _write(p, _lines(series(30, lambda i: "inf" if i == 29 else "1.0"))),
                ),
            ),
        )
    )
    cases.append(
        CliCase(
            "forecasting",
            NUMBERS,
            "evaluate_constant_series",
            _evaluate_on("forecasting", "csv", _lines(series(value=lambda i: "7.5"))),
            EITHER,
        )
    )
    return cases


def _in_range(make: Callable, outcome: str) -> Callable:
    """Data whose values float32 holds (``EITHER``) may also be refused for what training
    made of them (a diverged loss names the learning rate, not the file): no file named."""
    if outcome != EITHER:
        return make
    return lambda folder: (make(folder)[0], None)


def _write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def _good_spec(pipeline: str) -> Callable:
    def make(folder: Path) -> tuple[str, None]:
        return good_data(pipeline, folder)[0], None

    return make


def _video_clips(per_class: int) -> Callable:
    def make(folder: Path) -> tuple[str, Path]:
        return f"folder:{files.video_folder(folder / 'clips', per_class)}", folder / "clips"

    return make


def _evaluate_on(pipeline: str, kind: str, text: str) -> Callable:
    def build(folder: Path, runs) -> Call:
        run = runs.copy(pipeline, folder / "run")
        data = _write(folder / "other.csv", text)
        argv = ["evaluate", str(run), "--data", f"{kind}:{data}"]
        return Call(argv, (data.name,), (run / "metrics.json", run / "report.md", run))

    return build


LATIN1 = "caf\xe9 cr\xe8me"


def _encoding_cases() -> list[CliCase]:
    cases = []
    sentiment = _lines(files.sentiment_rows())
    series = _lines(files.series_rows())
    pairs = files.translation_pairs()
    tables = {
        "sentiment": ("r.csv", "csv", sentiment, sentiment.replace("film number 3,", f"{LATIN1},")),
        "forecasting": (
            "s.csv",
            "csv",
            series,
            series.replace("date,temp,wind", "date,temp,w\xe9nd"),
        ),
        "translation": ("p.tsv", "tsv", pairs, pairs + f"coffee\t{LATIN1}\n"),
    }
    for pipeline, (name, kind, good, latin) in tables.items():
        variants = {
            "latin1": (latin.encode("latin-1"), ERROR),
            "cp1252_quotes": (
                good.encode() + "\u201cquoted\u201d\t\u2019x\u2019,1\n".encode("cp1252"),
                ERROR,
            ),
            "utf16_le_no_bom": (good.encode("utf-16-le"), ERROR),
            "utf8_bom": (b"\xef\xbb\xbf" + good.encode(), EITHER),
            "invalid_utf8_continuation": (good.encode() + b"bad \x80\xbf bytes,1\n", ERROR),
            "overlong_utf8": (good.encode() + b"bad \xc0\xaf slash,1\n", ERROR),
            "lone_surrogate_utf8": (good.encode() + b"bad \xed\xa0\x80 half,1\n", ERROR),
        }
        if pipeline == "forecasting":
            variants["cp1252_quotes"] = (
                series.encode() + "2020-06-01,\u201c1\u201d,1\n".encode("cp1252"),
                ERROR,
            )
        for variant, (content, outcome) in variants.items():
            make = _text(name, kind, content)
            cases.append(CliCase(pipeline, ENCODING, variant, _data_case(pipeline, make), outcome))
    speech = {
        "manifest_latin1": (f"path,transcript\nclip_0.wav,{LATIN1}\n", "latin-1", ERROR),
        "manifest_utf16": ("path,transcript\nclip_0.wav,one\n", "utf-16", ERROR),
        "manifest_bom": ("\ufeffpath,transcript\nclip_0.wav,one\n", "utf-8", EITHER),
        "transcript_accents": (f"path,transcript\nclip_0.wav,{LATIN1}\n", "utf-8", EITHER),
    }
    for variant, (text, encoding, outcome) in speech.items():
        cases.append(
            CliCase(
                "speech-to-text",
                ENCODING,
                variant,
                _data_case("speech-to-text", _manifest_in(text, encoding)),
                outcome,
            )
        )
    cases.append(
        CliCase(
            "speech-to-text",
            ENCODING,
            "file_name_not_utf8",
            _data_case("speech-to-text", _wav_named_in_bytes),
            EITHER,
        )
    )
    cases.append(
        CliCase(
            "music",
            ENCODING,
            "file_name_not_utf8",
            _data_case("music", _midi_named_in_bytes),
            EITHER,
        )
    )
    cases.append(
        CliCase(
            "video-activity",
            ENCODING,
            "class_name_not_utf8",
            _data_case("video-activity", _class_named_in_bytes),
            EITHER,
        )
    )
    xml = (
        '<?xml version="1.0" encoding="ISO-8859-1"?><score-partwise><work>'
        "<work-title>caf\xe9</work-title></work></score-partwise>"
    )
    cases.append(
        CliCase(
            "music",
            ENCODING,
            "musicxml_latin1_declared",
            _data_case("music", _text("m.musicxml", "musicxml", xml.encode("latin-1"))),
            EITHER,
        )
    )
    for pipeline, name in (("sentiment", "texts.txt"), ("translation", "lines.txt")):
        text = f"fine\n{LATIN1}\n".encode("latin-1")
        cases.append(
            CliCase(
                pipeline,
                ENCODING,
                "predict_input_latin1",
                _predict_case(pipeline, _writer(name, lambda p, t=text: _write(p, t))),
            )
        )
        cases.append(
            CliCase(
                pipeline,
                ENCODING,
                "predict_argument_surrogate",
                _predict_argument(pipeline, "caf\udce9"),
                EITHER,
            )
        )
    for pipeline in PIPELINES:
        base = f"pipeline: {pipeline}\npreset: smoke\nsettings: {{}}\n# {LATIN1}\n"
        cases.append(
            CliCase(
                pipeline, ENCODING, "config_latin1", _config_case(pipeline, base.encode("latin-1"))
            )
        )
        cases.append(
            CliCase(
                pipeline, ENCODING, "config_utf16", _config_case(pipeline, base.encode("utf-16"))
            )
        )
    return cases


def _manifest_in(text: str, encoding: str) -> Callable:
    def make(folder: Path) -> tuple[str, Path]:
        good_data("speech-to-text", folder)
        manifest = folder / "data" / "manifest.csv"
        rows = manifest.read_text().splitlines()[2:]
        body = text + "\n".join(rows) + "\n"
        manifest.write_bytes(body.encode(encoding))
        return f"manifest:{manifest}", manifest

    return make


def _wav_named_in_bytes(folder: Path) -> tuple[str, Path]:
    good_data("speech-to-text", folder)
    manifest = folder / "data" / "manifest.csv"
    name = b"caf\xe9.wav"
    written = files.write_wav(manifest.parent / "plain.wav", files.tone(0.5))
    os.rename(written, os.fsdecode(bytes(manifest.parent) + b"/" + name))
    with manifest.open("ab") as stream:
        stream.write(name + b",three\n")
    return f"manifest:{manifest}", manifest


def _midi_named_in_bytes(folder: Path) -> tuple[str, Path]:
    spec, _ = good_data("music", folder)
    data = folder / "data"
    Path(os.fsdecode(bytes(data) + b"/caf\xe9.mid")).write_bytes(files.midi_bytes())
    return spec, data


def _class_named_in_bytes(folder: Path) -> tuple[str, Path]:
    good_data("video-activity", folder)
    root = folder / "data"
    os.rename(root / "right", os.fsdecode(bytes(root) + b"/r\xe9ght"))
    return f"folder:{root}", root


def _predict_argument(pipeline: str, text: str) -> Callable:
    def build(folder: Path, runs) -> Call:
        run = runs.copy(pipeline, folder / "run")
        return Call(["predict", str(run), text])

    return build


# === The bad inputs already tested, and command-line misuse ===


def _existing_cases() -> list[CliCase]:
    return [
        CliCase(
            case.pipeline,
            BAD_INPUT,
            f"{case.error_class.replace(' ', '_')}.{case.name}",
            _existing(case),
        )
        for case in test_bad_inputs.CORPUS
    ]


def _existing(case) -> Callable:
    def build(folder: Path, runs) -> Call:
        spec, named = case.make(folder)
        out = folder / "out"
        argv = ["run", case.pipeline, "--preset", "smoke", "--data", spec, "--out", str(out)]
        argv += ["--set", *case.settings] if case.settings else []
        return Call(argv, (str(named),) if named else ())

    return build


def _misuse_cases() -> list[CliCase]:
    cases = []
    for pipeline in PIPELINES:
        for name, make in _MISUSE.items():
            cases.append(CliCase(pipeline, MISUSE, name, _misuse(pipeline, make)))
        for name, make in _MISUSE_WITH_RUN.items():
            cases.append(CliCase(pipeline, MISUSE, name, _misuse_on_run(pipeline, make)))
    for name, (argv, outcome) in _GENERAL_MISUSE.items():
        cases.append(CliCase("(any)", MISUSE, name, _general(argv), outcome))
    return cases


_MISUSE: dict[str, Callable[[str, Path], tuple[list[str], tuple[str, ...]]]] = {
    "unknown_flag": lambda p, f: (["run", p, "--bogus"], ("--bogus",)),
    "seed_not_a_number": lambda p, f: (["run", p, "--seed", "x"], ("--seed",)),
    "seed_negative": lambda p, f: (["run", p, "--seed", "-5", "--data", "nokind:x"], ()),
    "seed_too_large": lambda p, f: (["run", p, "--seed", str(2**70)], ("seed",)),
    "unknown_preset": lambda p, f: (["run", p, "--preset", "huge"], ("huge",)),
    "unknown_data_kind": lambda p, f: (["run", p, "--data", "nokind:x"], ("nokind",)),
    "data_kind_without_path": lambda p, f: (["run", p, "--data", "csv:"], ()),
    "data_file_missing": lambda p, f: (["run", p, "--data", f"csv:{f}/missing.csv"], ("missing",)),
    "set_without_pair": lambda p, f: (["run", p, "--set"], ("--set",)),
    "set_empty_key": lambda p, f: (["run", p, "--set", "=1"], ()),
    "set_empty_value": lambda p, f: (["run", p, "--set", "epochs="], ()),
    "max_trials_zero": lambda p, f: (["run", p, "--tune", "--max-trials", "0"], ("max-trials",)),
    "unknown_tuner": lambda p, f: (["run", p, "--tune", "--tuner", "grid"], ("grid",)),
    "resume_nothing": lambda p, f: (["run", p, "--resume", "--out", f"{f}/never"], ("never",)),
    "config_missing": lambda p, f: (["run", p, "--config", f"{f}/none.yaml"], ("none.yaml",)),
    "config_empty": lambda p, f: (["run", "--config", _write_in(f, "e.yaml", "")], ("e.yaml",)),
    "config_a_list": lambda p, f: (
        ["run", "--config", _write_in(f, "l.yaml", f"- {p}\n")],
        ("l.yaml",),
    ),
    "config_unknown_key": lambda p, f: (
        ["run", "--config", _write_in(f, "k.yaml", f"pipeline: {p}\nfrobs: 1\n")],
        ("frobs",),
    ),
    "config_other_pipeline": lambda p, f: (
        ["run", p, "--config", _write_in(f, "o.yaml", "pipeline: nosuch\n")],
        ("nosuch",),
    ),
    "config_bad_yaml": lambda p, f: (
        ["run", "--config", _write_in(f, "b.yaml", f"pipeline: {p}\nsettings: [\n")],
        ("b.yaml",),
    ),
    "evaluate_missing_run": lambda p, f: (["evaluate", f"{f}/no_run"], ("no_run",)),
    "predict_missing_run": lambda p, f: (["predict", f"{f}/no_run", "x"], ("no_run",)),
    "publish_missing_models_dir": lambda p, f: (["publish", f"{f}/no_run"], ()),
    "out_is_empty_string": lambda p, f: (["run", p, "--out", "", "--data", "nokind:x"], ()),
    "schema_typo": lambda p, f: (["schema", p + "x"], (p + "x",)),
}
_MISUSE_WITH_RUN: dict[str, Callable[[Path, Path], tuple[list[str], tuple[str, ...]]]] = {
    "predict_no_input": lambda r, f: (["predict", str(r)], ()),
    "predict_input_without_output": lambda r, f: (
        ["predict", str(r), "--input", str(r / "config.json")],
        (),
    ),
    "predict_input_and_argument": lambda r, f: (
        ["predict", str(r), "x", "--input", "a", "--output", "b"],
        (),
    ),
    "predict_batch_size_zero": lambda r, f: (
        [
            "predict",
            str(r),
            "--input",
            str(f / "in.txt"),
            "--output",
            str(f / "o.csv"),
            "--batch-size",
            "0",
        ],
        ("batch",),
    ),
    "predict_on_error_unknown": lambda r, f: (
        ["predict", str(r), "--input", "a", "--output", "b", "--on-error", "maybe"],
        ("maybe",),
    ),
    "predict_input_missing": lambda r, f: (
        ["predict", str(r), "--input", str(f / "absent.csv"), "--output", str(f / "o.csv")],
        ("absent",),
    ),
    "export_unknown_format": lambda r, f: (["export", str(r), "--format", "pdf"], ("pdf",)),
    "evaluate_unknown_data_kind": lambda r, f: (
        ["evaluate", str(r), "--data", "nokind:x"],
        ("nokind",),
    ),
    "publish_version_zero": lambda r, f: (
        ["publish", str(r), str(f / "models"), "--version", "0"],
        ("version",),
    ),
    "publish_name_with_slash": lambda r, f: (
        ["publish", str(r), str(f / "models"), "--name", "../escape"],
        ("escape",),
    ),
}
_GENERAL_MISUSE = {
    "no_arguments": ([], EITHER),
    "unknown_command": (["frobnicate"], ERROR),
    "unknown_pipeline": (["run", "nosuch"], ERROR),
    "run_without_pipeline": (["run"], ERROR),
    "serve_missing_folder": (["serve", "/nonexistent/models"], ERROR),
    "serve_port_out_of_range": (["serve", ".", "--rest-port", "70000"], ERROR),
    "serve_negative_port": (["serve", ".", "--grpc-port", "-1"], ERROR),
    "serve_zero_body_limit": (["serve", ".", "--max-body-bytes", "0"], ERROR),
    "validate_missing_file": (["validate", "/nonexistent/experiment.yaml"], ERROR),
    "list_with_extra": (["list", "extra"], ERROR),
    "dash_dash_only": (["--"], ERROR),
    "flag_before_command": (["--seed", "1"], ERROR),
}


def _write_in(folder: Path, name: str, text: str) -> str:
    return str(_write(folder / name, text))


def _misuse(pipeline: str, make: Callable) -> Callable:
    """The misused command; a ``run`` gets good tiny data and an --out in the case folder
    unless it names its own, so that one wrongly accepted trains briefly, not on builtin."""

    def build(folder: Path, runs) -> Call:
        argv, named = make(pipeline, folder)
        if argv[:1] == ["run"] and "--data" not in argv:
            spec, settings = good_data(pipeline, folder)
            argv += ["--data", spec] + (["--set", *settings] if settings else [])
        if argv[:1] == ["run"] and "--out" not in argv:
            argv += ["--out", str(folder / "out")]
        return Call(argv, named, (folder / "out", folder / "runs"))

    return build


def _misuse_on_run(pipeline: str, make: Callable) -> Callable:
    def build(folder: Path, runs) -> Call:
        run = runs.copy(pipeline, folder / "run")
        _write(folder / "in.txt", "a line\n")
        argv, named = make(run, folder)
        return Call(argv, named)

    return build


def _general(argv: list[str]) -> Callable:
    return lambda folder, runs: Call(list(argv))


CASES: list[CliCase] = (
    _huge_cases()
    + _lock_cases()
    + _overwrite_cases()
    + _partial_cases()
    + _output_path_cases()
    + _number_cases()
    + _encoding_cases()
    + _existing_cases()
    + _misuse_cases()
)
BY_KEY = {case.key: case for case in CASES}
