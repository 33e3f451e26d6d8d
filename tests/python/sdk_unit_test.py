"""Unit tests of the Python SDK that need no server: the text-form parser, the dtype
conversions (with PyTorch as the oracle for bfloat16 rounding), the health wire codec,
the hand-written Compute wire format (with protobuf's own serializer and parser as the
oracle), and the client-side checks that refuse a request before it is sent."""

import unittest

import grpc
import numpy as np
import torch

import actserve
from actserve import client as client_module
from actserve import tensors
from actserve import wire
from actserve._proto import pb


def raises_invalid(test, callable_, *args, contains=None, **kwargs):
    with test.assertRaises(actserve.Error) as caught:
        callable_(*args, **kwargs)
    test.assertEqual(caught.exception.code, grpc.StatusCode.INVALID_ARGUMENT)
    if contains is not None:
        test.assertIn(contains, caught.exception.message)
    return caught.exception


class ParserTest(unittest.TestCase):
    def test_names_are_the_wire_schemas_and_pytorchs(self):
        self.assertEqual(actserve.ACTIVATION_NAMES, (
            "relu", "relu6", "leaky_relu", "prelu", "elu", "celu", "selu", "gelu", "silu",
            "mish", "softplus", "hardtanh", "hardsigmoid", "hardswish", "sigmoid", "tanh",
            "logsigmoid", "softsign", "tanhshrink", "softshrink", "hardshrink", "threshold",
            "softmax", "log_softmax"))
        for name in actserve.ACTIVATION_NAMES:
            self.assertTrue(hasattr(torch.nn.functional, name), name)

    def test_parameters(self):
        spec = actserve.parse_activation("softplus(beta=2, threshold=10)")
        self.assertEqual(spec.name, "softplus")
        self.assertEqual(dict(spec.params), {"beta": 2.0, "threshold": 10.0})
        self.assertEqual(str(spec), "softplus(beta=2, threshold=10)")
        self.assertEqual(dict(actserve.parse_activation("softmax(dim=-2)").params), {"dim": -2})
        self.assertIsInstance(actserve.parse_activation("softmax(dim=1)").params["dim"], int)
        self.assertEqual(str(actserve.parse_activation("leaky_relu(negative_slope=0.2)")),
                         "leaky_relu(negative_slope=0.2)")
        self.assertEqual(str(actserve.parse_activation("relu")), "relu")
        self.assertEqual(str(actserve.parse_activation("relu()")), "relu")
        self.assertEqual(actserve.parse_activation("elu(alpha=1e-3)").params["alpha"], 0.001)
        self.assertEqual(actserve.parse_activation("elu(alpha=-0x1p-2)").params["alpha"], -0.25)

    def test_whitespace_and_quoted_choices(self):
        for text in (" gelu( approximate = 'tanh' ) ", 'gelu(approximate="tanh")',
                     "gelu(approximate=tanh)"):
            spec = actserve.parse_activation(text)
            self.assertEqual(str(spec), "gelu(approximate=tanh)", text)
        self.assertEqual(actserve.parse_activation("gelu(approximate=none)").params,
                         {"approximate": "none"})

    def test_proto(self):
        proto = actserve.parse_activation("gelu(approximate=tanh)").to_proto()
        self.assertEqual(proto.WhichOneof("kind"), "gelu")
        self.assertEqual(proto.gelu.approximate, pb.GELU_APPROXIMATE_TANH)
        proto = actserve.parse_activation("relu").to_proto()
        self.assertEqual(proto.WhichOneof("kind"), "relu")  # set although it has no fields
        proto = actserve.parse_activation("hardtanh(max_val=2)").to_proto()
        self.assertTrue(proto.hardtanh.HasField("max_val"))
        self.assertFalse(proto.hardtanh.HasField("min_val"))  # unset: the server's default
        self.assertEqual(proto.hardtanh.max_val, 2.0)
        proto = actserve.parse_activation("threshold(threshold=0.5, value=-1)").to_proto()
        self.assertEqual((proto.threshold.threshold, proto.threshold.value), (0.5, -1.0))
        proto = actserve.parse_activation("log_softmax(dim=0)").to_proto()
        self.assertTrue(proto.log_softmax.HasField("dim"))
        self.assertEqual(proto.log_softmax.dim, 0)

    def test_ranges_are_checked_as_the_core_checks_them(self):
        # Refused before any call, with the server's own message (the full list, shared
        # with the C++ SDK, is tests/vectors/activation_specs.json).
        for text, message in (
                ("softplus(beta=0)", "softplus: beta must be nonzero, got 0"),
                ("hardtanh(min_val=2, max_val=1)",
                 "hardtanh: min_val (2) must be <= max_val (1)"),
                ("threshold", "threshold: parameter threshold is required"),
                ("celu(alpha=0)", "celu: alpha must be nonzero, got 0"),
                ("softshrink(lambd=-1)", "softshrink: lambd must be >= 0, got -1"),
                ("elu(alpha=inf)", "elu: alpha must be finite, got inf")):
            error = raises_invalid(self, actserve.parse_activation, text)
            self.assertEqual(error.message, message)

    def test_errors(self):
        raises_invalid(self, actserve.parse_activation, "nope",
                       contains="unknown activation 'nope'")
        raises_invalid(self, actserve.parse_activation, "swish", contains="known: relu, relu6")
        raises_invalid(self, actserve.parse_activation, "relu(alpha=1)",
                       contains="relu: unknown parameter 'alpha'")
        raises_invalid(self, actserve.parse_activation, "elu(beta=1)",
                       contains="its parameters: alpha")
        raises_invalid(self, actserve.parse_activation, "elu(alpha=1",
                       contains="expected ')'")
        raises_invalid(self, actserve.parse_activation, "elu(alpha=1,)", contains="empty")
        raises_invalid(self, actserve.parse_activation, "elu(alpha)",
                       contains="expected name=value")
        raises_invalid(self, actserve.parse_activation, "elu(alpha=one)",
                       contains="alpha must be a number, got 'one'")
        raises_invalid(self, actserve.parse_activation, "elu(alpha=1_0)",
                       contains="must be a number")
        raises_invalid(self, actserve.parse_activation, "elu(alpha=1, alpha=2)",
                       contains="given twice")
        raises_invalid(self, actserve.parse_activation, "gelu(approximate=fast)",
                       contains="must be one of none, tanh")
        raises_invalid(self, actserve.parse_activation, "softmax(dim=0.5)",
                       contains="dim must be an int32")
        raises_invalid(self, actserve.parse_activation, "softmax(dim=3000000000)",
                       contains="dim must be an int32")
        raises_invalid(self, actserve.parse_activation, 42, contains="must be text")
        long_name = "x" * 500
        error = raises_invalid(self, actserve.parse_activation, long_name)
        self.assertLess(len(error.message), 400)  # user text is quoted, bounded

    def test_elementwise(self):
        self.assertFalse(actserve.parse_activation("softmax").elementwise)
        self.assertFalse(actserve.parse_activation("log_softmax").elementwise)
        self.assertTrue(actserve.parse_activation("logsigmoid").elementwise)


class TensorConversionTest(unittest.TestCase):
    def test_numpy_dtypes_are_kept(self):
        for dtype, name in ((np.float32, "float32"), (np.float64, "float64"),
                            (np.float16, "float16")):
            host = tensors.to_host(np.arange(6, dtype=dtype).reshape(2, 3), "x")
            self.assertEqual(host.dtype, name)
            proto = tensors.to_proto(host.array, host.dtype)
            self.assertEqual(list(proto.shape), [2, 3])
            self.assertEqual(len(proto.data), 6 * np.dtype(dtype).itemsize)
            back = tensors.from_proto(proto, name, (2, 3), "t")
            np.testing.assert_array_equal(back, host.array)
            self.assertTrue(back.flags.writeable)

    def test_lists_become_float64_and_scalars_keep_rank_zero(self):
        host = tensors.to_host([1, 2, 3], "x")
        self.assertEqual((host.dtype, host.array.shape), ("float64", (3,)))
        host = tensors.to_host(np.float32(2.5), "x")
        self.assertEqual((host.dtype, host.array.shape), ("float32", ()))
        self.assertEqual(list(tensors.to_proto(host.array, host.dtype).shape), [])

    def test_big_endian_and_strided_inputs_go_little_endian_and_packed(self):
        big = np.array([1.5, -2.0], dtype=">f4")
        proto = tensors.to_proto(*_wire(tensors.to_host(big, "x")))
        self.assertEqual(proto.data, np.array([1.5, -2.0], dtype="<f4").tobytes())
        strided = np.arange(12, dtype=np.float64).reshape(3, 4)[:, ::2]
        proto = tensors.to_proto(*_wire(tensors.to_host(strided, "x")))
        self.assertEqual(proto.data, np.ascontiguousarray(strided).tobytes())

    def test_refused_dtypes(self):
        raises_invalid(self, tensors.to_host, np.arange(3), "x", contains="int64")
        raises_invalid(self, tensors.to_host, np.zeros(3, np.float32), "x", "bfloat16",
                       contains="uint16 bit patterns")
        raises_invalid(self, tensors.to_host, [1.0], "x", "float8", contains="dtype must be")
        raises_invalid(self, tensors.to_host, torch.arange(3), "x", contains="torch.int64")
        raises_invalid(self, tensors.to_host, [["a"]], "x", contains="not an array")

    def test_bfloat16_bits_round_like_torch(self):
        rng = np.random.default_rng(7)
        values = np.concatenate([
            rng.standard_normal(2000).astype(np.float32) * 100,
            # Exact ties between two bfloat16 values: round to even.
            tensors.bfloat16_to_float32(np.arange(0x3F80, 0x3FA0, dtype=np.uint16))
            + np.float32(2.0 ** -9),
            np.array([0.0, -0.0, np.inf, -np.inf, 3.4e38, -3.4e38, 1e-40], np.float32)])
        ours = tensors.bfloat16_bits(values)
        theirs = torch.from_numpy(values).to(torch.bfloat16).view(torch.int16).numpy().view(
            np.uint16)
        np.testing.assert_array_equal(ours, theirs)
        self.assertTrue(np.isnan(tensors.bfloat16_to_float32(tensors.bfloat16_bits(
            np.array([np.nan], np.float32))))[0])

    def test_bfloat16_from_float64_rounds_once(self):
        # 1 + 2^-8 + 2^-30: float32 drops the 2^-30 and leaves a tie that rounds to even
        # (down); the value itself is above the tie and must round up.
        value = 1.0 + 2.0 ** -8 + 2.0 ** -30
        bits = client_module._from_float64(np.array([value]), "bfloat16")
        self.assertEqual(tensors.bfloat16_to_float32(bits)[0], np.float32(1.0 + 2.0 ** -7))
        rng = np.random.default_rng(3)
        values = rng.standard_normal(1000) * 10
        expected = torch.from_numpy(values).to(torch.bfloat16).view(torch.int16).numpy()
        np.testing.assert_array_equal(
            client_module._from_float64(values, "bfloat16").view(np.int16), expected)

    def test_torch_tensors_round_trip(self):
        for dtype in (torch.float32, torch.float64, torch.float16, torch.bfloat16):
            x = torch.linspace(-2, 2, 5, dtype=dtype)
            host = tensors.to_host(x, "x")
            restored = host.restore(host.array.copy())
            self.assertEqual(restored.dtype, dtype)
            self.assertTrue(torch.equal(restored, x))

    def test_malformed_replies_are_internal_errors(self):
        proto = pb.Tensor(dtype=pb.DTYPE_FLOAT32, shape=[2], data=b"\0" * 4)
        with self.assertRaises(actserve.Error) as caught:
            tensors.from_proto(proto, "float32", (2,), "output")
        self.assertEqual(caught.exception.code, grpc.StatusCode.INTERNAL)
        with self.assertRaises(actserve.Error):
            tensors.from_proto(proto, "float64", None, "output")


def _generated_item(item: actserve.Item):
    """The ComputeItem that the generated classes build for ``item``, independently of
    actserve.wire."""
    host = tensors.to_host(item.x, "x", item.dtype)
    proto = pb.ComputeItem(input=tensors.to_proto(host.array, host.dtype),
                           mode={"forward": pb.MODE_FORWARD, "backward": pb.MODE_BACKWARD,
                                 "forward_backward": pb.MODE_FORWARD_BACKWARD}[item.mode])
    if item.grad_output is not None:
        proto.grad_output.CopyFrom(tensors.to_proto(
            tensors.like(item.grad_output, host, "dy"), host.dtype))
    weight = None
    if item.weight is not None:
        weight = tensors.to_proto(tensors.like(item.weight, host, "w"), host.dtype)
    proto.activation.CopyFrom(actserve.parse_activation(item.activation).to_proto(weight))
    return proto


class WireFormatTest(unittest.TestCase):
    ITEMS = [
        actserve.Item(np.linspace(-2, 2, 7, dtype=np.float32), "relu", "forward"),
        actserve.Item(np.arange(600, dtype=np.float64).reshape(300, 2) - 300.5,
                      "softmax(dim=0)", "forward_backward",
                      grad_output=np.ones((300, 2))),
        actserve.Item(np.float16(1.5), "gelu(approximate=tanh)", "backward"),
        actserve.Item(np.zeros((0, 3), np.float32), "leaky_relu(negative_slope=0.2)",
                      "forward"),
        actserve.Item(torch.linspace(-1, 1, 5, dtype=torch.bfloat16), "silu", "backward",
                      grad_output=torch.full((5,), 0.5, dtype=torch.bfloat16)),
        actserve.Item(np.ones((2, 3, 4), np.float32), "prelu", "forward_backward",
                      weight=np.array([0.1, 0.2, 0.3], np.float32)),
        actserve.Item(np.array([1.0, -1.0], dtype=">f8"), "elu", "forward"),
    ]

    def test_requests_are_protobufs_bytes(self):
        for count in range(len(self.ITEMS) + 1):
            items = self.ITEMS[:count]
            ours = wire.encode_compute_request(
                [client_module.Client._prepare(item, "").parts for item in items])
            theirs = pb.ComputeRequest(
                items=[_generated_item(item) for item in items]).SerializeToString()
            self.assertEqual(ours, theirs, count)

    def test_varints_match_protobuf(self):
        for value in (0, 1, 127, 128, 300, 2**31, 2**63 - 1, -1, -2**63):
            ours = wire.encode_varint(value)
            message = pb.Tensor(shape=[value])
            # Tensor.shape = [value]: key, length, the varint.
            self.assertEqual(message.SerializeToString()[2:], ours, value)
            self.assertEqual(wire.read_varint(ours, 0), (value % 2**64, len(ours)))

    @staticmethod
    def _responses():
        tensor = pb.Tensor(dtype=pb.DTYPE_FLOAT32, shape=[2, 3], data=bytes(range(24)))
        other = pb.Tensor(dtype=pb.DTYPE_FLOAT64, shape=[1], data=b"\x01" * 8)
        yield pb.ComputeResponse().SerializeToString()
        yield pb.ComputeResponse(results=[
            pb.ComputeResult(output=tensor),
            pb.ComputeResult(grad_input=other, grad_weight=pb.Tensor(dtype=1, shape=[1],
                                                                     data=b"abcd")),
            pb.ComputeResult(output=pb.Tensor(dtype=pb.DTYPE_FLOAT16, shape=[0])),
            pb.ComputeResult()]).SerializeToString()
        # Fields out of order, repeated (a scalar's last value wins, messages merge),
        # shape unpacked, and unknown fields of every wire type, as a parser must take.
        def field(key: bytes, value: bytes) -> bytes:
            return key + wire.encode_varint(len(value)) + value

        output = (b"\x10\x05\x10\x07"     # shape unpacked: 5, 7
                  + b"\x08\x02"             # dtype float64 ...
                  + field(b"\x1a", b"wxyz")  # data
                  + b"\x08\x01"             # ... then float32: the last wins
                  + b"\x78\x2a"             # field 15, varint
                  + b"\x81\x01" + b"\0" * 8  # field 16, fixed64
                  + field(b"\x8a\x01", b"hi")  # field 17, length-delimited
                  + b"\x95\x01" + b"\0" * 4)  # field 18, fixed32
        result = (field(b"\x12", other.SerializeToString())
                  + field(b"\x0a", output)
                  + field(b"\x0a", field(b"\x12", b"\x09\x0b")))  # output again: merged
        yield (field(b"\x0a", result) + b"\x10\x01"  # an unknown varint field
               + field(b"\x0a", field(b"\x1a", b"")))  # a result with an empty grad_weight

    def _assert_same(self, ours, theirs):
        self.assertEqual(len(ours), len(theirs.results))
        for mine, result in zip(ours, theirs.results):
            for name in ("output", "grad_input", "grad_weight"):
                tensor = getattr(mine, name)
                if not result.HasField(name):
                    self.assertIsNone(tensor, name)
                    continue
                expected = getattr(result, name)
                self.assertEqual((tensor.dtype, tensor.shape, bytes(tensor.data)),
                                 (expected.dtype, tuple(expected.shape), expected.data))

    def test_replies_read_as_protobuf_parses_them(self):
        for data in self._responses():
            self._assert_same(wire.decode_compute_response(data),
                              pb.ComputeResponse.FromString(data))

    def test_truncated_replies_fail_where_protobuf_fails(self):
        from google.protobuf.message import DecodeError

        for data in self._responses():
            for end in range(len(data)):
                prefix = data[:end]
                try:
                    theirs = pb.ComputeResponse.FromString(prefix)
                except DecodeError:
                    with self.assertRaises(wire.MalformedMessage, msg=prefix):
                        wire.decode_compute_response(prefix)
                    continue
                self._assert_same(wire.decode_compute_response(prefix), theirs)

    def test_reply_data_are_views_and_results_are_writable_copies(self):
        data = pb.ComputeResponse(results=[pb.ComputeResult(output=pb.Tensor(
            dtype=pb.DTYPE_FLOAT32, shape=[2],
            data=np.array([1.5, -2.0], "<f4").tobytes()))]).SerializeToString()
        result = wire.decode_compute_response(data)[0]
        self.assertIs(result.output.data.obj, data)  # no copy of the received bytes
        array = tensors.from_wire(result.output, "float32", (2,), "output")
        np.testing.assert_array_equal(array, [1.5, -2.0])
        self.assertTrue(array.flags.writeable)
        out = np.zeros(4, ">f4")[::2]  # any byte order and strides
        self.assertIs(tensors.from_wire(result.output, "float32", (2,), "output", out), out)
        np.testing.assert_array_equal(out, [1.5, -2.0])


def _wire(host):
    return host.array, host.dtype


class HealthCodecTest(unittest.TestCase):
    def test_request(self):
        self.assertEqual(client_module.encode_health_request(""), b"")
        self.assertEqual(client_module.encode_health_request("a.B"), b"\x0a\x03a.B")
        long_name = "s" * 200
        self.assertEqual(client_module.encode_health_request(long_name),
                         b"\x0a\xc8\x01" + long_name.encode())

    def test_response(self):
        decode = client_module.decode_health_response
        self.assertEqual(decode(b""), "UNKNOWN")
        self.assertEqual(decode(b"\x08\x01"), "SERVING")
        self.assertEqual(decode(b"\x08\x02"), "NOT_SERVING")
        self.assertEqual(decode(b"\x08\x03"), "SERVICE_UNKNOWN")
        self.assertEqual(decode(b"\x08\x09"), "UNKNOWN")
        # Unknown fields of every wire type are skipped.
        self.assertEqual(decode(b"\x12\x02hi\x19" + b"\0" * 8 + b"\x25\0\0\0\0\x08\x01"),
                         "SERVING")
        for malformed in (b"\x08", b"\x08\x81", b"\x12\x05hi", b"\x0b"):
            with self.assertRaises(actserve.Error, msg=malformed):
                decode(malformed)


class LocalRefusalTest(unittest.TestCase):
    """Requests the client refuses before any network call: the target is never dialled."""

    def setUp(self):
        self.client = actserve.Client("127.0.0.1:1", timeout=5)

    def tearDown(self):
        self.client.close()

    def test_refusals(self):
        x = np.zeros((2, 3), np.float32)
        raises_invalid(self, self.client.compute, x, "nope", contains="unknown activation")
        raises_invalid(self, self.client.compute, x, "relu", mode="both",
                       contains="mode must be one of forward, backward, forward_backward")
        raises_invalid(self, self.client.compute, x, "relu", grad_output=np.zeros(3),
                       contains="grad_output: shape [3], but x has shape [2, 3]")
        raises_invalid(self, self.client.compute, x, "relu", weight=[1.0],
                       contains="only prelu takes a weight")
        raises_invalid(self, self.client.compute, x, "prelu(weight=0.1)", weight=[1.0],
                       contains="given both")
        raises_invalid(self, self.client.compute_batch, [{"x": x}], contains="items[0]")
        raises_invalid(self, self.client.compute_batch,
                       [actserve.Item(x, "relu"), actserve.Item(x, "relu", grad_output=[1])],
                       contains="items[1].grad_output")
        raises_invalid(self, self.client.compute_large, x, "relu", chunk_bytes=0,
                       contains="chunk_bytes")
        raises_invalid(self, actserve.Client, "localhost:1", timeout=0, contains="timeout")
        raises_invalid(self, actserve.Client, "localhost:1", token="a\nb", contains="token")
        raises_invalid(self, actserve.Client, "localhost:1", tls=actserve.Tls(cert_file="c"),
                       contains="cert_file and key_file")
        raises_invalid(self, actserve.Client, "localhost:1",
                       tls=actserve.Tls(ca_file="/nonexistent/ca.pem"), contains="ca_file")

    def test_unreachable_server_is_unavailable(self):
        with self.assertRaises(actserve.Error) as caught:
            self.client.compute([1.0], "relu")
        self.assertEqual(caught.exception.code, grpc.StatusCode.UNAVAILABLE)
        self.assertTrue(str(caught.exception).startswith("UNAVAILABLE: "))


if __name__ == "__main__":
    unittest.main()
