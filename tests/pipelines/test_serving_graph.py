"""Every pipeline's export runs in a stock TensorFlow Serving: no function or node of
its `saved_model.pb` is marked for XLA compilation (the model server turns XLA off
and then fails at the first request), and every op is in TensorFlow's own registry
(neither this project's native ops nor another library's)."""

from __future__ import annotations

import json

import pytest
from tensorflow.core.protobuf import saved_model_pb2

from pipelines import registry
from tests.helpers import run_python_without_project, smoke_run_dir

XLA_MARKS = ("_XlaMustCompile", "_XlaCompile", "_XlaScope")
# Each pipeline's own tests run the smoke preset with seed 1, forecasting with the defaults.
SMOKE_ARGS = {"forecasting": ()}

# Prints the name of every op a fresh TensorFlow registers, without this project
# or any other library that registers ops of its own.
_STANDARD_OPS = """
import json
from tensorflow.core.framework import op_def_pb2
from tensorflow.python.client import pywrap_tf_session as session
ops = op_def_pb2.OpList()
ops.ParseFromString(session.TF_GetBuffer(session.TF_GetAllOpList()))
print(json.dumps(sorted(op.name for op in ops.op)))
"""


@pytest.fixture(scope="module")
def standard_ops(tmp_path_factory) -> frozenset[str]:
    """The op names of TensorFlow's own registry, read in a fresh process."""
    result = run_python_without_project(_STANDARD_OPS, tmp_path_factory.mktemp("registry"))
    assert result.returncode == 0, result.stderr[-3000:]
    return frozenset(json.loads(result.stdout.strip().splitlines()[-1]))


def _saved_model(path) -> saved_model_pb2.SavedModel:
    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString(path.read_bytes())
    return saved


def serving_faults(saved: saved_model_pb2.SavedModel, standard_ops) -> list[str]:
    """What keeps `saved` from a stock model server: each XLA mark on a function or
    node, and each op type outside `standard_ops` (calls of the graph's own functions
    aside), as `"WHERE: WHAT"` lines."""
    faults = []
    for graph in saved.meta_graphs:
        functions = {f.signature.name for f in graph.graph_def.library.function}
        places = [("graph", graph.graph_def.node)]
        for function in graph.graph_def.library.function:
            name = function.signature.name
            faults += [f"function {name}: {key}" for key in function.attr if key in XLA_MARKS]
            places.append((f"function {name}", function.node_def))
        for place, nodes in places:
            for node in nodes:
                faults += [f"{place}, node {node.name}: {k}" for k in node.attr if k in XLA_MARKS]
                if node.op not in functions and node.op not in standard_ops:
                    faults.append(f"{place}, node {node.name}: op {node.op} is not standard")
    return faults


@pytest.mark.parametrize("name", list(registry.PIPELINES))
def test_the_export_holds_no_xla_marks_and_only_standard_ops(name, tmp_path_factory, standard_ops):
    run_dir = smoke_run_dir(tmp_path_factory, name, *SMOKE_ARGS.get(name, ("--seed", "1")))
    saved = _saved_model(run_dir / "saved_model" / "saved_model.pb")
    assert saved.meta_graphs and saved.meta_graphs[0].graph_def.library.function
    faults = serving_faults(saved, standard_ops)
    assert faults == [], "\n".join(faults[:40])


def test_the_check_finds_xla_marks_and_foreign_ops(standard_ops):
    """A graph with a function marked for XLA and an op of ours fails the check."""
    saved = saved_model_pb2.SavedModel()
    graph = saved.meta_graphs.add().graph_def
    graph.node.add(name="x", op="Placeholder")
    graph.node.add(name="lstm", op="RnnSuiteLstmForward")
    function = graph.library.function.add()
    function.signature.name = "loop"
    function.attr["_XlaMustCompile"].b = True
    function.node_def.add(name="step", op="MatMul")
    graph.node.add(name="call", op="loop")
    assert serving_faults(saved, standard_ops) == [
        "function loop: _XlaMustCompile",
        "graph, node lstm: op RnnSuiteLstmForward is not standard",
    ]
