"""TensorFlow Serving's gRPC API on the ``tensorflow-serving-api`` service definitions:
``PredictionService.Predict`` and ``GetModelMetadata``, ``ModelService.GetModelStatus``."""

from __future__ import annotations

import logging
import time
from concurrent import futures

import grpc
import tensorflow as tf
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from pipelines.errors import UserError
from pipelines.serving.codec import decode_protos
from pipelines.serving.errors import BadRequestError, NotFoundError, ServingError
from pipelines.serving.repository import LoadedVersion
from pipelines.serving.rest import signature_def_map
from pipelines.serving.rest_body import DEFAULT_SIGNATURE
from pipelines.serving.service import ModelService

log = logging.getLogger(__name__)


def _version_of(service: ModelService, model_spec) -> LoadedVersion:
    """The loaded version a ``ModelSpec`` names (404 for a label: none are configured)."""
    if model_spec.version_label:
        raise NotFoundError(f"version label {model_spec.version_label!r} is not configured")
    number = model_spec.version.value if model_spec.HasField("version") else None
    return service.repository.get(model_spec.name, number)


class _Handler:
    """Runs one call: counts it in the metrics and turns errors into gRPC status codes."""

    def __init__(self, service: ModelService):
        self.service = service

    def call(self, method: str, model_spec, context, body):
        started, label, code = time.monotonic(), ("", ""), grpc.StatusCode.OK
        try:
            version = _version_of(self.service, model_spec)
            label = (version.name, str(version.version))
            return body(version)
        except ServingError as error:
            code = error.grpc_code
            message = error.message
        except Exception as error:  # noqa: BLE001 - a fault of ours: logged, never sent
            log.error("gRPC %s failed", method, exc_info=error)
            code = grpc.StatusCode.INTERNAL
            message = "internal error: the server could not answer this request (see its log)"
        finally:
            self.service.observe(*label, "grpc", method, started, code.name)
        context.abort(code, message)


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer, _Handler):
    """``Predict`` and ``GetModelMetadata``."""

    def Predict(self, request, context):  # noqa: N802 - the service's method name
        def body(version: LoadedVersion):
            with self.service.slot():
                signature = request.model_spec.signature_name or DEFAULT_SIGNATURE
                specs = self.service.specs(version, signature)
                items = [
                    p.tensor_shape.dim[0].size
                    for name, p in request.inputs.items()
                    if p.tensor_shape.dim and name in specs and specs[name].batched
                ]
                self.service.check_items(version, max(items, default=1))
                inputs = decode_protos(request.inputs, specs, version.limits)
                outputs = self.service.predict_async(version, signature, inputs).result()
            wanted = list(request.output_filter) or sorted(outputs)
            unknown = sorted(set(wanted) - set(outputs))
            if unknown:
                raise BadRequestError(f"output_filter names unknown outputs {unknown}")
            response = predict_pb2.PredictResponse()
            response.model_spec.name = version.name
            response.model_spec.version.value = version.version
            response.model_spec.signature_name = signature
            for name in wanted:
                response.outputs[name].CopyFrom(tf.make_tensor_proto(outputs[name]))
            return response

        return self.call("predict", request.model_spec, context, body)

    def GetModelMetadata(self, request, context):  # noqa: N802
        def body(version: LoadedVersion):
            fields = set(request.metadata_field)
            if fields != {"signature_def"}:
                raise BadRequestError('metadata_field must be ["signature_def"]')
            response = get_model_metadata_pb2.GetModelMetadataResponse()
            response.model_spec.name = version.name
            response.model_spec.version.value = version.version
            response.metadata["signature_def"].Pack(signature_def_map(version))
            return response

        return self.call("metadata", request.model_spec, context, body)


class ModelStatusServicer(model_service_pb2_grpc.ModelServiceServicer, _Handler):
    """``GetModelStatus``."""

    def GetModelStatus(self, request, context):  # noqa: N802
        def body(version: LoadedVersion):
            response = get_model_status_pb2.GetModelStatusResponse()
            status = response.model_version_status.add()
            status.version = version.version
            status.state = get_model_status_pb2.ModelVersionStatus.AVAILABLE
            return response

        return self.call("status", request.model_spec, context, body)


def create_grpc_server(service: ModelService, address: str) -> tuple[grpc.Server, int]:
    """A gRPC server over ``service`` bound to ``address`` (not started); its port."""
    limit = service.options.max_body_bytes
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=service.options.max_in_flight + 4),
        options=[("grpc.max_receive_message_length", limit), ("grpc.max_send_message_length", -1)],
    )
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionServicer(service), server
    )
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelStatusServicer(service), server)
    try:
        port = server.add_insecure_port(address)
    except RuntimeError:  # grpcio raises where older versions returned 0
        port = 0
    if port == 0:
        raise UserError(
            f"cannot listen on {address} (gRPC): the address is in use or not this machine's"
        )
    return server, port
