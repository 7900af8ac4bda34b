"""Native (C++) kernels of the fast path, and how to build and switch them.

`lstm_ops.cc` and `gru_ops.cc` hold whole-sequence LSTM and GRU ops that
share each step between the cores by units (see `lstm_ops.cc` for why). They
are compiled on the machine that runs them (`python -m layers.native`, which
`make` does after installing), with that machine's vector instructions. Where
the library is missing, cannot load, or is switched off (`RNN_SUITE_NATIVE=0`,
`use_native(False)`), the XLA kernels of `layers._kernels` run instead, with
the same results.

Graphs that are being saved never contain the native ops, so that a SavedModel
serves with TensorFlow alone: they are left out while `tf.saved_model.save`
traces and while Keras's export (`model.export`, `keras.export.ExportArchive`)
traces. Functions compiled by XLA as a whole (`jit_compile=True`) use the XLA
kernels too, since XLA cannot compile the native ops.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import tensorflow as tf
from tensorflow.python.ops import control_flow_util
from tensorflow.python.saved_model import save_context

from layers._switch import Switch

SOURCES = tuple(Path(__file__).with_name(name) for name in ("lstm_ops.cc", "gru_ops.cc"))
LIBRARY = Path(__file__).with_name("librnn_suite_ops.so")
NATIVE_ENV = "RNN_SUITE_NATIVE"
_SWITCH = Switch(NATIVE_ENV)
_EXPORT_MODULES = ("keras.src.export",)

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


def _exporting() -> bool:
    """Whether the current trace is for a SavedModel (TensorFlow's save or Keras's export)."""
    if save_context.in_save_context():
        return True
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_globals.get("__name__", "").startswith(_EXPORT_MODULES):
            return True
        frame = frame.f_back
    return False


def _in_xla_compilation() -> bool:
    """Whether the current trace is compiled by XLA as a whole (`jit_compile=True`,
    e.g. `model.compile(jit_compile=True)`): XLA cannot compile our ops."""
    return control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph())


def enabled() -> bool:
    """Whether a layer called now may use the native ops: built, switched on, and not
    traced for a SavedModel or for XLA."""
    return _SWITCH.enabled() and available() and not _exporting() and not _in_xla_compilation()


def ops():
    """The op wrappers (`rnn_suite_lstm_forward`, `rnn_suite_gru_backward`, ...);
    call only where `available()`."""
    return _library()
