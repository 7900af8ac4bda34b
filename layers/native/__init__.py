"""Native (C++) kernels of the fast path, and how to build and switch them.

`lstm_ops.cc` and `gru_ops.cc` hold whole-sequence LSTM and GRU ops that
share each step between the cores by units (see `lstm_ops.cc` for why). They
are compiled on the machine that runs them (`python -m layers.native`, which
`make` does after installing), with that machine's vector instructions. Where
the library is missing, cannot load, or is switched off (`RNN_SUITE_NATIVE=0`,
`use_native(False)`), the XLA kernels of `layers._kernels` run instead, with
the same results.

The native ops are this project's own, so a graph holding them runs only
where the library is loaded. Inside `serving_kernels()` the layers emit
neither them nor the XLA kernels, whatever else is switched on, but plain
TensorFlow loops (`layers._serving`): trace and write a SavedModel there
(`tf.saved_model.save`, `model.export`, `keras.export.ExportArchive`) so that
it serves with TensorFlow alone, in a stock TensorFlow Serving too (which
refuses functions marked for XLA compilation), and trace there any function
you compile whole with XLA yourself (`tf.function(jit_compile=True)`), since
XLA cannot compile the native ops. Keras's own `jit_compile` needs nothing: the layers
that may run the native ops tell Keras they do not support it
(`supports_jit`), as Keras's cuDNN LSTM does.
"""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path

import tensorflow as tf

from layers._switch import Switch

SOURCES = tuple(Path(__file__).with_name(name) for name in ("lstm_ops.cc", "gru_ops.cc"))
LIBRARY = Path(__file__).with_name("librnn_suite_ops.so")
NATIVE_ENV = "RNN_SUITE_NATIVE"
_SWITCH = Switch(NATIVE_ENV)
_OUTSIDE_SERVING = Switch()  # off inside `serving_kernels()`

log = logging.getLogger(__name__)
_loaded: list = []  # [module or None] once loading was tried


def compile_command(output: Path = LIBRARY) -> list[str]:
    """The compiler command that builds the library for this machine."""
    compiler = os.environ.get("CXX", "g++")
    return [
        compiler,
        "-O3",
        "-march=native",  # the library is built where it runs
        "-shared",
        "-fPIC",
        "-w",  # TensorFlow's headers warn a lot (deprecations), none of it ours
        *tf.sysconfig.get_compile_flags(),
        *[str(s) for s in SOURCES],
        "-o",
        str(output),
        *tf.sysconfig.get_link_flags(),
    ]


def build(output: Path = LIBRARY) -> Path:
    """Compile the native ops into `output`; raises `RuntimeError` with the compiler's message."""
    partial = output.with_name(output.name + ".partial")
    try:
        result = subprocess.run(compile_command(partial), capture_output=True, text=True)
    except FileNotFoundError as error:
        raise RuntimeError(f"no C++ compiler: {error}") from error
    if result.returncode != 0:
        partial.unlink(missing_ok=True)
        raise RuntimeError(result.stderr.strip()[-2000:] or "the compiler failed")
    partial.replace(output)  # never a half-written library in place
    return output


def _library():
    """The loaded op library, or `None` where it is missing or does not load."""
    if not _loaded:
        module = None
        if LIBRARY.exists():
            try:
                module = tf.load_op_library(str(LIBRARY))
            except (tf.errors.NotFoundError, OSError) as error:
                log.warning("native kernels not loaded (%s): using the XLA kernels", error)
        else:
            log.info("native kernels not built (%s): using the XLA kernels", LIBRARY.name)
        _loaded.append(module)
    return _loaded[0]


def available() -> bool:
    """Whether the native library is built and loads."""
    return _library() is not None


def use_native(enabled: bool = True):
    """Within the block (this thread), switch the native kernels on or off for the
    layers traced inside it (overrides `RNN_SUITE_NATIVE`)."""
    return _SWITCH.forced(enabled)


def serving_kernels():
    """Within the block (this thread), the layers traced inside it run plain
    TensorFlow loops (`layers._serving`): never the native ops, even inside
    `use_native(True)`, and no function marked for XLA compilation, so the graphs
    hold only TensorFlow's own ops and run where XLA is off (TensorFlow
    Serving's model server). Trace and write SavedModels here, and functions
    compiled whole by XLA:

        with layers.serving_kernels():
            model.export("exported", format="tf_saved_model")
    """
    return _OUTSIDE_SERVING.forced(False)


def serving() -> bool:
    """Whether a layer traced now is inside `serving_kernels()` (this thread)."""
    return not _OUTSIDE_SERVING.enabled()


def enabled() -> bool:
    """Whether a layer traced now may use the native ops: built, switched on, and
    not inside `serving_kernels()`."""
    return _SWITCH.enabled() and _OUTSIDE_SERVING.enabled() and available()


def ops():
    """The op wrappers (`rnn_suite_lstm_forward`, `rnn_suite_gru_backward`, ...);
    call only where `available()`."""
    return _library()
