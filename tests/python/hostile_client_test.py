"""Hostile and careless clients against the real ``actserve`` binary, over a real socket.

Each case sends what an attacker or a buggy client would, with a stock grpcio channel and
hand-made bytes where protobuf would refuse to write them, and asserts four things:
the status code and message; the server's peak memory (VmHWM of its process, read from
/proc before and after) stays within a bound linear in the request's bytes; the call ends
within its deadline (the deadline is the bound, nothing is timed); and the server still
serves a valid call afterwards. docs/errors.md lists every class and its test.

The servers run with --fill_buffers_with_canary: every tensor buffer starts as the canary
pattern, so a reply byte that the call did not write shows up as a canary element, and
every reply is searched for one.
"""

import threading
import unittest

import grpc
import numpy as np

from actserve.v1 import activation_pb2 as pb
from actserve.spec import parse_activation
from server_process import ServerProcess

_COMPUTE = "/actserve.v1.ActivationService/Compute"
_STREAM = "/actserve.v1.ActivationService/ComputeStream"
_LIST = "/actserve.v1.ActivationService/ListActivations"
_MODEL_INFER = "/inference.GRPCInferenceService/ModelInfer"
_MIB = 1 << 20

# server/buffer_pool.h kCanary, read as each dtype's elements.
_CANARY = bytes([0xA5, 0x7F, 0xC3, 0x7F, 0x96, 0x7F, 0xF5, 0x7F])
_CANARY_ELEMENTS = {
    pb.DTYPE_FLOAT16: set(np.frombuffer(_CANARY, "<u2").tolist()),
    pb.DTYPE_BFLOAT16: set(np.frombuffer(_CANARY, "<u2").tolist()),
    pb.DTYPE_FLOAT32: set(np.frombuffer(_CANARY, "<u4").tolist()),
    pb.DTYPE_FLOAT64: set(np.frombuffer(_CANARY, "<u8").tolist()),
}
_BITS = {pb.DTYPE_FLOAT16: "<u2", pb.DTYPE_BFLOAT16: "<u2", pb.DTYPE_FLOAT32: "<u4",
         pb.DTYPE_FLOAT64: "<u8"}
_NUMPY = {pb.DTYPE_FLOAT16: "<f2", pb.DTYPE_FLOAT32: "<f4", pb.DTYPE_FLOAT64: "<f8"}
_SIZE = {pb.DTYPE_FLOAT16: 2, pb.DTYPE_BFLOAT16: 2, pb.DTYPE_FLOAT32: 4,
         pb.DTYPE_FLOAT64: 8}


def peak_rss_bytes(pid: int) -> int:
    """VmHWM of `pid`: the most resident memory it has had since it started."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM line")


def tensor(dtype, shape, data: bytes) -> pb.Tensor:
    return pb.Tensor(dtype=dtype, shape=list(shape), data=data)


def values(dtype, shape, seed=0) -> bytes:
    """Finite values in [-4, 4) of `dtype` (bfloat16: float32 truncated)."""
    count = int(np.prod(shape)) if shape else 1
    rng = np.random.default_rng(seed)
    x = rng.uniform(-4, 4, count)
    if dtype == pb.DTYPE_BFLOAT16:
        return (x.astype("<f4").view("<u4") >> 16).astype("<u2").tobytes()
    return x.astype(_NUMPY[dtype]).tobytes()


def item(spec: str, dtype, shape, mode=pb.MODE_FORWARD_BACKWARD, dy=True, weight=None,
         seed=0) -> pb.ComputeItem:
    weight_proto = None
    if weight is not None:
        weight_proto = tensor(dtype, [len(weight) // _SIZE[dtype]], weight)
    result = pb.ComputeItem(input=tensor(dtype, shape, values(dtype, shape, seed)),
                            activation=parse_activation(spec).to_proto(weight_proto),
                            mode=mode)
    if dy:
        result.grad_output.CopyFrom(tensor(dtype, shape, values(dtype, shape, seed + 1)))
    return result


def canary_elements(t: pb.Tensor) -> int:
    """How many elements of `t`'s data are canary elements."""
    if not t.data:
        return 0
    bits = np.frombuffer(t.data, _BITS[t.dtype])
    return int(np.isin(bits, list(_CANARY_ELEMENTS[t.dtype])).sum())


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


class ServerUnderAttack(unittest.TestCase):
    """A server for each test, so that its VmHWM measures that test alone, and the
    assertions every hostile case makes."""

    def start(self, *flags: str) -> ServerProcess:
        server = ServerProcess("--fill_buffers_with_canary", *flags).start()
        self.addCleanup(server.stop)
        self.channel = grpc.insecure_channel(
            server.target, options=[("grpc.max_receive_message_length", 512 * _MIB),
                                    ("grpc.max_send_message_length", 512 * _MIB)])
        self.addCleanup(self.channel.close)
        self.server = server
        self.baseline = peak_rss_bytes(server.pid)
        return server

    def call(self, request, timeout=30.0):
        """Sends `request` (a ComputeRequest or raw bytes); returns (code, message,
        ComputeResponse or None)."""
        data = request if isinstance(request, bytes) else request.SerializeToString()
        method = self.channel.unary_unary(_COMPUTE)
        try:
            reply = method(data, timeout=timeout)
        except grpc.RpcError as error:
            return error.code(), error.details(), None
        response = pb.ComputeResponse.FromString(reply)
        self.assertNoCanary(response)
        return grpc.StatusCode.OK, "", response

    def assertNoCanary(self, response: pb.ComputeResponse):
        for index, result in enumerate(response.results):
            for name in ("output", "grad_input", "grad_weight"):
                t = getattr(result, name)
                self.assertEqual(canary_elements(t), 0,
                                 f"results[{index}].{name} carries bytes the call never wrote")

    def assertPeakGrowthBelow(self, limit_bytes: int):
        growth = peak_rss_bytes(self.server.pid) - self.baseline
        self.assertLess(growth, limit_bytes,
                        f"peak RSS grew {growth / _MIB:.0f} MiB, over {limit_bytes / _MIB:.0f}")

    def assertStillServes(self):
        code, message, response = self.call(pb.ComputeRequest(
            items=[item("relu", pb.DTYPE_FLOAT32, [4], pb.MODE_FORWARD, dy=False)]))
        self.assertEqual(code, grpc.StatusCode.OK, message)
        self.assertEqual(len(response.results[0].output.data), 16)


class HostileClientTest(ServerUnderAttack):
    """actserve.v1's Compute and ComputeStream."""

    # --- Cost bounded by the request's bytes ---

    def test_prelu_one_weight_per_channel_on_millions_of_channels(self):
        # 8 MiB of float16 input and 8 MiB of weights: the weight gradient's scratch used to
        # be channels x chunks long doubles (4.2 GiB here, 38 s).
        self.start()
        channels = 1 << 22
        shape = [1, channels]
        x = np.random.default_rng(1).uniform(-2, 2, channels).astype("<f2")
        w = np.full(channels, 0.25, "<f2")
        request = pb.ComputeRequest(items=[pb.ComputeItem(
            input=tensor(pb.DTYPE_FLOAT16, shape, x.tobytes()),
            activation=parse_activation("prelu").to_proto(
                tensor(pb.DTYPE_FLOAT16, [channels], w.tobytes())),
            mode=pb.MODE_BACKWARD)])
        code, message, response = self.call(request, timeout=60)
        self.assertEqual(code, grpc.StatusCode.OK, message)
        dw = np.frombuffer(response.results[0].grad_weight.data, "<f2")
        # dy = 1: dw_c = x_c where x_c <= 0, else 0 (one element per channel).
        np.testing.assert_array_equal(dw, np.where(x <= 0, x, np.float16(0)))
        self.assertPeakGrowthBelow(300 * _MIB)
        self.assertStillServes()

    def test_a_million_empty_items(self):
        # 14 MiB of zero-element items: refused while parsing, by --max_items.
        self.start()
        one = pb.ComputeRequest(items=[pb.ComputeItem(
            input=tensor(pb.DTYPE_FLOAT32, [0], b""),
            activation=parse_activation("relu").to_proto())]).SerializeToString()
        code, message, _ = self.call(one * (1 << 20))
        self.assertEqual(code, grpc.StatusCode.RESOURCE_EXHAUSTED)
        self.assertIn("more than 16384 items", message)
        self.assertIn("--max_items", message)
        self.assertPeakGrowthBelow(100 * _MIB)
        # At the limit the batch is served, one empty result per item.
        code, message, response = self.call(one * 16384)
        self.assertEqual(code, grpc.StatusCode.OK, message)
        self.assertEqual(len(response.results), 16384)
        self.assertEqual(list(response.results[16383].output.shape), [0])
        self.assertPeakGrowthBelow(100 * _MIB)
        self.assertStillServes()

    def test_a_shape_of_millions_of_dimensions(self):
        # 4 MiB of packed shape entries in one tensor: refused while parsing, by --max_rank.
        self.start()
        request = pb.ComputeRequest(items=[pb.ComputeItem(
            input=pb.Tensor(dtype=pb.DTYPE_FLOAT32, shape=[1] * (4 * _MIB)),
            activation=parse_activation("relu").to_proto())])
        code, message, _ = self.call(request)
        self.assertEqual(code, grpc.StatusCode.RESOURCE_EXHAUSTED)
        self.assertIn("items[0].input.shape", message)
        self.assertIn("--max_rank", message)
        self.assertPeakGrowthBelow(100 * _MIB)
        # 32 dimensions are fine; 33 are not.
        ok = pb.ComputeRequest(items=[item("relu", pb.DTYPE_FLOAT32, [1] * 32, dy=False)])
        self.assertEqual(self.call(ok)[0], grpc.StatusCode.OK)
        over = pb.ComputeRequest(items=[item("relu", pb.DTYPE_FLOAT32, [1] * 33, dy=False)])
        self.assertEqual(self.call(over)[0], grpc.StatusCode.RESOURCE_EXHAUSTED)
        self.assertStillServes()

    def test_a_prelu_weight_of_millions_of_dimensions(self):
        # The activation sub-message is parsed by protobuf, where each packed byte of shape
        # becomes an 8-byte entry (192 MiB here): its entries are counted first.
        self.start()
        def field(number: int, payload: bytes) -> bytes:
            return _varint(number << 3 | 2) + _varint(len(payload)) + payload
        weight = field(2, b"\x01" * (24 * _MIB))  # Tensor.shape, packed
        activation = field(4, field(1, weight))    # Activation.prelu.weight
        x = item("prelu", pb.DTYPE_FLOAT32, [1, 4], dy=False).input.SerializeToString()
        request = field(1, field(1, x) + field(2, activation))
        code, message, _ = self.call(request)
        self.assertEqual(code, grpc.StatusCode.RESOURCE_EXHAUSTED, message)
        self.assertIn("items[0].activation.prelu.weight.shape: more than 32 dimensions",
                      message)
        self.assertIn("--max_rank", message)
        self.assertPeakGrowthBelow(120 * _MIB)
        self.assertStillServes()

    def test_tensor_memory_of_calls_in_flight_is_capped(self):
        self.start("--max_tensor_memory_bytes=67108864")  # 64 MiB
        # 40 MiB in, forward and backward: the output overwrites the input, the gradient
        # needs 40 MiB more: 80 MiB, over the cap.
        shape = [10 * _MIB]
        request = pb.ComputeRequest(items=[item("gelu", pb.DTYPE_FLOAT32, shape, dy=False)])
        code, message, _ = self.call(request)
        self.assertEqual(code, grpc.StatusCode.RESOURCE_EXHAUSTED)
        self.assertIn("--max_tensor_memory_bytes", message)
        # The forward pass alone computes in place and fits.
        request.items[0].mode = pb.MODE_FORWARD
        code, message, response = self.call(request)
        self.assertEqual(code, grpc.StatusCode.OK, message)
        self.assertEqual(len(response.results[0].output.data), 40 * _MIB)
        self.assertStillServes()

    def test_the_engines_scratch_counts_against_the_tensor_memory_limit(self):
        # PReLU with 4 Mi float32 channels, backward: 16 MiB of input (the gradient is
        # computed over it), 16 MiB of weight gradient, and 32 MiB of the engine's own
        # scratch (the weights widened to double): 64 MiB, over a 48 MiB limit, although
        # the buffers alone (32 MiB) would fit.
        self.start("--max_tensor_memory_bytes=50331648")
        channels = 1 << 22
        x = np.random.default_rng(2).uniform(-2, 2, channels).astype("<f4")
        w = np.full(channels, 0.5, "<f4")
        request = pb.ComputeRequest(items=[pb.ComputeItem(
            input=tensor(pb.DTYPE_FLOAT32, [1, channels], x.tobytes()),
            activation=parse_activation("prelu").to_proto(
                tensor(pb.DTYPE_FLOAT32, [channels], w.tobytes())),
            mode=pb.MODE_BACKWARD)])
        code, message, _ = self.call(request, timeout=60)
        self.assertEqual(code, grpc.StatusCode.RESOURCE_EXHAUSTED)
        self.assertIn("--max_tensor_memory_bytes", message)
        # With one weight the scratch is a few bytes, and the same input fits.
        request.items[0].activation.prelu.ClearField("weight")
        code, message, response = self.call(request, timeout=60)
        self.assertEqual(code, grpc.StatusCode.OK, message)
        self.assertEqual(len(response.results[0].grad_weight.data), 4)
        self.assertStillServes()

    def test_list_activations_reports_the_limits(self):
        self.start("--max_items=100", "--max_rank=8", "--max_streams=5",
                   "--max_tensor_memory_bytes=1073741824")
        reply = self.channel.unary_unary(_LIST)(b"", timeout=10)
        limits = pb.ListActivationsResponse.FromString(reply).server.limits
        self.assertEqual((limits.max_items, limits.max_rank, limits.max_streams,
                          limits.max_tensor_memory_bytes), (100, 8, 5, 1 << 30))
        self.assertEqual(limits.max_inflight, 64)

    # --- No byte of one call in another's reply ---

    def test_weight_gradient_of_an_empty_input_is_zero_not_stale(self):
        self.start()
        # A call leaves 0x41 bytes in a pooled buffer...
        filler = pb.ComputeRequest(items=[pb.ComputeItem(
            input=tensor(pb.DTYPE_FLOAT32, [262144], b"\x41" * (1 * _MIB)),
            activation=parse_activation("relu").to_proto(), mode=pb.MODE_FORWARD)])
        self.assertEqual(self.call(filler)[0], grpc.StatusCode.OK)
        # ...which the weight gradient of an empty input used to return.
        request = pb.ComputeRequest(items=[pb.ComputeItem(
            input=tensor(pb.DTYPE_FLOAT32, [0, 262144], b""),
            activation=parse_activation("prelu").to_proto(
                tensor(pb.DTYPE_FLOAT32, [262144], bytes(1 * _MIB))),
            mode=pb.MODE_BACKWARD)])
        code, message, response = self.call(request)
        self.assertEqual(code, grpc.StatusCode.OK, message)
        self.assertEqual(response.results[0].grad_weight.data, bytes(1 * _MIB))
        # The default weight of an empty float64 input: 8 zero bytes, not heap contents.
        request = pb.ComputeRequest(items=[pb.ComputeItem(
            input=tensor(pb.DTYPE_FLOAT64, [0], b""),
            activation=parse_activation("prelu").to_proto(), mode=pb.MODE_BACKWARD)])
        code, message, response = self.call(request)
        self.assertEqual(code, grpc.StatusCode.OK, message)
        self.assertEqual(response.results[0].grad_weight.data, bytes(8))
        self.assertEqual(list(response.results[0].grad_weight.shape), [1])

    def test_no_reply_carries_the_canary(self):
        # Every activation, dtype and mode, on empty, scalar, small, odd and pooled-size
        # (>= 256 KiB) shapes; PReLU with one weight and with one per channel.
        self.start()
        reply = self.channel.unary_unary(_LIST)(b"", timeout=10)
        names = [a.name for a in pb.ListActivationsResponse.FromString(reply).activations]
        self.assertIn("prelu", names)
        shapes = [[0], [3, 0], [], [5], [2, 3, 7], [2, 70001]]
        dtypes = [pb.DTYPE_FLOAT32, pb.DTYPE_FLOAT64, pb.DTYPE_FLOAT16, pb.DTYPE_BFLOAT16]
        modes = [pb.MODE_FORWARD, pb.MODE_BACKWARD, pb.MODE_FORWARD_BACKWARD]
        specs = [n if n != "threshold" else "threshold(threshold=0.5, value=-1)"
                 for n in names]
        checked = 0
        for spec in specs:
            for dtype in dtypes:
                items = []
                for mode in modes:
                    for shape in shapes:
                        for dy in (False, True):
                            items.append(item(spec, dtype, shape, mode, dy=dy))
                            if spec == "prelu" and len(shape) >= 2:
                                weight = values(dtype, [shape[1]], seed=9)
                                items.append(item(spec, dtype, shape, mode, dy=dy,
                                                  weight=weight))
                code, message, response = self.call(pb.ComputeRequest(items=items))
                self.assertEqual(code, grpc.StatusCode.OK, f"{spec}: {message}")
                self.assertEqual(len(response.results), len(items))
                checked += len(items)
        self.assertGreater(checked, 1000)

    # --- The decoder agrees with protobuf ---

    def test_nested_length_beyond_its_parent_is_malformed(self):
        self.start()
        # items[0].input claims 127 bytes; 5 are present (dtype float32, packed shape [0]),
        # and its parent ends after them.
        inner = b"\x0a\x7f" + b"\x08\x01\x12\x01\x00"
        data = b"\x0a" + bytes([len(inner)]) + inner
        with self.assertRaises(Exception):
            pb.ComputeRequest.FromString(data)  # protobuf refuses it
        code, message, _ = self.call(data)
        self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("malformed ComputeRequest", message)
        self.assertStillServes()

    # --- Streams ---

    def test_idle_streams_do_not_lock_unary_calls_out(self):
        self.start("--max_inflight=8")
        calls = []
        for _ in range(8):
            calls.append(self.channel.stream_stream(_STREAM)(_Idle(), timeout=60))
        # Every stream is admitted (each has answered one batch) and then left idle.
        for call in calls:
            response = pb.ComputeResponse.FromString(next(call))
            self.assertNoCanary(response)
        for _ in range(3):
            self.assertStillServes()
        for call in calls:
            call.cancel()


class HostileInferenceClientTest(ServerUnderAttack):
    """The same for the Open Inference Protocol's ModelInfer, with hand-encoded
    ModelInferRequests (field numbers of proto/inference/open_inference_grpc.proto): every
    repeated field that protobuf would turn into objects or wider entries is counted on
    the wire before protobuf parses the request."""

    def infer(self, request: bytes, timeout=30.0):
        """Sends a serialized ModelInferRequest; returns (code, message, reply bytes)."""
        method = self.channel.unary_unary(_MODEL_INFER)
        try:
            reply = method(request, timeout=timeout)
        except grpc.RpcError as error:
            return error.code(), error.details(), None
        for element in (_CANARY[:4], _CANARY[4:]):
            self.assertNotIn(element, reply, "the reply carries bytes the call never wrote")
        return grpc.StatusCode.OK, "", reply

    def test_millions_of_empty_inputs(self):
        # 64 MiB of two-byte empty inputs: 32 Mi InferInputTensor objects for protobuf.
        self.start()
        code, message, _ = self.infer(_field(1, b"relu") + b"\x2a\x00" * (32 * _MIB))
        self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("ModelInferRequest: more than 3 inputs", message)
        self.assertPeakGrowthBelow(200 * _MIB)
        self.assertStillServes()

    def test_millions_of_fields_outside_the_specification(self):
        # 64 MiB of two-byte fields that ModelInferRequest does not define: protobuf would
        # keep each as an unknown field of its own.
        self.start()
        code, message, _ = self.infer(_field(1, b"relu") + b"\x7a\x00" * (32 * _MIB))
        self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("more than 64 fields that the specification does not define", message)
        self.assertPeakGrowthBelow(200 * _MIB)
        self.assertStillServes()

    def test_millions_of_parameters(self):
        # 32 MiB of empty map entries: each would be a string key and an InferParameter.
        self.start()
        code, message, _ = self.infer(_field(1, b"relu") + b"\x22\x00" * (16 * _MIB))
        self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("parameters: more than 16 parameters", message)
        self.assertPeakGrowthBelow(150 * _MIB)
        self.assertStillServes()

    def test_a_shape_of_millions_of_dimensions(self):
        # 24 MiB of packed one-byte dimensions: 192 MiB of int64 for protobuf.
        self.start()
        x = _field(1, b"x") + _field(2, b"FP32") + _field(3, b"\x01" * (24 * _MIB))
        code, message, _ = self.infer(_field(1, b"relu") + _field(5, x))
        self.assertEqual(code, grpc.StatusCode.RESOURCE_EXHAUSTED, message)
        self.assertIn("inputs[0].shape: more than 32 dimensions (the limit, --max_rank)",
                      message)
        self.assertPeakGrowthBelow(150 * _MIB)
        self.assertStillServes()

    def test_integer_contents_are_refused_before_they_are_widened(self):
        # 24 MiB of packed one-byte int64_contents: 192 MiB of int64 for protobuf.
        self.start()
        contents = _field(3, b"\x01" * (24 * _MIB))
        x = _field(1, b"x") + _field(2, b"FP32") + _field(5, contents)
        code, message, _ = self.infer(_field(1, b"relu") + _field(5, x))
        self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT, message)
        self.assertIn("inputs[0].contents: field 3 holds integer, bool or bytes values",
                      message)
        self.assertPeakGrowthBelow(150 * _MIB)
        self.assertStillServes()

    def test_weight_gradient_of_an_empty_input_is_zero_not_stale(self):
        self.start()
        # Fill pooled buffers with bytes of an earlier call, then ask for the weight
        # gradient of an empty input with 65536 channels: 256 KiB that must be zeros.
        x = np.full(1 << 16, 0x41, np.uint8).tobytes()
        earlier = (_field(1, b"relu") +
                   _field(5, _field(1, b"x") + _field(2, b"FP32") + _field(3, _varint(1 << 16))) +
                   _field(7, x * 4))
        self.assertEqual(self.infer(earlier)[0], grpc.StatusCode.OK)
        shape = _field(3, b"\x00" + _varint(1 << 16))
        weight = np.full(1 << 16, 0.5, "<f4").tobytes()
        request = (_field(1, b"prelu") +
                   _field(5, _field(1, b"x") + _field(2, b"FP32") + shape) +
                   _field(5, _field(1, b"weight") + _field(2, b"FP32") +
                          _field(3, _varint(1 << 16))) +
                   _field(6, _field(1, b"dweight")) +
                   _field(7, b"") + _field(7, weight))
        code, message, reply = self.infer(request)
        self.assertEqual(code, grpc.StatusCode.OK, message)
        # The reply ends with raw_output_contents: tag, length, then the gradient.
        gradient = reply[-(1 << 18):]
        self.assertEqual(reply[-(1 << 18) - 4:-(1 << 18)], b"\x32" + _varint(1 << 18))
        self.assertEqual(gradient, bytes(1 << 18))
        self.assertStillServes()


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


class _Idle:
    """A request iterator that sends one valid batch and then nothing, forever (until
    the call is cancelled)."""

    def __init__(self):
        self._sent = False
        self._never = threading.Event()

    def __iter__(self):
        return self

    def __next__(self):
        if not self._sent:
            self._sent = True
            return pb.ComputeRequest(items=[item("relu", pb.DTYPE_FLOAT32, [4],
                                                 pb.MODE_FORWARD,
                                                 dy=False)]).SerializeToString()
        self._never.wait(60)
        raise StopIteration


if __name__ == "__main__":
    unittest.main()
