"""The Open Inference Protocol's gRPC door (package inference), from Python's grpcio.

A plain grpcio client with stubs that protoc generated from the project's
proto/inference/open_inference_grpc.proto (tests/inference/CMakeLists.txt), against the
real `actserve` binary on a free loopback port: the health and metadata calls, ModelInfer
in every datatype against PyTorch (grpc_torch_cases.py), the typed contents, every class
of bad request and the engine's limits (status code, a message naming the field, and the
server still serving after it), bearer tokens, the Prometheus counters, and ServerReady
turning false while the server drains.

tests/inference/node/grpc_door.test.js checks the same from Node; where the specification
leaves a choice, both expect what Triton does.
"""

import os
import re
import signal
import tempfile
import time
import unittest
import urllib.request

import grpc
import numpy as np
import torch

import actserve
import grpc_torch_cases as cases
from inference import open_inference_grpc_pb2 as pb
from inference import open_inference_grpc_pb2_grpc as pb_grpc
from server_process import ServerProcess

# ServerProcess already turns the HTTP and metrics ports off (the REST door has its own
# tests). No drain delay: stopping takes no longer than the calls.
SERVER_FLAGS = ("--drain_delay=0s",)
# The engine's limits, small enough to reach (every case is far below them).
MAX_ELEMENTS = 4096
MAX_RANK = 4
LIMIT_FLAGS = (f"--max_elements={MAX_ELEMENTS}", f"--max_rank={MAX_RANK}")
TIMEOUT_S = 60  # per call: generous, the machine may be busy compiling

SERVER = None
CHANNEL = None
STUB = None


def setUpModule():
    global SERVER, CHANNEL, STUB
    torch.set_num_threads(1)
    SERVER = ServerProcess(*SERVER_FLAGS, *LIMIT_FLAGS).start()
    CHANNEL = grpc.insecure_channel(SERVER.target)
    STUB = pb_grpc.GRPCInferenceServiceStub(CHANNEL)


def tearDownModule():
    CHANNEL.close()
    SERVER.stop_cleanly()


# ---------------------------------------------------------------------------------------
# Wire encoding, the client's own: little-endian, row-major, no padding.

NUMPY_DTYPES = {"FP32": np.dtype("<f4"), "FP64": np.dtype("<f8"), "FP16": np.dtype("<f2")}


def encode(values, datatype: str) -> bytes:
    """`values` (exact in `datatype`) as the datatype's little-endian bytes."""
    array = np.asarray(values, dtype=np.float64)
    if datatype == "BF16":
        # A bfloat16 is the upper half of the float32 of the same value.
        return (array.astype("<f4").view("<u4") >> 16).astype("<u2").tobytes()
    return array.astype(NUMPY_DTYPES[datatype]).tobytes()


def decode(raw: bytes, datatype: str) -> np.ndarray:
    if datatype == "BF16":
        halves = np.frombuffer(raw, dtype="<u2").astype("<u4")
        return (halves << 16).view("<f4").astype(np.float64)
    return np.frombuffer(raw, dtype=NUMPY_DTYPES[datatype]).astype(np.float64)


ELEMENT_BYTES = {"FP32": 4, "FP64": 8, "FP16": 2, "BF16": 2}


def parameter(kind: str, value) -> pb.InferParameter:
    return pb.InferParameter(**{kind: value})


def tensor(name: str, datatype: str, shape) -> pb.ModelInferRequest.InferInputTensor:
    return pb.ModelInferRequest.InferInputTensor(name=name, datatype=datatype,
                                                 shape=list(shape))


def relu_request(values=(-1.5, 2.0), request_id: str = "") -> pb.ModelInferRequest:
    """A good FP32 request of relu, the one each check of "still serving" sends."""
    return pb.ModelInferRequest(
        model_name="relu", id=request_id, inputs=[tensor("x", "FP32", [len(values)])],
        outputs=[pb.ModelInferRequest.InferRequestedOutputTensor(name="y")],
        raw_input_contents=[encode(values, "FP32")])


def case_request(case: cases.Case, datatype: str, inputs, request_id: str = "",
                 typed: bool = False) -> pb.ModelInferRequest:
    """The case's request: raw_input_contents, or with `typed` the fp32/fp64 contents."""
    request = pb.ModelInferRequest(model_name=case.model, id=request_id)
    for name, (kind, value) in case.parameters.items():
        request.parameters[name].CopyFrom(parameter(kind, value))
    for name in case.sent_inputs():
        values = inputs[name]
        entry = request.inputs.add(name=name, datatype=datatype, shape=list(values.shape))
        flat = values.flatten().tolist()
        if typed:
            field = {"FP32": "fp32_contents", "FP64": "fp64_contents"}[datatype]
            getattr(entry.contents, field).extend(flat)
        else:
            request.raw_input_contents.append(encode(flat, datatype))
    for name in case.outputs:
        request.outputs.add(name=name)
    return request


# ---------------------------------------------------------------------------------------

def server_state() -> str:
    """For failure messages: what the module's server says of itself, and its log's end."""
    ready = STUB.ServerReady(pb.ServerReadyRequest(), timeout=TIMEOUT_S).ready
    log = SERVER.log().splitlines()[-10:]
    return f"ServerReady {ready}; the server's log ends:\n" + "\n".join(log)


class ServingTestCase(unittest.TestCase):

    def assert_still_serving(self):
        """ServerLive, and a good inference with the right values."""
        self.assertTrue(STUB.ServerLive(pb.ServerLiveRequest(), timeout=TIMEOUT_S).live)
        reply = STUB.ModelInfer(relu_request((-1.5, 2.0, -0.0, 3.25)), timeout=TIMEOUT_S)
        np.testing.assert_array_equal(decode(reply.raw_output_contents[0], "FP32"),
                                      [0.0, 2.0, 0.0, 3.25])

    def assert_rpc_error(self, call, request, code: grpc.StatusCode, *fragments: str):
        """`call(request)` fails with `code` and a message holding every fragment; the
        server serves afterwards. Returns the message."""
        with self.assertRaises(grpc.RpcError) as caught:
            call(request, timeout=TIMEOUT_S)
        error = caught.exception
        message = error.details() or ""
        self.assertEqual(error.code(), code, message)
        for fragment in fragments:
            self.assertIn(fragment, message, f"the message must name {fragment!r}")
        self.assert_still_serving()
        return message


class HealthAndMetadataTest(ServingTestCase):

    def test_server_live_and_ready(self):
        self.assertTrue(STUB.ServerLive(pb.ServerLiveRequest(), timeout=TIMEOUT_S).live)
        self.assertTrue(STUB.ServerReady(pb.ServerReadyRequest(), timeout=TIMEOUT_S).ready)

    def test_server_metadata(self):
        reply = STUB.ServerMetadata(pb.ServerMetadataRequest(), timeout=TIMEOUT_S)
        self.assertEqual(reply.name, "actserve")
        self.assertEqual(reply.version, os.environ["ACTSERVE_VERSION"])
        # The extensions are names without spaces, each once.
        self.assertEqual(len(set(reply.extensions)), len(reply.extensions), reply.extensions)
        for extension in reply.extensions:
            self.assertRegex(extension, r"^\S+$")

    def catalogue(self):
        with actserve.Client(SERVER.target, timeout=TIMEOUT_S) as client:
            return [activation.name for activation in client.list_activations().activations]

    def test_every_activation_is_a_ready_model(self):
        names = self.catalogue()
        self.assertGreaterEqual(len(names), 20)
        for name in names:
            for version in ("", "1"):
                with self.subTest(model=name, version=version):
                    reply = STUB.ModelReady(pb.ModelReadyRequest(name=name, version=version),
                                            timeout=TIMEOUT_S)
                    if not reply.ready:
                        self.fail(f"ModelReady {name!r} is false; {server_state()}")

    def test_model_ready_of_an_unknown_model_or_version(self):
        self.assert_rpc_error(STUB.ModelReady, pb.ModelReadyRequest(name="no_such_model"),
                              grpc.StatusCode.NOT_FOUND, "no_such_model")
        message = self.assert_rpc_error(
            STUB.ModelReady, pb.ModelReadyRequest(name="relu", version="7"),
            grpc.StatusCode.NOT_FOUND, "7")
        self.assertIn("version", message.lower())

    def test_model_metadata(self):
        for name in self.catalogue():
            with self.subTest(model=name):
                reply = STUB.ModelMetadata(pb.ModelMetadataRequest(name=name),
                                           timeout=TIMEOUT_S)
                self.assertEqual(reply.name, name)
                self.assertEqual(list(reply.versions), ["1"])
                self.assertEqual(reply.platform, "actserve")
                inputs = [tensor.name for tensor in reply.inputs]
                outputs = [tensor.name for tensor in reply.outputs]
                if name == "prelu":
                    self.assertCountEqual(inputs, ["x", "dy", "weight"])
                    self.assertEqual(outputs, ["y", "dx", "dweight"])
                else:
                    self.assertCountEqual(inputs, ["x", "dy"])
                    self.assertEqual(outputs, ["y", "dx"])
                self.assertEqual(inputs[0], "x")
                for metadata in (*reply.inputs, *reply.outputs):
                    self.assertEqual(metadata.datatype, "FP32", metadata.name)
                    self.assertEqual(list(metadata.shape), [-1], metadata.name)

    def test_model_metadata_with_version_one(self):
        reply = STUB.ModelMetadata(pb.ModelMetadataRequest(name="gelu", version="1"),
                                   timeout=TIMEOUT_S)
        self.assertEqual(reply.name, "gelu")

    def test_model_metadata_of_an_unknown_model_or_version(self):
        self.assert_rpc_error(STUB.ModelMetadata, pb.ModelMetadataRequest(name="swishy"),
                              grpc.StatusCode.NOT_FOUND, "swishy")
        message = self.assert_rpc_error(
            STUB.ModelMetadata, pb.ModelMetadataRequest(name="gelu", version="2"),
            grpc.StatusCode.NOT_FOUND, "2")
        self.assertIn("version", message.lower())


class InferTest(ServingTestCase):
    """ModelInfer against PyTorch, every case in every datatype."""

    def check_reply(self, case: cases.Case, datatype: str, inputs,
                    reply: pb.ModelInferResponse, request_id: str):
        self.assertEqual(reply.model_name, case.model)
        self.assertEqual(reply.model_version, "1")
        self.assertEqual(reply.id, request_id)
        expected = cases.expected_of(case, inputs)
        self.assertEqual([output.name for output in reply.outputs], list(case.reply_outputs()))
        self.assertEqual(len(reply.raw_output_contents), len(reply.outputs))
        tolerance = cases.TOLERANCES[datatype]
        for output, raw in zip(reply.outputs, reply.raw_output_contents):
            value, scale = expected[output.name]
            self.assertEqual(output.datatype, datatype, output.name)
            self.assertEqual(list(output.shape), list(value.shape), output.name)
            self.assertEqual(len(raw), value.numel() * ELEMENT_BYTES[datatype], output.name)
            got = decode(raw, datatype)
            want = value.flatten().numpy()
            bound = tolerance["rtol"] * scale.flatten().numpy() + tolerance["atol"]
            bad = np.flatnonzero(~(np.abs(got - want) <= bound))
            if bad.size:
                i = bad[0]
                self.fail(f"{case.name} {datatype} {output.name}[{i}]: got {got[i]!r}, "
                          f"PyTorch {want[i]!r} (bound {bound[i]:.3g}); "
                          f"{bad.size} of {got.size} elements differ")

    def test_raw_contents_in_every_datatype(self):
        for case in cases.CASES:
            for datatype in cases.DATATYPES:
                with self.subTest(case=case.name, datatype=datatype):
                    inputs = cases.inputs_of(case, datatype)
                    request_id = f"{case.name} / {datatype}"
                    reply = STUB.ModelInfer(case_request(case, datatype, inputs, request_id),
                                            timeout=TIMEOUT_S)
                    self.check_reply(case, datatype, inputs, reply, request_id)

    def test_typed_contents(self):
        # FP32 and FP64 also travel as fp32_contents / fp64_contents; the reply is raw.
        for name in ("gelu approximate=tanh, y and dx",
                     "prelu weight input, every output, inputs out of order",
                     "leaky_relu negative_slope int, dx before y"):
            case = cases.case_named(name)
            for datatype in ("FP32", "FP64"):
                with self.subTest(case=case.name, datatype=datatype):
                    inputs = cases.inputs_of(case, datatype)
                    reply = STUB.ModelInfer(case_request(case, datatype, inputs, "typed",
                                                         typed=True), timeout=TIMEOUT_S)
                    self.check_reply(case, datatype, inputs, reply, "typed")

    def test_concurrent_calls_each_get_their_own_reply(self):
        # Every case in every datatype at once, on one channel: each reply matches its id.
        calls = []
        for case in cases.CASES:
            for datatype in cases.DATATYPES:
                inputs = cases.inputs_of(case, datatype)
                request_id = f"concurrent {case.name} / {datatype}"
                future = STUB.ModelInfer.future(
                    case_request(case, datatype, inputs, request_id), timeout=TIMEOUT_S)
                calls.append((case, datatype, inputs, request_id, future))
        for case, datatype, inputs, request_id, future in calls:
            with self.subTest(case=case.name, datatype=datatype):
                self.check_reply(case, datatype, inputs, future.result(), request_id)

    def test_without_an_id_the_reply_has_none(self):
        reply = STUB.ModelInfer(relu_request(), timeout=TIMEOUT_S)
        self.assertEqual(reply.id, "")

    def test_version_one_and_reserved_parameters(self):
        # Triton's "timeout" (microseconds) and "priority" are accepted beside the model's.
        request = relu_request((-2.0, 0.5), "reserved")
        request.model_version = "1"
        request.parameters["timeout"].CopyFrom(parameter("int64_param", 30_000_000))
        request.parameters["priority"].CopyFrom(parameter("int64_param", 1))
        reply = STUB.ModelInfer(request, timeout=TIMEOUT_S)
        self.assertEqual(reply.id, "reserved")
        np.testing.assert_array_equal(decode(reply.raw_output_contents[0], "FP32"), [0.0, 0.5])


    def test_timeout_zero_is_no_timeout(self):
        # Triton's request timeout: "The default is 0 which indicates that the request has
        # no timeout" (tritonserver.h, TRITONSERVER_InferenceRequestSetTimeoutMicroseconds).
        request = relu_request((-2.0, 0.5), "timeout 0")
        request.parameters["timeout"].CopyFrom(parameter("int64_param", 0))
        reply = STUB.ModelInfer(request, timeout=TIMEOUT_S)
        np.testing.assert_array_equal(decode(reply.raw_output_contents[0], "FP32"), [0.0, 0.5])


class BadRequestTest(ServingTestCase):
    """Every class of bad request: its status code, a message naming the field, and the
    server serving the next request."""

    def infer_fails(self, request, code, *fragments):
        return self.assert_rpc_error(STUB.ModelInfer, request, code, *fragments)

    def test_unknown_model(self):
        request = relu_request()
        request.model_name = "no_such_model"
        self.infer_fails(request, grpc.StatusCode.NOT_FOUND, "no_such_model")

    def test_unknown_version(self):
        request = relu_request()
        request.model_version = "7"
        message = self.infer_fails(request, grpc.StatusCode.NOT_FOUND, "7")
        self.assertIn("version", message.lower())

    def test_unknown_input_name(self):
        request = relu_request((1.0, 2.0))
        request.inputs.add(name="z", datatype="FP32", shape=[2])
        request.raw_input_contents.append(encode((1.0, 2.0), "FP32"))
        self.infer_fails(request, grpc.StatusCode.INVALID_ARGUMENT, "inputs[1].name")

    def test_repeated_input(self):
        request = relu_request((1.0, 2.0))
        request.inputs.add(name="x", datatype="FP32", shape=[2])
        request.raw_input_contents.append(encode((1.0, 2.0), "FP32"))
        self.infer_fails(request, grpc.StatusCode.INVALID_ARGUMENT, "inputs[1]")

    def test_missing_x(self):
        request = pb.ModelInferRequest(model_name="relu",
                                       inputs=[tensor("dy", "FP32", [2])],
                                       raw_input_contents=[encode((1.0, 1.0), "FP32")])
        message = self.infer_fails(request, grpc.StatusCode.INVALID_ARGUMENT, "inputs")
        self.assertRegex(message, r"\bx\b")

    def test_no_input_at_all(self):
        message = self.infer_fails(pb.ModelInferRequest(model_name="relu"),
                                   grpc.StatusCode.INVALID_ARGUMENT, "inputs")
        self.assertRegex(message, r"\bx\b")

    def test_unknown_output(self):
        request = relu_request()
        request.outputs[0].name = "z"
        self.infer_fails(request, grpc.StatusCode.INVALID_ARGUMENT, "outputs[0].name")

    def test_repeated_output(self):
        request = relu_request()
        request.outputs.add(name="y")
        self.infer_fails(request, grpc.StatusCode.INVALID_ARGUMENT, "outputs[1]")

    def test_dweight_of_a_model_without_weight(self):
        request = relu_request()
        request.outputs[0].name = "dweight"
        self.infer_fails(request, grpc.StatusCode.INVALID_ARGUMENT, "outputs[0].name")

    def test_datatype_mismatch_between_x_and_dy(self):
        request = relu_request((1.0, 2.0))
        request.inputs.add(name="dy", datatype="FP64", shape=[2])
        request.raw_input_contents.append(encode((1.0, 1.0), "FP64"))
        self.infer_fails(request, grpc.StatusCode.INVALID_ARGUMENT, "inputs[1].datatype")

    def test_shape_of_dy_differs_from_x(self):
        # Whatever the pass: a forward pass (y alone) does not read dy, but a request with a
        # malformed input is malformed all the same.
        for shape in ([1, 2], [3]):
            for outputs in (["y"], ["dx"], []):
                with self.subTest(shape=shape, outputs=outputs):
                    request = relu_request((1.0, 2.0))
                    del request.outputs[:]
                    for name in outputs:
                        request.outputs.add(name=name)
                    request.inputs.add(name="dy", datatype="FP32", shape=shape)
                    request.raw_input_contents.append(
                        encode([1.0] * int(np.prod(shape)), "FP32"))
                    self.infer_fails(request, grpc.StatusCode.INVALID_ARGUMENT, "inputs[1]")

    def test_unsupported_datatypes(self):
        for datatype, raw in (("INT32", np.array([1, 2], "<i4").tobytes()),
                              ("BOOL", b"\x01\x00"), ("fp32", encode((1.0, 2.0), "FP32")),
                              ("", encode((1.0, 2.0), "FP32"))):
            with self.subTest(datatype=datatype):
                request = pb.ModelInferRequest(model_name="relu",
                                               inputs=[tensor("x", datatype, [2])],
                                               raw_input_contents=[raw])
                self.infer_fails(request, grpc.StatusCode.INVALID_ARGUMENT,
                                 "inputs[0].datatype")

    def test_contents_and_raw_contents_both_given(self):
        request = relu_request((1.0, 2.0))
        request.inputs[0].contents.fp32_contents.extend([1.0, 2.0])
        self.infer_fails(request, grpc.StatusCode.INVALID_ARGUMENT, "contents")

    def test_typed_contents_of_the_wrong_type(self):
        request = pb.ModelInferRequest(model_name="relu", inputs=[tensor("x", "FP32", [2])])
        request.inputs[0].contents.fp64_contents.extend([1.0, 2.0])
        self.infer_fails(request, grpc.StatusCode.INVALID_ARGUMENT, "inputs[0]")

    def test_wrong_raw_byte_count(self):
        for raw in (encode((1.0, 2.0, 3.0), "FP32"), b"\x00" * 7, b""):
            with self.subTest(bytes=len(raw)):
                request = pb.ModelInferRequest(model_name="relu",
                                               inputs=[tensor("x", "FP32", [2])],
                                               raw_input_contents=[raw])
                message = self.infer_fails(request, grpc.StatusCode.INVALID_ARGUMENT)
                self.assertRegex(message, r"raw_input_contents\[0\]|inputs\[0\]")

    def test_typed_element_count_differs_from_shape(self):
        request = pb.ModelInferRequest(model_name="relu", inputs=[tensor("x", "FP32", [3])])
        request.inputs[0].contents.fp32_contents.extend([1.0, 2.0])
        self.infer_fails(request, grpc.StatusCode.INVALID_ARGUMENT, "inputs[0]")

    def test_raw_contents_count_differs_from_inputs(self):
        request = relu_request((1.0, 2.0))
        request.inputs.add(name="dy", datatype="FP32", shape=[2])
        self.infer_fails(request, grpc.StatusCode.INVALID_ARGUMENT, "raw_input_contents")

    def test_negative_shape(self):
        request = pb.ModelInferRequest(model_name="relu", inputs=[tensor("x", "FP32", [-2])],
                                       raw_input_contents=[b""])
        self.infer_fails(request, grpc.StatusCode.INVALID_ARGUMENT, "inputs[0].shape")

    def test_bad_parameter_type(self):
        for model, name, value in (("leaky_relu", "negative_slope",
                                    parameter("string_param", "0.2")),
                                   ("leaky_relu", "negative_slope",
                                    parameter("bool_param", True)),
                                   ("gelu", "approximate", parameter("int64_param", 1)),
                                   ("softmax", "dim", parameter("double_param", 1.5)),
                                   ("softmax", "dim", parameter("string_param", "1"))):
            with self.subTest(model=model, parameter=name, value=str(value)):
                request = relu_request()
                request.model_name = model
                request.parameters[name].CopyFrom(value)
                self.infer_fails(request, grpc.StatusCode.INVALID_ARGUMENT, name)

    def test_bad_parameter_value(self):
        # The text form's messages (actserve.v1's), word for word.
        for model, name, value, fragment in (
                ("softplus", "beta", parameter("double_param", 0.0),
                 "softplus: beta must be nonzero, got 0"),
                ("celu", "alpha", parameter("int64_param", 0),
                 "celu: alpha must be nonzero, got 0"),
                ("gelu", "approximate", parameter("string_param", "fast"),
                 "gelu: approximate must be one of none, tanh"),
                ("softshrink", "lambd", parameter("double_param", -0.5),
                 "softshrink: lambd must be >= 0, got -0.5")):
            with self.subTest(model=model, parameter=name):
                request = relu_request()
                request.model_name = model
                request.parameters[name].CopyFrom(value)
                self.infer_fails(request, grpc.StatusCode.INVALID_ARGUMENT, fragment)

    def test_softmax_dim_out_of_range(self):
        request = relu_request()
        request.model_name = "softmax"
        request.parameters["dim"].CopyFrom(parameter("int64_param", 3))
        self.infer_fails(request, grpc.StatusCode.INVALID_ARGUMENT, "dim")

    def test_reserved_parameter_of_the_wrong_type_or_value(self):
        for value in (parameter("string_param", "1s"), parameter("int64_param", -1)):
            with self.subTest(timeout=str(value)):
                request = relu_request()
                request.parameters["timeout"].CopyFrom(value)
                self.infer_fails(request, grpc.StatusCode.INVALID_ARGUMENT,
                                 "parameters.timeout")

    def test_unknown_parameter(self):
        request = relu_request()
        request.parameters["alpha"].CopyFrom(parameter("double_param", 1.0))
        self.infer_fails(request, grpc.StatusCode.INVALID_ARGUMENT, "alpha")

    def test_prelu_weight_of_the_wrong_size(self):
        case = cases.case_named("prelu forward with weight")  # x [4, 2]: 2 channels
        inputs = cases.inputs_of(case, "FP32")
        inputs["weight"] = torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64)
        request = case_request(case, "FP32", inputs)
        self.infer_fails(request, grpc.StatusCode.INVALID_ARGUMENT, "weight")

    def test_more_elements_than_the_limit(self):
        # The engine's limit, in the door's words: no actserve.v1 field (items[...]).
        message = self.infer_fails(relu_request(np.zeros(MAX_ELEMENTS + 1)),
                                   grpc.StatusCode.RESOURCE_EXHAUSTED, str(MAX_ELEMENTS))
        self.assertNotIn("items[", message)

    def test_more_dimensions_than_the_limit(self):
        request = pb.ModelInferRequest(model_name="relu",
                                       inputs=[tensor("x", "FP32", [1] * (MAX_RANK + 1))],
                                       raw_input_contents=[encode([1.0], "FP32")])
        self.infer_fails(request, grpc.StatusCode.RESOURCE_EXHAUSTED, "inputs[0].shape")

    def test_prelu_weight_as_input_and_parameter(self):
        case = cases.case_named("prelu forward with weight")
        inputs = cases.inputs_of(case, "FP32")
        request = case_request(case, "FP32", inputs)
        request.parameters["weight"].CopyFrom(parameter("double_param", 0.25))
        self.infer_fails(request, grpc.StatusCode.INVALID_ARGUMENT, "weight")


class AuthTest(unittest.TestCase):
    """A server with --auth_token_file: inference and metadata need the token, the
    probes (ServerLive, ServerReady, ModelReady) do not."""

    def test_bearer_token(self):
        with tempfile.TemporaryDirectory(prefix="actserve-oip-auth-") as directory:
            tokens = os.path.join(directory, "tokens")
            with open(tokens, "w") as file:
                file.write("oip-secret-token\n")
            with ServerProcess(f"--auth_token_file={tokens}", *SERVER_FLAGS) as server, \
                    grpc.insecure_channel(server.target) as channel:
                stub = pb_grpc.GRPCInferenceServiceStub(channel)
                # The probes stay open, as grpc.health.v1 does.
                self.assertTrue(stub.ServerLive(pb.ServerLiveRequest(), timeout=TIMEOUT_S).live)
                self.assertTrue(stub.ServerReady(pb.ServerReadyRequest(),
                                                 timeout=TIMEOUT_S).ready)
                self.assertTrue(stub.ModelReady(pb.ModelReadyRequest(name="relu"),
                                                timeout=TIMEOUT_S).ready)
                good = (("authorization", "Bearer oip-secret-token"),)
                guarded = ((stub.ModelInfer, relu_request()),
                           (stub.ServerMetadata, pb.ServerMetadataRequest()),
                           (stub.ModelMetadata, pb.ModelMetadataRequest(name="relu")))
                for call, request in guarded:
                    for metadata in ((), (("authorization", "Bearer wrong-token"),)):
                        with self.subTest(call=call._method, metadata=metadata):
                            with self.assertRaises(grpc.RpcError) as caught:
                                call(request, timeout=TIMEOUT_S, metadata=metadata)
                            self.assertEqual(caught.exception.code(),
                                             grpc.StatusCode.UNAUTHENTICATED,
                                             caught.exception.details())
                    call(request, timeout=TIMEOUT_S, metadata=good)
                reply = stub.ModelInfer(relu_request((-1.0, 4.0), "with token"),
                                        timeout=TIMEOUT_S, metadata=good)
                self.assertEqual(reply.id, "with token")
                np.testing.assert_array_equal(decode(reply.raw_output_contents[0], "FP32"),
                                              [0.0, 4.0])


class MetricsTest(unittest.TestCase):
    """The door's calls are counted in the server's Prometheus metrics by method and code."""

    def test_model_infer_is_counted(self):
        with ServerProcess(*SERVER_FLAGS, "--metrics_address=127.0.0.1:0") as server, \
                grpc.insecure_channel(server.target) as channel:
            metrics_port = int(re.search(r"metrics on port (\d+)", server.log()).group(1))
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            for _ in range(3):
                stub.ModelInfer(relu_request(), timeout=TIMEOUT_S)
            bad = relu_request()
            bad.model_name = "no_such_model"
            with self.assertRaises(grpc.RpcError):
                stub.ModelInfer(bad, timeout=TIMEOUT_S)
            # The counters are updated as each call ends, before its reply is sent.
            with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics",
                                        timeout=TIMEOUT_S) as response:
                text = response.read().decode()
            counts = {}
            for labels, value in re.findall(r"^actserve_requests_total\{([^}]*)\} (\S+)$",
                                            text, re.MULTILINE):
                pairs = dict(re.findall(r'(\w+)="([^"]*)"', labels))
                counts[(pairs.get("method"), pairs.get("code"))] = float(value)
            self.assertEqual(counts.get(("ModelInfer", "OK")), 3, counts)
            self.assertEqual(counts.get(("ModelInfer", "NOT_FOUND")), 1, counts)


class DrainTest(unittest.TestCase):
    """SIGTERM starts the drain: ServerReady turns false while calls are still served."""

    def test_server_ready_false_while_draining(self):
        # --drain_delay keeps the server answering after SIGTERM; the second SIGTERM
        # (stop()) ends the delay.
        server = ServerProcess(*SERVER_FLAGS, "--drain_delay=60s").start()
        try:
            with grpc.insecure_channel(server.target) as channel:
                stub = pb_grpc.GRPCInferenceServiceStub(channel)
                self.assertTrue(stub.ServerReady(pb.ServerReadyRequest(),
                                                 timeout=TIMEOUT_S).ready)
                os.kill(server.pid, signal.SIGTERM)
                deadline = time.monotonic() + 30
                while stub.ServerReady(pb.ServerReadyRequest(), timeout=TIMEOUT_S).ready:
                    self.assertLess(time.monotonic(), deadline,
                                    "ServerReady stayed true after SIGTERM")
                    time.sleep(0.05)
                self.assertTrue(stub.ServerLive(pb.ServerLiveRequest(), timeout=TIMEOUT_S).live)
                # Calls on their way are still served during the delay.
                reply = stub.ModelInfer(relu_request((-3.0, 3.0)), timeout=TIMEOUT_S)
                np.testing.assert_array_equal(decode(reply.raw_output_contents[0], "FP32"),
                                              [0.0, 3.0])
        finally:
            exit_code = server.stop()
        self.assertEqual(exit_code, 0)


if __name__ == "__main__":
    unittest.main()
