"""Benchmark the model server on loopback against calling the SavedModel in-process.

For each pipeline (one item per request: a sentence, a two-second clip, a window, a
primer, a video clip): throughput (items/s) and p50/p99 latency at 1, 8 and 32
concurrent clients, over REST (JSON) and gRPC (binary tensors), with server-side batching
on and off, and over REST with large bodies parsed in the server's threads rather than its
decoder processes (``decode_processes=0``, how the server parsed before), beside the
SavedModel called in this process on batches of as many items as there are clients (the
limit the server approaches). The models are untrained exports
(``tests/serving/exports.py``) of each pipeline's default preset, the model a run trains
unless told otherwise, so the share of the in-process throughput is what a user keeps behind
the server; ``--preset smoke`` measures the server's fixed cost per request against
near-empty models. Each client keeps one connection and sends a request encoded once, so
the client's own encoding is not counted. Prints a table and each mode's share of the
in-process throughput, and writes the numbers to bench/serve.json.

Examples:
  python -m bench.serve                  # what `make bench-serve` does
  python -m bench.serve --requests 2     # fewer requests per client (a quick look)
  python -m bench.serve --models speech --clients 1,32
  python -m bench.serve --preset smoke   # the server's own cost, against tiny models
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import json
import os
import platform
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

CONCURRENCY = (1, 8, 32)
MODELS = ("sentiment", "speech", "forecasting", "music", "translation", "video")
CLIP_SECONDS = 2.0
SENTENCE = "a gorgeous, witty and moving film that never once loses its nerve"
DEFAULT_OUT = Path(__file__).with_name("serve.json")
PRESETS = ("default", "smoke")
MAX_BATCH_SIZE = 32  # the server's batch bound: the largest client count
# Each server the clients are measured against: its settings and the APIs measured on it.
SERVERS = {
    "batching": ({"enable_batching": True}, ("REST", "gRPC")),
    "batching, threads parse": ({"enable_batching": True, "decode_processes": 0}, ("REST",)),
    "no batching": ({"enable_batching": False}, ("REST", "gRPC")),
}


def _request_item(model: str, example: dict, rate: int) -> tuple[str, object]:
    """One request's single item and its input's name: a long sentence, a two-second clip
    (a tone with noise), or the first item of the pipeline's serving example."""
    ((name, items),) = example.items()
    if model == "sentiment":
        return name, SENTENCE
    if model == "speech":
        time_axis = np.arange(int(CLIP_SECONDS * rate)) / rate
        noise = np.random.default_rng(0).normal(0, 0.01, time_axis.size)
        return name, (0.3 * np.sin(2 * np.pi * 220 * time_axis) + noise).astype(np.float32)
    return name, items[0]


def _client(address: str, path: str, body: bytes, count: int, latencies: list[float]) -> None:
    host, port = address.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=600)
    headers = {"Content-Type": "application/json"}
    for _ in range(count):
        started = time.perf_counter()
        connection.request("POST", path, body, headers)
        response = connection.getresponse()
        payload = response.read()
        if response.status != 200:
            raise RuntimeError(f"the server answered {response.status}: {payload[:300]!r}")
        latencies.append(time.perf_counter() - started)
    connection.close()


def _grpc_client(address: str, request, count: int, latencies: list[float]) -> None:
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    with grpc.insecure_channel(address) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        for _ in range(count):
            started = time.perf_counter()
            stub.Predict(request, timeout=600)
            latencies.append(time.perf_counter() - started)


def _summary(latencies: list[float], items: int, seconds: float) -> dict:
    return {
        "throughput": items / seconds,
        "p50_ms": 1000 * float(np.percentile(latencies, 50)),
        "p99_ms": 1000 * float(np.percentile(latencies, 99)),
        "requests": len(latencies),
    }


def _rest_call(address: str, model: str, item):
    """The REST client's call: its function and arguments, less the count and latencies."""
    _, value = item
    value = value.tolist() if isinstance(value, np.ndarray) else value
    body = json.dumps({"instances": [value]}).encode()
    return _client, (address, f"/v1/models/{model}:predict", body)


def _grpc_call(address: str, model: str, item, dtype):
    """The gRPC client's call: a ``PredictRequest`` built once (the tensor in binary)."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    name, value = item
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.inputs[name].CopyFrom(tf.make_tensor_proto(np.asarray([value]), dtype=dtype))
    return _grpc_client, (address, request)


def measure_server(call, clients: int, per_client: int) -> dict:
    """``clients`` threads, each sending ``per_client`` one-item requests; after a warm-up."""
    function, arguments = call
    function(*arguments, 2, [])  # warm-up
    latencies: list[float] = []
    threads = [
        threading.Thread(target=function, args=(*arguments, per_client, latencies))
        for _ in range(clients)
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return _summary(latencies, len(latencies), time.perf_counter() - started)


def _signature(saved_model: Path):
    import tensorflow as tf

    return tf.saved_model.load(str(saved_model)).signatures["serving_default"]


def input_dtype(saved_model: Path, name: str):
    """The dtype of input ``name`` of the SavedModel's ``serving_default``."""
    return _signature(saved_model).structured_input_signature[1][name].dtype


def measure_in_process(saved_model: Path, item, batch: int, calls: int) -> dict:
    """The SavedModel's ``serving_default`` called here on batches of ``batch`` items."""
    import tensorflow as tf

    function = _signature(saved_model)
    name, value = item
    dtype = function.structured_input_signature[1][name].dtype
    inputs = {name: tf.constant(np.asarray([value] * batch), dtype=dtype)}
    function(**inputs)  # warm-up
    latencies = []
    started = time.perf_counter()
    for _ in range(calls):
        call_started = time.perf_counter()
        function(**inputs)
        latencies.append(time.perf_counter() - call_started)
    return _summary(latencies, calls * batch, time.perf_counter() - started)


def shares(results: dict) -> dict:
    """Each server mode's throughput as a share of the in-process throughput."""
    return {
        model: {
            clients: {
                mode: round(row["throughput"] / modes["in-process"]["throughput"], 3)
                for mode, row in modes.items()
                if mode != "in-process"
            }
            for clients, modes in rows.items()
        }
        for model, rows in results.items()
    }


def _table(results: dict) -> str:
    lines = [
        f"{'model':<10} {'clients':>7} {'mode':<18} {'items/s':>9} {'p50 ms':>9} {'p99 ms':>9}",
    ]
    for model, rows in results.items():
        for clients, modes in rows.items():
            for mode, row in modes.items():
                lines.append(
                    f"{model:<10} {clients:>7} {mode:<18} {row['throughput']:>9.1f} "
                    f"{row['p50_ms']:>9.1f} {row['p99_ms']:>9.1f}"
                )
    return "\n".join(lines)


def _numbers(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(","))


def _names(text: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(","))
    unknown = sorted(set(names) - set(MODELS))
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown model(s) {unknown}; choose from {MODELS}")
    return names


def _measure_servers(models_dir: Path, items: dict, dtypes: dict, args, results: dict) -> None:
    from tests.serving.server_process import running_server

    for server_name, (settings, apis) in SERVERS.items():
        settings = {**settings, "max_batch_size": MAX_BATCH_SIZE}
        with running_server(models_dir, **settings) as server:
            rest = server.rest.removeprefix("http://")
            for model in args.models:
                calls = {
                    "REST": _rest_call(rest, model, items[model]),
                    "gRPC": _grpc_call(server.grpc, model, items[model], dtypes[model]),
                }
                for clients in args.clients:
                    for api in apis:
                        row = measure_server(calls[api], clients, args.requests)
                        results[model][clients][f"{api} {server_name}"] = row
                        print(f"{model} {clients} {api} {server_name}: {row}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=50, help="requests per client per point")
    parser.add_argument("--models", type=_names, default=MODELS, help="comma-separated")
    parser.add_argument("--clients", type=_numbers, default=CONCURRENCY, help="e.g. 1,8,32")
    parser.add_argument(
        "--preset",
        choices=PRESETS,
        default="default",
        help="the pipelines' preset whose (untrained) models are served",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the JSON file written")
    args = parser.parse_args(argv)
    load_at_start = os.getloadavg()

    from tests.serving import exports

    results: dict = {model: {clients: {} for clients in args.clients} for model in args.models}
    with tempfile.TemporaryDirectory() as folder:
        models_dir = Path(folder)
        items, dtypes = {}, {}
        for model in args.models:
            example = exports.export(model, models_dir / model / "1", args.preset)
            items[model] = _request_item(model, example, exports.SPEECH_RATE)
            dtypes[model] = input_dtype(models_dir / model / "1", items[model][0])
            for clients in args.clients:
                calls = max(3, args.requests)
                results[model][clients]["in-process"] = measure_in_process(
                    models_dir / model / "1", items[model], clients, calls
                )
        _measure_servers(models_dir, items, dtypes, args, results)
    print(_table(results))
    share = shares(results)
    for model, rows in share.items():
        for clients, modes in rows.items():
            listed = ", ".join(f"{mode} {value:.0%}" for mode, value in modes.items())
            print(f"{model}, {clients} clients, share of in-process: {listed}")
    record = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average_at_start": load_at_start,
            "load_average_at_end": os.getloadavg(),
        },
        "preset": args.preset,
        "requests_per_client": args.requests,
        "clip_seconds": CLIP_SECONDS,
        "results": results,
        "share_of_in_process": share,
    }
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
