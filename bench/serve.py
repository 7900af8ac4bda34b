"""Benchmark the model server on loopback against calling the SavedModel in-process.

For sentiment (one sentence per request) and speech-to-text (one two-second clip per
request): throughput (items/s) and p50/p99 latency at 1, 8 and 32 concurrent clients,
over REST (JSON) and gRPC (binary tensors), with server-side batching on and off, beside
the SavedModel called in this process on batches of as many items as there are clients
(the limit the server approaches). The models are small untrained exports of each
pipeline's smoke preset (``tests/serving/exports.py``): the numbers measure the server,
not a trained model. Each client keeps one connection and sends a request encoded once,
so the client's own encoding is not counted. Prints a table and writes the numbers to
bench/serve.json.

Examples:
  python -m bench.serve                  # what `make bench-serve` does
  python -m bench.serve --requests 2     # fewer requests per client (a quick look)
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
MODELS = ("sentiment", "speech")
CLIP_SECONDS = 2.0
SENTENCE = "a gorgeous, witty and moving film that never once loses its nerve"
DEFAULT_OUT = Path(__file__).with_name("serve.json")
MAX_BATCH_SIZE = 32  # the server's batch bound: the largest client count


def _request_item(model: str, rate: int):
    """One request's single item: a sentence, or a two-second clip (a tone with noise)."""
    if model == "sentiment":
        return SENTENCE
    time_axis = np.arange(int(CLIP_SECONDS * rate)) / rate
    noise = np.random.default_rng(0).normal(0, 0.01, time_axis.size)
    return (0.3 * np.sin(2 * np.pi * 220 * time_axis) + noise).astype(np.float32)


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
    value = item if isinstance(item, str) else item.tolist()
    body = json.dumps({"instances": [value]}).encode()
    return _client, (address, f"/v1/models/{model}:predict", body)


def _grpc_call(address: str, model: str, item):
    """The gRPC client's call: a ``PredictRequest`` built once (the tensor in binary)."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    name = "text" if model == "sentiment" else "audio"
    request.inputs[name].CopyFrom(tf.make_tensor_proto(np.asarray([item])))
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


def measure_in_process(saved_model: Path, model: str, item, batch: int, calls: int) -> dict:
    """The SavedModel's ``serving_default`` called here on batches of ``batch`` items."""
    import tensorflow as tf

    function = tf.saved_model.load(str(saved_model)).signatures["serving_default"]
    name = "text" if model == "sentiment" else "audio"
    inputs = {
        name: tf.constant(np.stack([item] * batch) if model != "sentiment" else [item] * batch)
    }
    function(**inputs)  # warm-up
    latencies = []
    started = time.perf_counter()
    for _ in range(calls):
        call_started = time.perf_counter()
        function(**inputs)
        latencies.append(time.perf_counter() - call_started)
    return _summary(latencies, calls * batch, time.perf_counter() - started)


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=6, help="requests per client per point")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the JSON file written")
    args = parser.parse_args(argv)

    from tests.serving import exports
    from tests.serving.server_process import running_server

    results: dict = {model: {} for model in MODELS}
    with tempfile.TemporaryDirectory() as folder:
        models_dir = Path(folder)
        for model in MODELS:
            exports.export(model, models_dir / model / "1")
        items = {model: _request_item(model, exports.SPEECH_RATE) for model in MODELS}
        for model in MODELS:
            for clients in CONCURRENCY:
                calls = max(3, args.requests)
                results[model][clients] = {
                    "in-process": measure_in_process(
                        models_dir / model / "1", model, items[model], clients, calls
                    )
                }
        for batching in (True, False):
            mode = "batching" if batching else "no batching"
            settings = {"enable_batching": batching, "max_batch_size": MAX_BATCH_SIZE}
            with running_server(models_dir, **settings) as server:
                rest = server.rest.removeprefix("http://")
                for model in MODELS:
                    calls = {
                        f"REST {mode}": _rest_call(rest, model, items[model]),
                        f"gRPC {mode}": _grpc_call(server.grpc, model, items[model]),
                    }
                    for clients in CONCURRENCY:
                        for name, call in calls.items():
                            row = measure_server(call, clients, args.requests)
                            results[model][clients][name] = row
                            print(f"{model} {clients} {name}: {row}", flush=True)
    speech = results["speech"][32]
    shares = {
        api: speech[f"{api} batching"]["throughput"] / speech["in-process"]["throughput"]
        for api in ("REST", "gRPC")
    }
    table = _table(results)
    print(table)
    for api, share in shares.items():
        print(f"speech, 32 clients, {api} with batching: {share:.0%} of in-process throughput")
    record = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "requests_per_client": args.requests,
        "clip_seconds": CLIP_SECONDS,
        "results": results,
        "speech_32_batching_share_of_in_process": shares,
    }
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
